//! How reading one source file can fail. Its own module so the file reader
//! and the window queue can both use it without importing each other.

use std::io;

use crate::native::backup::packer::Added;
use crate::native::error::Error;

#[derive(Debug)]
pub enum ReadError {
    /// The file changed while it was read. What the read stored anyway
    /// (the chunks stay in the packs, unreferenced) is still this
    /// snapshot's cost.
    Changed(Added),
    /// The file could not be read.
    Io(io::Error),
    /// Storing its data failed: this fails the whole snapshot.
    Store(Error),
}

impl ReadError {
    /// A change report carries what the read stored anyway.
    pub fn with_added(self, added: Added) -> ReadError {
        match self {
            ReadError::Changed(_) => ReadError::Changed(added),
            other => other,
        }
    }
}
