//! The crate's public error: one enum whose variants name the failure, each
//! printed as one line that says what failed. Every shell (native, edge,
//! inspector) reports it; the layers below have their own enums
//! ([`StorageError`], [`FormatError`], ...) that it wraps.

use std::path::PathBuf;

use crate::core::error::FormatError;
use crate::core::format::id::Id;
use crate::core::format::naming::NameError;
use crate::core::format::root::RootConflict;
use crate::core::format::tree::UnsafeEntry;
use crate::core::policy::selection::SelectionError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{0}")]
    Storage(#[from] StorageError),
    #[error("{key}: {source}")]
    Format { key: String, source: FormatError },
    #[error(
        "{0} is not a snapkeep repository (no config object); create one with `snapkeep repo init`"
    )]
    NotARepository(String),
    #[error("{0} is already a snapkeep repository")]
    AlreadyInitialised(String),
    #[error("unsupported repository location {0:?}: use a path, a file:// URL, s3://, az://, gs:// or an https://HOST/api/repos/NAME edge URL")]
    BadLocation(String),
    #[error("{0}")]
    Name(#[from] NameError),
    #[error("{0}")]
    Selection(#[from] SelectionError),
    #[error("{0}")]
    Conflict(#[from] RootConflict),
    #[error("snapshot [{0}] is missing")]
    SnapshotMissing(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("source {path}: {detail}")]
    Source { path: PathBuf, detail: String },
    #[error("cannot restore index [{index}] into {path}: the folder exists and is not empty (delete it or restore with a rename)")]
    TargetNotEmpty { index: String, path: PathBuf },
    #[error("cannot restore global state: {path} already exists in the target")]
    GlobalStateConflict { path: PathBuf },
    #[error("refusing to restore {path}: {reason}")]
    UnsafePath { path: String, reason: UnsafeEntry },
    #[error("snapshot [{snapshot}] is damaged: {detail}")]
    DamagedSnapshot { snapshot: String, detail: String },
    #[error("{key} is damaged: {detail}")]
    DamagedObject { key: String, detail: String },
    #[error("blob {id} is damaged: {detail}")]
    Integrity { id: Id, detail: String },
    #[error("snapshot failed, nothing was committed: {count} file(s) could not be read consistently, first {path}: {reason} (use --partial to commit the rest as PARTIAL)")]
    Inconsistent {
        count: usize,
        path: String,
        reason: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("index.latest names generation {hinted} but the newest root is index-{newest}: a root object was lost and its snapshots are no longer listed; nothing was changed (put index-{hinted} back from the storage's own backups or versions, or accept the loss by deleting the index.latest object, then run `snapkeep repo check`)")]
    LostRoot { hinted: u64, newest: u64 },
    #[error("repository check found {0} problem(s)")]
    CheckFailed(usize),
    #[error("gave up committing after {0} attempts: the repository is changing too fast")]
    CommitContention(u32),
    #[error("nothing was committed: this process could not refresh its in-flight marker for {seconds} s, so other processes may have taken it for dead and reclaimed data it reuses; run it again")]
    Stalled { seconds: u64 },
    /// A pack upload failed earlier in this snapshot (the message of the
    /// first failure, repeated for the threads that see it later).
    #[error("{0}")]
    UploadFailed(String),
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn format(key: impl Into<String>, source: FormatError) -> Error {
        Error::Format {
            key: key.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
