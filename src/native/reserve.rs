//! Room to recover on a full disk. A local repository keeps a `reserve`
//! file of allocated space, made at init (or by the first delete or
//! cleanup that has room for it). A delete or cleanup that finds the
//! filesystem nearly full removes the reserve first, so its in-flight
//! marker, new root and index file fit, skips repacking (which would write
//! new packs), frees what it can, and puts the reserve back once there is
//! room again. Snapshots never use the reserve: a full disk stops them
//! while the way to free space stays open.

use std::path::Path;

use crate::core::format::keys::RESERVE;
/// Default size; `SNAPKEEP_RESERVE_BYTES` overrides it.
const RESERVE_BYTES: u64 = 32 << 20;

fn reserve_bytes() -> u64 {
    std::env::var("SNAPKEEP_RESERVE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RESERVE_BYTES)
}

/// Bytes available to unprivileged writers on `root`'s filesystem.
fn free_bytes(root: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(root).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Whether `root`'s filesystem is too full for a delete to write its
/// marker, root and index file.
pub fn is_tight(root: &Path) -> bool {
    free_bytes(root).is_some_and(|free| free < reserve_bytes())
}

/// Puts the reserve in place if it is missing and the filesystem has room
/// for it and as much again. Best effort: a reserve that cannot be made is
/// simply not there.
pub fn ensure(root: &Path) {
    let want = reserve_bytes();
    let path = root.join(RESERVE);
    if want == 0 || path.exists() || free_bytes(root).is_none_or(|free| free < 2 * want) {
        return;
    }
    let tmp = root.join(format!(".tmp-{RESERVE}"));
    let made = std::fs::File::create(&tmp).and_then(|f| {
        rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, want)?;
        f.sync_all()
    });
    match made {
        Ok(()) => {
            let _ = std::fs::rename(&tmp, &path);
        }
        Err(_) => {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// Frees the reserve when the filesystem is nearly full; says whether it
/// was tight (so the caller avoids writing more than it must).
pub fn release_if_tight(root: &Path) -> bool {
    if !is_tight(root) {
        return false;
    }
    let _ = std::fs::remove_file(root.join(RESERVE));
    true
}
