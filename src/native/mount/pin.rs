//! The mount's pin (`core::policy::pins`): written before the snapshot is
//! read, refreshed every [`HEARTBEAT`] on the runtime, removed when the
//! mount ends.

use std::path::Path;

use crate::core::policy::pins::{Pin, HEARTBEAT};
use crate::native::clock::now_millis;
use crate::native::error::{Error, Result};
use crate::native::repo::Repo;
use crate::native::runtime::{block_on, handle};
use crate::repo::pins;
use crate::storage::Storage;

pub struct PinGuard {
    store: std::sync::Arc<dyn Storage>,
    uuid: String,
    beat: tokio::task::JoinHandle<()>,
}

impl PinGuard {
    /// Writes the pin of `snapshot` mounted at `mountpoint`; a repository
    /// that refuses the write refuses the mount.
    pub fn start(repo: &Repo, snapshot: &str, mountpoint: &Path) -> Result<PinGuard> {
        let store = repo.control_store();
        let now = now_millis();
        let where_ = std::fs::canonicalize(mountpoint).unwrap_or_else(|_| mountpoint.into());
        let mut pin = Pin {
            uuid: uuid::Uuid::new_v4().to_string(),
            snapshot: snapshot.to_string(),
            mount: format!("{}:{}", hostname(), where_.display()),
            pid: std::process::id(),
            started_ms: now,
            heartbeat_ms: now,
        };
        block_on(pins::write(store.as_ref(), &pin)).map_err(|e| {
            Error::Usage(format!(
                "cannot pin snapshot [{snapshot}] in the repository (a mount writes a pin so \
                 that the snapshot is not deleted under it): {e}"
            ))
        })?;
        let uuid = pin.uuid.clone();
        let beating = store.clone();
        let beat = handle().spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                pin.heartbeat_ms = now_millis();
                // A failed refresh is retried at the next beat.
                let _ = pins::write(beating.as_ref(), &pin).await;
            }
        });
        Ok(PinGuard { store, uuid, beat })
    }
}

/// Stops the heartbeat and removes the pin, also when the mount failed.
impl Drop for PinGuard {
    fn drop(&mut self) {
        self.beat.abort();
        block_on(pins::remove(self.store.as_ref(), &self.uuid));
    }
}

/// This machine's name, for the pin's `host:/path`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
