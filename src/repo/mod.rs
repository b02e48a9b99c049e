//! Async, read-side access to a repository through the storage port, shared
//! by every shell: the native CLI drives it with `block_on`, the edge Worker
//! and the browser inspector await it on their single-threaded runtimes.
//!
//! It holds no clock, threads or runtime of its own; the core decides, this
//! layer only fetches the objects the core needs and verifies them.

pub mod http_range;
pub mod reader;
pub mod restore;
pub mod shapes;
pub mod views;

pub use reader::RepoReader;
