//! Lazy reads of snapshot files: the decisions every shell that serves a
//! byte range of a file without restoring it shares (the FUSE mount, the
//! node's file endpoint, the Worker's Range reads, the inspector's
//! downloads).
//!
//! ```text
//!  Inodes          the entries a mount shows, numbered, hard links resolved
//!  FileLayout      a file's chunks: where each sits in the file and in its pack
//!  LazyReader      read(offset, len) -> Ready(bytes) | Need(pack reads), with read-ahead
//!  CachePolicy     which chunks a bounded cache keeps (LRU, pins, stats)
//!  CachedRead      one read served through the policy and the shell's ChunkStore
//!  Hold            the chunks an open file keeps pinned
//!  FillMap         which blocks of a writable layer's file hold their bytes yet
//! ```
//!
//! The shell owns the bytes: it fetches the pack ranges a `Need` names,
//! verifies and decodes each blob, hands the chunks to its cache (asking the
//! policy what to evict) and asks again.

pub mod cache;
pub mod fill;
pub mod inodes;
pub mod layout;
pub mod reader;
pub mod serve;
#[cfg(test)]
mod simulation;
