//! The native shell reports the crate's one public error type.

pub use crate::error::{Error, Result};
