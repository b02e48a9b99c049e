//! The mount's pin (`core::policy::pins`): written before the snapshot is
//! read, refreshed every [`HEARTBEAT`] on the runtime, removed when the
//! mount ends.

use std::path::Path;

use crate::core::policy::pins::{Pin, HEARTBEAT};
use crate::native::clock::now_millis;
use crate::native::error::{Error, Result};
use crate::native::runtime::handle;
use crate::repo::pins;
use crate::storage::Storage;

pub struct PinGuard {
    store: std::sync::Arc<dyn Storage>,
    uuid: String,
    /// `None` once finished.
    beat: Option<tokio::task::JoinHandle<()>>,
}

impl PinGuard {
    /// Writes the pin of `snapshot` mounted at `mountpoint`; a repository
    /// that refuses the write refuses the mount.
    pub async fn start(
        store: std::sync::Arc<dyn Storage>,
        snapshot: &str,
        mountpoint: &Path,
    ) -> Result<PinGuard> {
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
        pins::write(store.as_ref(), &pin).await.map_err(|e| {
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
        Ok(PinGuard {
            store,
            uuid,
            beat: Some(beat),
        })
    }

    /// Stops the heartbeat and removes the pin, waiting for the removal.
    /// Blocking: from async code, call it on a blocking thread.
    pub fn finish(mut self) {
        self.remove();
    }

    fn remove(&mut self) {
        let Some(beat) = self.beat.take() else { return };
        beat.abort();
        let (store, uuid) = (self.store.clone(), self.uuid.clone());
        // On the shell's runtime from a thread of its own: this works from
        // any thread, a runtime's included.
        let _ = std::thread::spawn(move || {
            handle().block_on(pins::remove(store.as_ref(), &uuid));
        })
        .join();
    }
}

/// A mount that failed half-way removes its pin too.
impl Drop for PinGuard {
    fn drop(&mut self) {
        self.remove();
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
