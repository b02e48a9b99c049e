//! In-flight markers: a running snapshot or delete announces itself with
//! `inflight/<uuid>.json` and refreshes it while it works. No operation ever
//! waits for a marker; markers only tell the reclaiming operations what to
//! leave alone:
//!
//! - cleanup keeps every unreferenced object newer than the oldest live
//!   marker (what a running snapshot or delete has uploaded but not yet
//!   committed), and everything the roots from the oldest live snapshot's
//!   base generation onwards reference (what it may deduplicate against);
//! - a delete leaves the packs it dropped to cleanup while a snapshot runs.
//!
//! A marker whose heartbeat is older than [`STALE_AFTER`] belongs to a
//! process that died: it is ignored, so a killed snapshot never blocks anyone
//! for long, and cleanup removes it once it is also older than its grace.
//! A live process that could not refresh its marker for half that time may
//! have looked dead to others: it refuses to commit (see
//! [`InFlight::ensure_fresh`]).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::native::backup::now_millis;
use crate::native::error::{Error, Result};
use crate::native::repo::Repo;
use crate::native::runtime::block_on;
use crate::storage::{PutMode, Storage, StorageResult};

pub const PREFIX: &str = "inflight/";
/// How often a running operation refreshes its marker.
pub const HEARTBEAT: Duration = Duration::from_secs(60);
/// A marker not refreshed for this long is considered dead.
pub const STALE_AFTER: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activity {
    #[default]
    Snapshot,
    Delete,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marker {
    pub uuid: String,
    /// The snapshot being created, or the patterns being deleted.
    pub snapshot: String,
    pub started_ms: i64,
    pub heartbeat_ms: i64,
    #[serde(default)]
    pub activity: Activity,
    /// A root generation no newer than the one the operation works from:
    /// everything that root references may be reused.
    #[serde(default)]
    pub base_generation: u64,
}

pub fn key(uuid: &str) -> String {
    format!("{PREFIX}{uuid}.json")
}

/// A live marker; dropping it stops the heartbeat and deletes the marker.
pub struct InFlight {
    store: Arc<dyn Storage>,
    key: String,
    /// When the marker was last written successfully.
    last_beat_ms: Arc<AtomicI64>,
    stop: Option<mpsc::Sender<()>>,
    beat: Option<JoinHandle<()>>,
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
        // Markers bypass rate limits: a heartbeat queued behind a throttled
        // pack upload would make a live snapshot look dead.
        let store = repo.control_store();
        let now = now_millis();
        let mut marker = Marker {
            uuid: uuid.into(),
            snapshot: what.into(),
            started_ms: now,
            heartbeat_ms: now,
            activity,
            base_generation,
        };
        write_marker(&store, &marker)?;
        let last_beat_ms = Arc::new(AtomicI64::new(now));
        let (stop, stopped) = mpsc::channel::<()>();
        let (beat_store, beat_last) = (store.clone(), last_beat_ms.clone());
        let beat = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT) {
                marker.heartbeat_ms = now_millis();
                if write_marker(&beat_store, &marker).is_ok() {
                    beat_last.store(marker.heartbeat_ms, Ordering::Relaxed);
                }
            }
        });
        Ok(InFlight {
            store,
            key: key(uuid),
            last_beat_ms,
            stop: Some(stop),
            beat: Some(beat),
        })
    }

    /// Fails if the marker went unrefreshed for so long that other processes
    /// may have taken it for dead (a stalled process, an unreachable store)
    /// and reclaimed data this operation relies on.
    pub fn ensure_fresh(&self) -> Result<()> {
        let silent_ms = now_millis() - self.last_beat_ms.load(Ordering::Relaxed);
        if silent_ms > STALE_AFTER.as_millis() as i64 / 2 {
            return Err(Error::Stalled {
                seconds: (silent_ms / 1000) as u64,
            });
        }
        Ok(())
    }
}

fn write_marker(store: &Arc<dyn Storage>, m: &Marker) -> StorageResult<()> {
    let body = Bytes::from(serde_json::to_vec(m).expect("markers serialize"));
    block_on(store.put(&key(&m.uuid), body, PutMode::Overwrite))
}

impl Drop for InFlight {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(b) = self.beat.take() {
            let _ = b.join();
        }
        let _ = block_on(self.store.delete(&self.key));
    }
}

/// The markers in a repository, split by liveness.
#[derive(Debug, Default)]
pub struct Markers {
    pub live: Vec<Marker>,
    /// Keys of markers whose heartbeat is older than [`STALE_AFTER`] (or
    /// that cannot be read), with their last sign of life.
    pub stale: Vec<(String, i64)>,
}

impl Markers {
    /// Start time of the oldest live operation.
    pub fn oldest_start(&self) -> Option<i64> {
        self.live.iter().map(|m| m.started_ms).min()
    }

    /// Whether a snapshot other than `except` is running.
    pub fn snapshot_running(&self, except: Option<&str>) -> bool {
        self.live
            .iter()
            .any(|m| m.activity == Activity::Snapshot && Some(m.uuid.as_str()) != except)
    }

    /// The oldest root generation a running snapshot may reuse data from.
    pub fn oldest_snapshot_base(&self) -> Option<u64> {
        self.live
            .iter()
            .filter(|m| m.activity == Activity::Snapshot)
            .map(|m| m.base_generation)
            .min()
    }
}

/// Reads every marker and sorts them into live and stale.
pub fn scan(repo: &Repo, now_ms: i64) -> Result<Markers> {
    let mut out = Markers::default();
    for meta in block_on(repo.store.list(PREFIX))? {
        let modified = meta.modified_ms.unwrap_or(i64::MIN);
        let marker = block_on(repo.store.get(&meta.key, None))
            .ok()
            .and_then(|b| serde_json::from_slice::<Marker>(&b).ok());
        match marker {
            Some(m) if now_ms - m.heartbeat_ms.max(modified) < STALE_AFTER.as_millis() as i64 => {
                out.live.push(m)
            }
            Some(m) => out.stale.push((meta.key, m.heartbeat_ms.max(modified))),
            // Unreadable: judged by its age alone (it may be mid-write).
            None if now_ms - modified < STALE_AFTER.as_millis() as i64 => {}
            None => out.stale.push((meta.key, modified)),
        }
    }
    Ok(out)
}
