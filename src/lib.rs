//! snapkeep: Elasticsearch-style snapshot, restore and replication for any
//! data directory, with content-defined deduplication.
//!
//! ```text
//!  src/core     pure: format v1, chunking, trees, manifests, plans (wasm-safe)
//!     ▲ values in, values out
//!  src/storage  the storage port (async trait) + memory and local backends
//!     ▲
//!  src/native   the native shell: repository operations, snapshot pipeline,
//!               restore, check, delete (feature `native`)
//!  src/cli      the `snapkeep` command line (feature `native`)
//! ```
#![forbid(unsafe_code)]

pub mod access;
#[cfg(feature = "native")]
pub mod cli;
pub mod core;
pub mod error;
#[cfg(feature = "native")]
pub mod native;
pub mod storage;
