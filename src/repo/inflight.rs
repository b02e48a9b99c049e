//! Writing, refreshing and reading in-flight markers (the rules are in
//! `core::policy::inflight`).
//!
//! [`InFlight::start`] writes the marker; the caller runs
//! [`InFlight::heartbeat`] beside its work (a spawned task, or a thread in
//! the native shell) and calls [`InFlight::finish`] when done. Nothing here
//! spawns or blocks, so a server can run many operations on one runtime.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::{self, Either};

use crate::core::policy::inflight::{self, stalled_for, Activity, Found, Marker, Markers};
use crate::error::{Error, Result};
use crate::repo::clock::{Clock, Sleep};
use crate::storage::{PutMode, Storage, StorageResult};

pub use crate::core::policy::inflight::{HEARTBEAT, PREFIX, STALE_AFTER};

/// A running operation's marker.
#[derive(Debug)]
pub struct InFlight {
    store: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    marker: Mutex<Marker>,
    /// When the marker was last written successfully.
    last_beat_ms: AtomicI64,
}

impl InFlight {
    /// Writes the marker. `store` should bypass rate limits: a heartbeat
    /// queued behind a throttled pack upload would make a live operation
    /// look dead. `base_generation` must not be newer than the root the
    /// operation reads afterwards.
    pub async fn start(
        store: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        activity: Activity,
        uuid: &str,
        what: &str,
        base_generation: u64,
    ) -> Result<InFlight> {
        let now = clock.now_ms();
        let marker = Marker {
            uuid: uuid.into(),
            snapshot: what.into(),
            started_ms: now,
            heartbeat_ms: now,
            activity,
            base_generation,
        };
        write(store.as_ref(), &marker).await?;
        Ok(InFlight {
            store,
            clock,
            marker: Mutex::new(marker),
            last_beat_ms: AtomicI64::new(now),
        })
    }

    /// Refreshes the marker once; a failed write is retried at the next beat
    /// (and [`InFlight::ensure_fresh`] notices if they keep failing).
    pub async fn beat(&self) {
        let marker = {
            let mut m = self.marker.lock().unwrap();
            m.heartbeat_ms = self.clock.now_ms();
            m.clone()
        };
        if write(self.store.as_ref(), &marker).await.is_ok() {
            self.last_beat_ms
                .fetch_max(marker.heartbeat_ms, Ordering::Relaxed);
        }
    }

    /// Refreshes the marker every [`HEARTBEAT`] until `stop` fires (or its
    /// sender is dropped). Returns only then, so a caller that waits for it
    /// knows no refresh can land after [`InFlight::finish`].
    pub async fn heartbeat(&self, sleep: &dyn Sleep, mut stop: oneshot::Receiver<()>) {
        loop {
            // `stop` first: a sleep that is ready at once (a simulated
            // clock) must not starve it.
            match future::select(&mut stop, sleep.sleep(HEARTBEAT)).await {
                Either::Left(_) => return,
                Either::Right(_) => self.beat().await,
            }
        }
    }

    /// Fails if the marker went unrefreshed for so long that other processes
    /// may have taken it for dead (a stalled process, an unreachable store)
    /// and reclaimed data this operation relies on.
    pub fn ensure_fresh(&self) -> Result<()> {
        let last = self.last_beat_ms.load(Ordering::Relaxed);
        match stalled_for(last, self.clock.now_ms()) {
            Some(seconds) => Err(Error::Stalled { seconds }),
            None => Ok(()),
        }
    }

    /// Removes the marker (best effort: a marker left behind goes stale and
    /// cleanup removes it).
    pub async fn finish(&self) {
        let uuid = self.marker.lock().unwrap().uuid.clone();
        let _ = self.store.delete(&inflight::key(&uuid)).await;
    }
}

/// Runs `work` while `marker` beats beside it (in the same task: nothing
/// is spawned), then removes the marker.
pub async fn with_marker<T>(
    marker: &InFlight,
    sleep: &dyn Sleep,
    work: impl std::future::Future<Output = T>,
) -> T {
    let (stop, stopped) = oneshot::channel::<()>();
    let work = async move {
        let out = work.await;
        drop(stop);
        out
    };
    let (out, ()) = future::join(work, marker.heartbeat(sleep, stopped)).await;
    marker.finish().await;
    out
}

async fn write(store: &dyn Storage, m: &Marker) -> StorageResult<()> {
    store
        .put(
            &inflight::key(&m.uuid),
            Bytes::from(m.encode()),
            PutMode::Overwrite,
        )
        .await
}

/// Reads every marker and sorts them into live and stale as of `now_ms`.
pub async fn scan(store: &dyn Storage, now_ms: i64) -> Result<Markers> {
    let mut found = Vec::new();
    for meta in store.list(PREFIX).await? {
        let marker = match store.get(&meta.key, None).await {
            Ok(bytes) => Marker::decode(&bytes),
            Err(_) => None,
        };
        found.push(Found {
            key: meta.key,
            modified_ms: meta.modified_ms,
            marker,
        });
    }
    Ok(Markers::sort(found, now_ms))
}
