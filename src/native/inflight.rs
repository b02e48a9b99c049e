//! In-flight markers for the synchronous shell: [`InFlight`] writes the
//! marker, refreshes it on the runtime while the operation works, and
//! removes it when dropped. The rules are in `core::policy::inflight`, the
//! async writes in `repo::inflight`.

use std::sync::Arc;

use futures::channel::oneshot;

use crate::native::clock::{SystemClock, TokioSleep};
use crate::native::error::Result;
use crate::native::repo::Repo;
use crate::native::runtime::{block_on, handle};
use crate::repo::inflight as marker;

pub use crate::core::policy::inflight::{
    Activity, Marker, Markers, HEARTBEAT, PREFIX, STALE_AFTER,
};

/// A live marker; dropping it stops the heartbeat and deletes the marker.
pub struct InFlight {
    inner: Arc<marker::InFlight>,
    stop: Option<oneshot::Sender<()>>,
    beat: Option<tokio::task::JoinHandle<()>>,
}

impl InFlight {
    /// Writes the marker and starts its heartbeat. `base_generation` must
    /// not be newer than the root the operation reads afterwards.
    pub fn start(
        repo: &Repo,
        activity: Activity,
        uuid: &str,
        what: &str,
        base_generation: u64,
    ) -> Result<InFlight> {
        // Markers bypass rate limits (see `marker::InFlight::start`).
        let inner = Arc::new(block_on(marker::InFlight::start(
            repo.control_store(),
            Arc::new(SystemClock),
            activity,
            uuid,
            what,
            base_generation,
        ))?);
        let (stop, stopped) = oneshot::channel();
        let beating = inner.clone();
        let beat = handle().spawn(async move { beating.heartbeat(&TokioSleep, stopped).await });
        Ok(InFlight {
            inner,
            stop: Some(stop),
            beat: Some(beat),
        })
    }

    /// See [`marker::InFlight::ensure_fresh`].
    pub fn ensure_fresh(&self) -> Result<()> {
        self.inner.ensure_fresh()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        drop(self.stop.take());
        // Waiting for the heartbeat to return means no refresh can land
        // after the marker is deleted.
        if let Some(beat) = self.beat.take() {
            let _ = block_on(beat);
        }
        block_on(self.inner.finish());
    }
}

/// Reads every marker and sorts them into live and stale as of `now_ms`.
pub fn scan(repo: &Repo, now_ms: i64) -> Result<Markers> {
    block_on(marker::scan(repo.store.as_ref(), now_ms))
}
