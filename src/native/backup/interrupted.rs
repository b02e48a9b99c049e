//! A snapshot stopped before its commit with
//! `SnapshotOptions::keep_uploads_on_stop` (the CLI's Ctrl-C and SIGTERM)
//! keeps what it uploaded for its rerun: it waits for the uploads
//! already running (packs not yet sent are dropped, so a stop waits for
//! one pack's upload at most), and the packs stored are listed in an index
//! file that a root change (`RootChange::KeepIndexFile`) adds to the
//! newest root. A rerun then loads them with the rest of the index
//! and uploads only what is still missing.
//!
//! Listing them in the root is what keeps them safe: cleanup never removes
//! what the newest root references, and no other writer's rules change (a
//! create's base index files stay listed, a delete keeps index files it did
//! not plan with). A later delete's GC drops every pack no snapshot needs,
//! so uploads that no rerun ever used are reclaimed then. Without the root
//! change (a read-only repository, storage gone) the packs are unreferenced
//! objects that `repo cleanup` removes after its grace period, as before.

use crate::core::format::id::Id;
use crate::core::format::root::RootChange;
use crate::native::backup::packer::PackerTotals;
use crate::native::backup::status::SnapshotProgress;
use crate::native::error::Error;
use crate::native::repo::Repo;

/// What a stopped snapshot had stored when it stopped.
#[derive(Debug, Clone, Copy)]
pub struct Uploaded {
    /// The index file of its packs, once written.
    pub index_file: Option<Id>,
    pub packs: u64,
    pub bytes: u64,
}

impl Uploaded {
    pub fn of(totals: &PackerTotals, index_file: Option<Id>) -> Uploaded {
        Uploaded {
            index_file,
            packs: totals.packs_written,
            bytes: totals.bytes_uploaded,
        }
    }
}

/// What a stopped snapshot left for its rerun.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kept {
    pub packs: u64,
    pub bytes: u64,
    /// The newest root lists them: a rerun reuses them.
    pub listed: bool,
}

/// Lists `uploaded` in the newest root, tells `status`, and returns the
/// snapshot's error.
pub fn keep(
    repo: &Repo,
    uploaded: Uploaded,
    status: Option<&SnapshotProgress>,
    what: &'static str,
) -> Error {
    let listed = uploaded
        .index_file
        .is_some_and(|f| repo.commit(&RootChange::KeepIndexFile(f)).is_ok());
    if let Some(s) = status {
        s.stopped(Kept {
            packs: uploaded.packs,
            bytes: uploaded.bytes,
            listed,
        });
    }
    Error::Aborted(what)
}
