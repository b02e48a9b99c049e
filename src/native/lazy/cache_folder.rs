//! [`CacheFolder`]: a read-only look at a [`super::DiskCache`]'s folder
//! from outside its mounts, so a restore takes the chunks a mount already
//! fetched instead of fetching them again. It never writes, evicts or
//! removes anything: a mount may be using the folder at the same time.

use std::fs;
use std::path::{Path, PathBuf};

use crate::core::crypto::content_ids::IdScheme;
use crate::core::format::id::{Id, IdSet};
use crate::error::Result;

use super::cache_entry::chunk_of;
use super::disk_cache::{entry_files, entry_path};

/// The entries a cache folder held when it was opened.
#[derive(Debug)]
pub struct CacheFolder {
    dir: PathBuf,
    ids: IdSet,
    /// How the repository names chunks (keyed ids when encrypted): what
    /// entries are checked against.
    scheme: IdScheme,
}

impl CacheFolder {
    /// Lists the entries of `dir` (named by their id; partial writes are
    /// not entries), to be checked against ids computed as
    /// `scheme` does.
    pub fn open(dir: &Path, scheme: IdScheme) -> Result<CacheFolder> {
        let ids = entry_files(dir)?
            .into_iter()
            .filter_map(|(name, _)| name.parse::<Id>().ok())
            .collect();
        Ok(CacheFolder {
            dir: dir.to_path_buf(),
            ids,
            scheme,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The ids of the entries found (not yet checked).
    pub fn ids(&self) -> &IdSet {
        &self.ids
    }

    /// Entry `id`'s bytes if the entry is there and its id is `id`;
    /// `None` when it is missing (evicted since) or corrupt: the caller
    /// then fetches the chunk from the repository.
    pub fn read(&self, id: &Id) -> Option<Vec<u8>> {
        let bytes = chunk_of(fs::read(entry_path(&self.dir, id)).ok()?)?;
        (self.scheme.id_of(&bytes) == *id).then_some(bytes)
    }
}
