//! The native shell: files, threads and the storage runtime around the core.

pub mod backup;
pub mod check;
pub mod clock;
pub mod cpu;
pub mod decompressor;
pub mod delete;
pub mod dirfd;
pub mod error;
pub mod guard;
pub mod hooks;
pub mod inflight;
pub mod inspect;
pub mod job;
pub mod location;
pub mod maintenance;
pub mod owners;
pub mod progress;
pub mod repo;
pub mod reserve;
pub mod restore;
pub mod runtime;
pub mod sample;
pub mod tz;
pub mod xattrs;
