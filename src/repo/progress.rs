//! Progress of a long operation, reported to whoever shows it: the CLI's
//! bar or JSON events, a server's status endpoint, or nobody. The layer only
//! counts; drawing is the shell's.

use crate::storage::MaybeSendSync;

/// Byte progress of one step (e.g. `repo check --read-data` downloading
/// packs). Called from whichever task does the work, so implementations
/// count with atomics or locks.
pub trait Progress: MaybeSendSync {
    /// The step starts; `total` bytes are expected.
    fn start(&self, total: u64);
    /// `bytes` more are done.
    fn advance(&self, bytes: u64);
    /// The step is over (also when it ends short of `total`).
    fn finish(&self);
}

/// Reports to nobody.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
