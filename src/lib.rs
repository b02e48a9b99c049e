//! snapkeep: Elasticsearch-style snapshot, restore and replication for any
//! data directory, with content-defined deduplication.
//!
//! ```text
//!  src/core     pure: format v1, chunking, trees, manifests, plans (wasm-safe)
//!     ▲ values in, values out
//!  src/storage  the storage port (async trait) + memory and local backends
//!     ▲
//!  src/repo     the repository layer: async reads, writes, check, delete,
//!               cleanup, shared by every shell
//!  src/native   the native shell: the synchronous facade over src/repo,
//!               snapshot pipeline, restore (feature `native`)
//!  src/cli      the `snapkeep` command line (feature `native`)
//!  src/node     `snapkeep node`: Elasticsearch's snapshot REST API (feature `native`)
//!  src/api      the HTTP API over repositories, transport-neutral (Worker, node)
//!  src/edge     the Cloudflare Worker API on R2 (feature `worker`, wasm32)
//!  src/inspector the browser inspector's wasm API (feature `inspector`)
//! ```
#![forbid(unsafe_code)]

pub mod api;
#[cfg(feature = "native")]
pub mod cli;
// The core is pure: clippy.toml lists the clocks, files, threads, locks and
// random sources it must not reach (allowed for the shells in Cargo.toml).
#[deny(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::disallowed_macros
)]
pub mod core;
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
pub mod edge;
pub mod error;
#[cfg(all(feature = "inspector", target_arch = "wasm32"))]
pub mod inspector;
#[cfg(feature = "native")]
pub mod native;
#[cfg(feature = "native")]
pub mod node;
pub mod repo;
pub mod storage;
