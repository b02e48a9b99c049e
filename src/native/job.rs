//! What a caller holds on a snapshot or restore it runs on another thread:
//! the abort token (the live status types are in `backup::status` and
//! `restore::status`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::native::error::{Error, Result};

/// A shared flag that asks a running snapshot or restore to stop. The work
/// checks it between files and chunks (one relaxed load each), so it stops
/// within a chunk's work of the request.
#[derive(Debug, Clone, Default)]
pub struct Abort(Arc<AtomicBool>);

impl Abort {
    pub fn new() -> Abort {
        Abort::default()
    }

    /// Asks the work holding a clone of this token to stop.
    pub fn abort(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_aborted(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Error::Aborted(what))` once aborted.
    pub fn check(&self, what: &'static str) -> Result<()> {
        if self.is_aborted() {
            Err(Error::Aborted(what))
        } else {
            Ok(())
        }
    }
}
