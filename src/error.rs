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
    /// The storage failed (see [`StorageError`], which says whether a retry
    /// may help).
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// A snapshot entry cannot be read lazily (not a file, or its chunks
    /// disagree with its size).
    #[error("{0}")]
    Layout(#[from] crate::core::lazy::layout::LayoutError),
    /// A stored object (`key`) does not decode.
    #[error("{key}: {source}")]
    Format { key: String, source: FormatError },
    /// The location holds no repository config.
    #[error("no snapkeep repository at {0} (nothing was made there by `snapkeep repo init`)")]
    NotARepository(String),
    /// An encrypted repository opened by a shell that was given no way to
    /// unlock it.
    #[error("the repository at {0} is encrypted: give its password (SNAPKEEP_PASSWORD, SNAPKEEP_PASSWORD_FILE, --password-command, or a terminal prompt)")]
    Encrypted(String),
    /// No key slot of an encrypted repository opens with the password.
    #[error(
        "wrong password for the repository at {location} (no key slot of {slots} opens with it)"
    )]
    WrongPassword { location: String, slots: usize },
    /// A master key given directly (the edge Worker's read key) that does
    /// not open the repository's sealed config.
    #[error("the read key does not open the repository at {0}: it is not this repository's master key (export it with `snapkeep repo key export`), or the config was altered")]
    WrongReadKey(String),
    /// An encrypted repository whose `keys/` holds no readable slot.
    #[error(
        "the encrypted repository at {0} has no readable key slot under keys/: it cannot be opened"
    )]
    NoKeySlots(String),
    /// `repo key remove` of the only key slot.
    #[error("key slot {0} is the repository's last: removing it would lock the repository for good (add another password first)")]
    LastKeySlot(String),
    /// Getting the password failed (a file, a command, the terminal).
    #[error("{0}")]
    Password(String),
    /// A shell with no source of random nonces asked to write to an
    /// encrypted repository.
    #[error("this program cannot encrypt (it has no random source): the encrypted repository is read-only here")]
    CannotEncrypt,
    /// `repo init` on a location that already holds a repository.
    #[error("{0} is already a snapkeep repository")]
    AlreadyInitialised(String),
    /// A repository location no backend understands.
    #[error("unsupported repository location {0:?}: use a path, a file:// URL, s3://, az://, azure://, gs://, an https://HOST/api/repos/NAME edge URL or @PROFILE")]
    BadLocation(String),
    /// A snapshot or index name that is not allowed.
    #[error("{0}")]
    Name(#[from] NameError),
    /// An index selection that does not parse or matches nothing.
    #[error("{0}")]
    Selection(#[from] SelectionError),
    /// A change conflicts with the root generation it was applied to.
    /// (A taken lifecycle slot is [`Error::SlotTaken`] instead.)
    #[error("{0}")]
    Conflict(RootConflict),
    /// A scheduled snapshot's slot was already committed, by another node
    /// or by a claim that took this one over (or a newer slot of the policy
    /// was): nothing was committed, and running it again cannot succeed.
    #[error("slot {slot_ms} of policy [{policy}] is taken: the repository records slot {recorded_ms} (epoch {recorded_epoch}); nothing was committed")]
    SlotTaken {
        policy: String,
        slot_ms: i64,
        recorded_ms: i64,
        recorded_epoch: u64,
    },
    /// `snapshot copy` cannot copy into the destination (see
    /// [`CopyError`](crate::core::plan::copy::CopyError)).
    #[error("{0}")]
    Copy(#[from] crate::core::plan::copy::CopyError),
    /// No snapshot of that name.
    #[error("snapshot [{0}] is missing")]
    SnapshotMissing(String),
    /// A live mount pins the snapshot (`core::policy::pins`).
    #[error("snapshot [{snapshot}] is in use: {by}; unmount it first (a killed mount's pin expires 10 minutes after its last heartbeat)")]
    SnapshotPinned { snapshot: String, by: String },
    /// `materialize --upper DIR`: DIR is no `mount --writable --upper`
    /// folder.
    #[error("{} holds no writable layer (no {}/snapshot): give the folder a `mount --writable --upper` used", dir.display(), dir.display())]
    NoWritableLayer { dir: PathBuf },
    /// A writable layer's entry `materialize` cannot apply (an overlayfs
    /// renamed folder or metadata-only copy, a name that is not UTF-8).
    #[error("{}: {what}", path.display())]
    UnsupportedLayer { path: PathBuf, what: String },
    /// An index or path inside a snapshot that does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// A snapshot source that cannot be snapshotted.
    #[error("source {path}: {detail}")]
    Source { path: PathBuf, detail: String },
    /// A restore would write into a non-empty index folder.
    #[error("cannot restore index [{index}] into {path}: the folder exists and is not empty (restore with --overwrite to replace what it holds, delete it, or restore with a rename)")]
    TargetNotEmpty { index: String, path: PathBuf },
    /// A restore of global state would overwrite an entry of the target.
    #[error("cannot restore global state: {path} already exists in the target (restore with --overwrite to replace it)")]
    GlobalStateConflict { path: PathBuf },
    /// A planned restore finds conflicts in the target (`--dry-run`).
    #[error("{count} conflict(s): the restore would be refused")]
    RestoreConflicts { count: usize },
    /// A snapshot entry a restore refuses to write (it would escape the
    /// target, or its name is not allowed).
    #[error("refusing to restore {path}: {reason}")]
    UnsafePath { path: String, reason: UnsafeEntry },
    /// A snapshot's manifest or trees are damaged or inconsistent.
    #[error("snapshot [{snapshot}] is damaged: {detail}")]
    DamagedSnapshot { snapshot: String, detail: String },
    /// A stored object (`key`) does not match its name or its record.
    #[error("{key} is damaged: {detail}")]
    DamagedObject { key: String, detail: String },
    /// A blob does not decode, does not hash to its id, or lies outside its
    /// pack.
    #[error("blob {id} is damaged: {detail}")]
    Integrity { id: Id, detail: String },
    /// A blob (a tree or a chunk) that the repository index does not list.
    #[error("{kind} {id} is missing: it is not in the repository index")]
    BlobMissing { kind: &'static str, id: Id },
    /// Data a snapshot deduplicated against was removed by a concurrent
    /// delete before the snapshot committed.
    #[error("a concurrent delete removed data this snapshot reuses (blob {id}); nothing was committed, run the snapshot again")]
    ReusedDataRemoved { id: Id },
    /// Source files kept changing while they were read.
    #[error("snapshot failed, nothing was committed: {count} file(s) could not be read consistently, first {path}: {reason} (use --partial to commit the rest as PARTIAL)")]
    Inconsistent {
        count: usize,
        path: String,
        reason: String,
    },
    /// An index's consistency hook failed in a snapshot that is not
    /// partial. `reason` names the hook, how it ended and its last stderr
    /// line (`core::policy::hooks::HookFailure`).
    #[error("snapshot failed, nothing was committed: index [{index}]: {reason} (a partial snapshot would leave the index out and commit the rest as PARTIAL)")]
    Hook { index: String, reason: String },
    /// A restored file cannot be renamed into place because its folder is on
    /// another filesystem than the target.
    #[error("cannot move the restored file into {}: its folder is on another filesystem than the target folder (restore each mounted folder as its own target)", path.display())]
    CrossFilesystem { path: PathBuf },
    /// A file an overwriting restore was to update in place changed (or
    /// gained a link) after the restore read it.
    #[error("{} changed while the restore ran (after it was read, before it was updated): nothing was written to it; run the restore again", path.display())]
    ChangedDuringRestore { path: PathBuf },
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The thread pool for a restore could not be started.
    #[error("cannot start {threads} restore threads: {detail}")]
    ThreadPool { threads: usize, detail: String },
    /// Memory for a read could not be reserved.
    #[error("{bytes} bytes do not fit in memory here: read a smaller range")]
    OutOfMemory { bytes: u64 },
    /// `index.latest` names a generation newer than every root: a root
    /// object was lost.
    #[error("index.latest names generation {hinted} but the newest root is index-{newest}: a root object was lost and its snapshots are no longer listed; nothing was changed (put index-{hinted} back from the storage's own backups or versions, or accept the loss by deleting the index.latest object, then run `snapkeep repo check`)")]
    LostRoot { hinted: u64, newest: u64 },
    /// `repo check` found problems (they were printed before).
    #[error("repository check found {0} problem(s)")]
    CheckFailed(usize),
    /// The write-read-list-delete probe of `repo verify` did not read back
    /// what it wrote, or the listing or the delete misbehaved.
    #[error("storage probe misbehaved: read back {}, listed {listed}, deleted {deleted}", if *read_back { "ok" } else { "different bytes" })]
    ProbeMisbehaved {
        read_back: bool,
        listed: bool,
        deleted: bool,
    },
    /// Storage semantics probes failed (they were printed before).
    #[error("{failed} storage semantics probe(s) failed: this storage is not safe for snapkeep")]
    UnsafeStorage { failed: usize },
    /// Commits kept losing the race for the next root generation.
    #[error("gave up committing after {0} attempts: the repository is changing too fast")]
    CommitContention(u32),
    /// This process could not refresh its in-flight marker in time.
    #[error("nothing was committed: this process could not refresh its in-flight marker for {seconds} s, so other processes may have taken it for dead and reclaimed data it reuses; run it again")]
    Stalled { seconds: u64 },
    /// A pack upload failed earlier in this snapshot (the message of the
    /// first failure, and whether it was retryable, repeated for the
    /// threads that see it later).
    #[error("{message}")]
    UploadFailed { message: String, retryable: bool },
    /// A pack upload thread panicked (or every one stopped).
    #[error("a pack upload thread panicked")]
    UploadThreadPanicked,
    /// A restored copy differs from what it was restored from (the demo's
    /// own verification).
    #[error("{0}")]
    NotIdentical(String),
    /// The command was invoked wrongly (arguments, options, a target that
    /// cannot be used).
    #[error("{0}")]
    Usage(String),
    /// `snapkeep node` could not start or stopped with an error.
    #[cfg(feature = "native")]
    #[error("{0}")]
    Node(#[from] crate::node::NodeError),
    /// The operation was aborted through its abort token (a snapshot
    /// deleted while it ran, a restore cancelled): nothing was committed;
    /// a snapshot's uploads are left to `repo cleanup`, a restore's staging
    /// folder to the next run of the same restore.
    #[error("{0} aborted")]
    Aborted(&'static str),
    /// The snapshot was committed, as PARTIAL: `failures` indices or
    /// files are missing from it (`first` says which and why). The CLI
    /// exits with its own status for it, after printing the snapshot.
    #[error("snapshot [{snapshot}] is PARTIAL: {failures} failure(s), the first {first}")]
    Partial {
        snapshot: String,
        failures: usize,
        first: String,
    },
    /// A node could not be reached (refused, timed out, TLS failure).
    #[error("cannot reach the node at {url}: {reason}")]
    NodeUnreachable { url: String, reason: String },
    /// A node answered a request with an error object (`kind` is its
    /// `type`); `body` is the whole answer, for `--json`.
    #[error("node answered {status} {kind}: {reason}")]
    NodeRequest {
        status: u16,
        kind: String,
        reason: String,
        body: serde_json::Value,
    },
    /// A lifecycle policy (file or request) that cannot be used.
    #[error("policy {policy}: {reason}")]
    BadPolicy { policy: String, reason: String },
}

impl From<RootConflict> for Error {
    fn from(c: RootConflict) -> Error {
        match c {
            RootConflict::SlotTaken {
                policy,
                slot_ms,
                recorded_ms,
                recorded_epoch,
            } => Error::SlotTaken {
                policy,
                slot_ms,
                recorded_ms,
                recorded_epoch,
            },
            other => Error::Conflict(other),
        }
    }
}

impl Error {
    /// Whether a commit was refused for sure (so no root names what it
    /// would have added), as opposed to failing ambiguously.
    pub fn is_refused_commit(&self) -> bool {
        matches!(self, Error::Conflict(_) | Error::SlotTaken { .. })
    }

    /// Whether running the same operation again may succeed: the repository
    /// was contended (a commit race lost, a create-only conflict with a
    /// concurrent writer or delete), the store stalled or timed out, or the
    /// source changed while it was read. Anything else (damage, a missing
    /// object, a refused request, a local failure) fails again until
    /// someone acts on it.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Storage(e) => e.is_retryable(),
            Error::UploadFailed { retryable, .. } => *retryable,
            Error::Conflict(c) => matches!(
                c,
                RootConflict::IndexFileGone(_)
                    | RootConflict::IndexRewritten
                    | RootConflict::SnapshotAdded(_)
            ),
            Error::CommitContention(_)
            | Error::Stalled { .. }
            | Error::ReusedDataRemoved { .. }
            | Error::Inconsistent { .. } => true,
            _ => false,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(e: StorageError) -> Error {
        Error::Storage(e)
    }

    #[test]
    fn contention_stalls_timeouts_and_changed_sources_are_retryable() {
        let retryable = [
            Error::CommitContention(8),
            Error::Conflict(RootConflict::IndexRewritten),
            Error::Conflict(RootConflict::IndexFileGone(Id::of(b"index"))),
            Error::Conflict(RootConflict::SnapshotAdded("s2".into())),
            Error::ReusedDataRemoved { id: Id::of(b"x") },
            Error::Stalled { seconds: 90 },
            Error::Inconsistent {
                count: 1,
                path: "a".into(),
                reason: "changed while read".into(),
            },
            storage(StorageError::Unavailable {
                detail: "503".into(),
            }),
            Error::UploadFailed {
                message: "storage unavailable: 503".into(),
                retryable: true,
            },
            storage(StorageError::TimedOut {
                what: "GET x".into(),
                option: "request_timeout",
                attempts: 3,
                elapsed_ms: 9000,
            }),
        ];
        for e in retryable {
            assert!(e.is_retryable(), "{e}");
        }
    }

    #[test]
    fn a_taken_slot_is_its_own_refusal() {
        let e = Error::from(RootConflict::SlotTaken {
            policy: "nightly".into(),
            slot_ms: 1,
            recorded_ms: 2,
            recorded_epoch: 3,
        });
        assert!(
            matches!(&e, Error::SlotTaken { policy, slot_ms: 1, recorded_ms: 2, recorded_epoch: 3 } if policy == "nightly")
        );
        assert!(e.is_refused_commit() && !e.is_retryable());
        let other = Error::from(RootConflict::ReadOnly);
        assert!(matches!(other, Error::Conflict(RootConflict::ReadOnly)));
    }

    #[test]
    fn damage_refusals_and_usage_are_permanent() {
        let permanent = [
            Error::Conflict(RootConflict::DuplicateSnapshot("s1".into())),
            Error::Conflict(RootConflict::ReadOnly),
            Error::from(RootConflict::SlotTaken {
                policy: "nightly".into(),
                slot_ms: 1,
                recorded_ms: 2,
                recorded_epoch: 1,
            }),
            Error::Integrity {
                id: Id::of(b"x"),
                detail: "content does not match its SHA-256".into(),
            },
            Error::BlobMissing {
                kind: "tree",
                id: Id::of(b"t"),
            },
            Error::SnapshotMissing("s".into()),
            Error::CheckFailed(2),
            Error::UploadThreadPanicked,
            Error::UploadFailed {
                message: "permission denied".into(),
                retryable: false,
            },
            Error::Usage("bad flag".into()),
            storage(StorageError::NotFound { key: "k".into() }),
            storage(StorageError::AlreadyExists { key: "k".into() }),
            storage(StorageError::PermissionDenied {
                key: "k".into(),
                detail: "403".into(),
            }),
        ];
        for e in permanent {
            assert!(!e.is_retryable(), "{e}");
        }
    }

    #[test]
    fn a_missing_tree_is_named_not_reported_as_damage() {
        let id = Id::of(b"tree");
        let text = Error::BlobMissing { kind: "tree", id }.to_string();
        assert_eq!(
            text,
            format!("tree {id} is missing: it is not in the repository index")
        );
    }

    #[test]
    fn the_probe_message_says_what_misbehaved() {
        let e = Error::ProbeMisbehaved {
            read_back: false,
            listed: true,
            deleted: false,
        };
        assert_eq!(
            e.to_string(),
            "storage probe misbehaved: read back different bytes, listed true, deleted false"
        );
    }
}
