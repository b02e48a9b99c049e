//! The storage port: the one door through which snapshot data leaves or
//! enters the process. Every backend implements [`Storage`] and passes the
//! shared suite in [`conformance`].
//!
//! Guarantees every implementation must give:
//! - `put` is atomic: a reader sees the whole old object, the whole new one,
//!   or nothing, never a prefix.
//! - `put(.., PutMode::Create)` succeeds for exactly one of several concurrent
//!   writers of one key (in any number of processes); the others get
//!   [`StorageError::AlreadyExists`].
//! - A successful `put` is visible to `get`, `head` and `list` at once.
//! - `get` with a range returns exactly those bytes; a range that ends past
//!   the object is cut at its end; one that starts past it is an error.
//! - `delete` of a missing key succeeds (deletes are idempotent).
//! - `list` returns every key under a prefix, sorted, with sizes.
//!
//! Keys are `/`-separated relative paths of safe components.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;

pub mod conformance;
pub mod counting;
#[cfg(feature = "native")]
pub mod direct;
#[cfg(feature = "native")]
pub mod edge;
pub mod edge_wire;
#[cfg(feature = "native")]
pub mod faulty;
#[cfg(feature = "native")]
pub mod guard;
#[cfg(feature = "native")]
pub mod local;
pub mod memory;
#[cfg(feature = "native")]
pub mod object;
#[cfg(feature = "native")]
mod read_buffers;
#[cfg(feature = "native")]
pub mod retry;
#[cfg(feature = "native")]
pub mod timeouts;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Replace the object if it exists.
    Overwrite,
    /// Fail with `AlreadyExists` if the object exists.
    Create,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Last modification, milliseconds since the Unix epoch, where the
    /// backend knows it (used to keep young unreferenced objects, which may
    /// belong to a snapshot still in flight).
    pub modified_ms: Option<i64>,
}

/// How long a request takes to come back, roughly: what decides how many
/// requests are worth keeping in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// A local disk or memory: requests are cheap, the work is the bytes.
    Local,
    /// A service over the network: each request waits a round trip.
    Remote,
}

/// What a backend is and offers, so callers ask instead of guessing from
/// its location. Wrappers answer with their inner store's capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// The store is this folder on a local filesystem (snapshots and
    /// restores must stay out of it; its free space can be watched).
    pub local_root: Option<PathBuf>,
    pub latency: Latency,
}

impl Capabilities {
    /// A store reached over the network, with no local folder.
    pub fn remote() -> Capabilities {
        Capabilities {
            local_root: None,
            latency: Latency::Remote,
        }
    }
}

/// A storage failure. `is_retryable` tells transient failures from permanent ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("object {key} not found")]
    NotFound { key: String },
    #[error("object {key} already exists")]
    AlreadyExists { key: String },
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("range {start}..{end} is outside object {key} ({size} bytes)")]
    InvalidRange {
        key: String,
        start: u64,
        end: u64,
        size: u64,
    },
    /// `key` is kept for code and tests; the message leaves the internal
    /// object name out, since the user can do nothing with it.
    #[error("permission denied by the storage: {detail}")]
    PermissionDenied { key: String, detail: String },
    #[error("storage unavailable: {detail}")]
    Unavailable { detail: String },
    #[error("bucket or container [{bucket}] does not exist")]
    BucketMissing { bucket: String },
    #[error("storage configuration: {detail}")]
    Config { detail: String },
    #[error("repository {location} is read-only (change it with `snapkeep repo settings --readonly false`)")]
    ReadOnly { location: String },
    #[error("storage error on {key}: {detail}")]
    Io { key: String, detail: String },
    /// An encrypted repository's object that does not open (altered,
    /// truncated, another kind or key), or that cannot be sealed here.
    #[error("{key}: {detail}")]
    Sealed { key: String, detail: String },
    /// A request outlived a time limit: `what` names the endpoint, the
    /// request and the limit; `option` is the storage option that sets it.
    /// The retry wrapper fills in the attempts made and the time they took.
    #[error("{}", timed_out(what, option, *attempts, *elapsed_ms))]
    TimedOut {
        what: String,
        option: &'static str,
        attempts: u32,
        elapsed_ms: u64,
    },
}

fn timed_out(what: &str, option: &str, attempts: u32, elapsed_ms: u64) -> String {
    let tries = if attempts > 1 {
        format!(
            " ({attempts} attempts over {} s)",
            (elapsed_ms + 500) / 1000
        )
    } else {
        String::new()
    };
    let verb = if option == "min_rate" {
        "lower"
    } else {
        "raise"
    };
    format!("{what}{tries}; {verb} with --storage-option {option}=...")
}

impl StorageError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StorageError::Unavailable { .. } | StorageError::TimedOut { .. }
        )
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// `Send + Sync` where there are threads. On wasm32 the bindings a store
/// holds (an R2 bucket, browser files) are single-threaded JS objects, and
/// everything runs on one thread anyway.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}
#[cfg(target_arch = "wasm32")]
pub trait MaybeSendSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSendSync for T {}

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait Storage: MaybeSendSync + fmt::Debug {
    /// Where this storage is, for messages (e.g. `file:///srv/backups`).
    fn location(&self) -> String;
    /// What this storage is; wrappers forward their inner store's answer.
    fn capabilities(&self) -> Capabilities;
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes>;
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> StorageResult<()>;
    /// Every object whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>>;
    async fn delete(&self, key: &str) -> StorageResult<()>;
    async fn head(&self, key: &str) -> StorageResult<ObjectMeta>;

    /// What writers killed mid-put left behind and `list` never shows (a
    /// local folder's temporary files), last modified before
    /// `older_than_ms`, sorted; keys are relative to the store. Backends
    /// whose interrupted writes leave nothing visible (object stores abort
    /// or expire incomplete uploads) keep this default. Wrappers forward.
    async fn leftovers(&self, older_than_ms: i64) -> StorageResult<Vec<ObjectMeta>> {
        let _ = older_than_ms;
        Ok(Vec::new())
    }

    /// Removes one of the [`Storage::leftovers`]; one already gone is no
    /// error. Wrappers forward (the read-only one refuses).
    async fn remove_leftover(&self, key: &str) -> StorageResult<()> {
        Err(StorageError::InvalidKey {
            key: key.to_string(),
            reason: "this storage keeps no leftovers",
        })
    }
}

/// Checks a key against the rules every backend shares.
pub fn validate_key(key: &str) -> StorageResult<()> {
    let bad = |reason| {
        Err(StorageError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.starts_with('/') || key.ends_with('/') {
        return bad("leading or trailing '/'");
    }
    for part in key.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return bad("empty, '.' or '..' component");
        }
        if part.starts_with(".tmp-") {
            return bad("'.tmp-' names are reserved for temporary files");
        }
        if part.contains('\\') || part.contains('\0') {
            return bad("'\\' or NUL");
        }
    }
    Ok(())
}

/// Cuts `range` to an object of `size` bytes, per the port's range rule.
pub fn clamp_range(key: &str, range: Option<Range<u64>>, size: u64) -> StorageResult<Range<u64>> {
    let r = range.unwrap_or(0..size);
    if r.start > r.end || r.start > size {
        return Err(StorageError::InvalidRange {
            key: key.to_string(),
            start: r.start,
            end: r.end,
            size,
        });
    }
    Ok(r.start..r.end.min(size))
}
