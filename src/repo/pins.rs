//! Writing, refreshing and reading mount pins (the rules are in
//! `core::policy::pins`).

use bytes::Bytes;

use crate::core::policy::pins::{self, Pin, PREFIX};
use crate::error::Result;
use crate::storage::{PutMode, Storage};

/// Writes (or refreshes) `pin`.
pub async fn write(store: &dyn Storage, pin: &Pin) -> Result<()> {
    store
        .put(
            &pins::key(&pin.uuid),
            Bytes::from(pin.encode()),
            PutMode::Overwrite,
        )
        .await?;
    Ok(())
}

/// Removes `pin` (best effort: a pin left behind goes stale and cleanup
/// removes it).
pub async fn remove(store: &dyn Storage, uuid: &str) {
    let _ = store.delete(&pins::key(uuid)).await;
}

/// The pins in a repository as of `now_ms`.
#[derive(Debug, Default)]
pub struct Pins {
    pub live: Vec<Pin>,
    /// Keys of stale or unreadable pins.
    pub stale: Vec<String>,
}

/// Reads every pin and sorts them into live and stale.
pub async fn scan(store: &dyn Storage, now_ms: i64) -> Result<Pins> {
    let mut out = Pins::default();
    for meta in store.list(PREFIX).await? {
        let pin = match store.get(&meta.key, None).await {
            Ok(bytes) => Pin::decode(&bytes),
            // Removed between the listing and the read: an unmount.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        match pin {
            Some(p) if p.is_live(meta.modified_ms, now_ms) => out.live.push(p),
            // An unreadable pin blocks nothing: a mount writes its pin
            // whole before it reads the snapshot.
            _ => out.stale.push(meta.key),
        }
    }
    Ok(out)
}
