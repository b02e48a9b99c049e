//! Repository maintenance: `repo verify` (a write/read/list/delete probe),
//! `repo cleanup` (unreferenced objects) and `repo analyze` (the storage
//! semantics snapkeep relies on, with timings).

mod analyze;
mod cleanup;
mod verify;

pub use crate::core::policy::keep::{DEFAULT_GRACE, TEMP_MIN_AGE};
pub use analyze::{analyze, Probe};
pub use cleanup::{cleanup, CleanupReport};
pub use verify::verify;
