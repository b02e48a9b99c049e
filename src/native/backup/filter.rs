//! What the walk leaves out of one target: paths matching `--exclude`
//! (decided by `core::policy::exclude`), and with `--one-file-system` the
//! contents of folders on another file system than the target's folder
//! (such a folder is kept, empty, as restic and tar do, so a restore
//! recreates the mount point).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::core::policy::exclude::Excludes;
use crate::native::backup::walk::join_rel;

/// What the walk does with one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Walk,
    /// Matches an exclude pattern: left out with everything below it.
    Exclude,
    /// A folder on another file system: kept without its contents.
    OtherFileSystem,
}

/// One target's filter.
pub struct Filter<'a> {
    excludes: &'a Excludes,
    /// The target's path relative to the source: the index name, or empty
    /// for the global state (whose entries are top-level names).
    prefix: String,
    /// The target folder's device, with `--one-file-system`.
    device: Option<u64>,
}

impl<'a> Filter<'a> {
    /// A filter for the target folder `path` (`prefix`: see the field).
    pub fn new(
        excludes: &'a Excludes,
        prefix: &str,
        path: &Path,
        one_file_system: bool,
    ) -> Filter<'a> {
        let device = one_file_system
            .then(|| fs::metadata(path).ok().map(|m| m.dev()))
            .flatten();
        Filter {
            excludes,
            prefix: prefix.to_string(),
            device,
        }
    }

    /// The decision for the entry at `rel` (within the target) whose
    /// `lstat` is `meta`.
    pub fn decide(&self, rel: &str, meta: &fs::Metadata) -> Decision {
        let is_dir = meta.file_type().is_dir();
        if !self.excludes.is_empty() && self.excludes.excludes(&join_rel(&self.prefix, rel), is_dir)
        {
            return Decision::Exclude;
        }
        match self.device {
            Some(dev) if is_dir && meta.dev() != dev => Decision::OtherFileSystem,
            _ => Decision::Walk,
        }
    }
}
