//! Mounted indices (searchable snapshots): an index of a snapshot mounted
//! read-only as a folder of the data folder (`native::mount`), so it is an
//! index like the others in `_cat/indices` and `DELETE /<index>` unmounts
//! it. `shared_cache` mounts read through one bounded cache in the state
//! folder (`searchable/shared_cache`, bound `searchable_snapshots.
//! cache_size`); a `full_copy` mount has its own unbounded cache
//! (`searchable/full_copy/<index>`) filled in the background. What is
//! mounted is kept in `mounts.json`, so a restarted node mounts it again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::native::lazy::DiskCache;
use crate::native::mount::{open_cache, MountOptions, MountStorage, Mounted, Source};
use crate::node::error::NodeError;
use crate::node::state::write_atomic;

pub const MOUNTS_FILE: &str = "mounts.json";

/// What `mounts.json` records of one mounted index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRecord {
    pub repository: String,
    pub snapshot: String,
    /// The index in the snapshot.
    pub index: String,
    pub storage: MountStorage,
}

/// A mounted index: its record and the live mount.
pub struct MountedIndex {
    pub record: MountRecord,
    pub mount: Mounted,
}

/// The node's mounted indices, by name in the data folder.
#[derive(Default)]
pub struct Mounts {
    pub live: Mutex<BTreeMap<String, MountedIndex>>,
    shared: std::sync::Mutex<Option<Arc<DiskCache>>>,
}

impl std::fmt::Debug for Mounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mounts")
    }
}

impl Mounts {
    /// The shared cache, opened on first use; it also accepts the chunk
    /// ids of `source`'s repository (keyed per encrypted repository).
    pub fn shared_cache(
        &self,
        state: &Path,
        bound: u64,
        source: &Source,
    ) -> crate::error::Result<Arc<DiskCache>> {
        let mut shared = self.shared.lock().unwrap();
        if let Some(c) = shared.as_ref() {
            c.accept(source.reader.sealing().ids());
            return Ok(c.clone());
        }
        let cache = open_cache(
            source,
            &options(state, "", bound, MountStorage::SharedCache),
        )?;
        *shared = Some(cache.clone());
        Ok(cache)
    }

    /// The shared cache if any mount opened it.
    pub fn shared_cache_if_open(&self) -> Option<Arc<DiskCache>> {
        self.shared.lock().unwrap().clone()
    }
}

/// The options of mounting index `record.index` at `mountpoint`.
pub fn mount_options(
    state: &Path,
    name: &str,
    bound: u64,
    record: &MountRecord,
    mountpoint: PathBuf,
) -> MountOptions {
    MountOptions {
        snapshot: record.snapshot.clone(),
        mountpoint,
        indices: vec![record.index.clone()],
        ..options(state, name, bound, record.storage)
    }
}

fn options(state: &Path, name: &str, bound: u64, storage: MountStorage) -> MountOptions {
    let cache_dir = match storage {
        MountStorage::SharedCache => state.join("searchable").join("shared_cache"),
        MountStorage::FullCopy => state.join("searchable").join("full_copy").join(name),
    };
    MountOptions {
        snapshot: String::new(),
        mountpoint: PathBuf::new(),
        indices: Vec::new(),
        cache_dir,
        cache_size: bound,
        storage,
        prewarm: false,
        // Services run as their own users read the folder too.
        allow_other: true,
        upper: None,
        layer: None,
    }
}

/// `mounts.json`'s records; none when the file is absent.
pub fn read_records(state: &Path) -> Result<BTreeMap<String, MountRecord>, NodeError> {
    Ok(crate::node::state::read_json(state, MOUNTS_FILE)?.unwrap_or_default())
}

pub fn write_records(
    state: &Path,
    records: &BTreeMap<String, MountRecord>,
) -> Result<(), NodeError> {
    write_atomic(state, MOUNTS_FILE, records)
}

/// Detaches whatever is mounted at `path` (a mount left by a killed node
/// answers every access with "transport endpoint is not connected").
pub fn detach_stale(path: &Path) {
    let _ = rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH);
}
