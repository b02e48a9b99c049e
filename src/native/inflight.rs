//! In-flight markers: a running snapshot announces itself with
//! `inflight/<uuid>.json` and refreshes it while it works. Cleanup keeps
//! every unreferenced object newer than the oldest live marker (the packs a
//! running snapshot has uploaded but not yet committed). A marker whose
//! heartbeat is older than [`STALE_AFTER`] belongs to a process that died:
//! it is ignored, so a killed snapshot never blocks anyone for long.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::native::backup::now_millis;
use crate::native::repo::Repo;
use crate::native::runtime::block_on;
use crate::storage::PutMode;

pub const PREFIX: &str = "inflight/";
/// How often a running snapshot refreshes its marker.
pub const HEARTBEAT: Duration = Duration::from_secs(60);
/// A marker not refreshed for this long is considered dead.
pub const STALE_AFTER: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marker {
    pub uuid: String,
    pub snapshot: String,
    pub started_ms: i64,
    pub heartbeat_ms: i64,
}

pub fn key(uuid: &str) -> String {
    format!("{PREFIX}{uuid}.json")
}

/// A live marker; dropping it stops the heartbeat and deletes the marker.
pub struct InFlight {
    repo: Repo,
    key: String,
    stop: Option<mpsc::Sender<()>>,
    beat: Option<JoinHandle<()>>,
}

impl InFlight {
    pub fn start(
        repo: &Repo,
        uuid: &str,
        snapshot: &str,
    ) -> crate::native::error::Result<InFlight> {
        let now = now_millis();
        let mut marker = Marker {
            uuid: uuid.into(),
            snapshot: snapshot.into(),
            started_ms: now,
            heartbeat_ms: now,
        };
        write_marker(repo, &marker)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let beat_repo = repo.clone();
        let beat = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT) {
                marker.heartbeat_ms = now_millis();
                let _ = write_marker(&beat_repo, &marker);
            }
        });
        Ok(InFlight {
            repo: repo.clone(),
            key: key(uuid),
            stop: Some(stop),
            beat: Some(beat),
        })
    }
}

fn write_marker(repo: &Repo, m: &Marker) -> crate::storage::StorageResult<()> {
    let body = Bytes::from(serde_json::to_vec(m).expect("markers serialize"));
    block_on(repo.store.put(&key(&m.uuid), body, PutMode::Overwrite))
}

impl Drop for InFlight {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(b) = self.beat.take() {
            let _ = b.join();
        }
        let _ = block_on(self.repo.store.delete(&self.key));
    }
}

/// Start time of the oldest snapshot still running (markers with a fresh
/// heartbeat), if any.
pub fn oldest_live_start(repo: &Repo, now_ms: i64) -> crate::native::error::Result<Option<i64>> {
    let mut oldest: Option<i64> = None;
    for meta in block_on(repo.store.list(PREFIX))? {
        let Ok(bytes) = block_on(repo.store.get(&meta.key, None)) else {
            continue;
        };
        let Ok(m) = serde_json::from_slice::<Marker>(&bytes) else {
            continue;
        };
        let beat = m.heartbeat_ms.max(meta.modified_ms.unwrap_or(i64::MIN));
        if now_ms - beat < STALE_AFTER.as_millis() as i64 {
            oldest = Some(oldest.map_or(m.started_ms, |o: i64| o.min(m.started_ms)));
        }
    }
    Ok(oldest)
}
