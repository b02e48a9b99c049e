//! The pure core: values in, values out.
//!
//! Nothing in here reads a file, opens a socket, looks at a clock, spawns a
//! thread or awaits: time and ids are parameters, bytes arrive as slices, and
//! the answers are values (chunk boundaries, encoded objects, plans). The
//! shells in `crate::native` (and later the wasm shells) are loops around it.
//! CI proves this by building the core for `wasm32-unknown-unknown` with no
//! default features.

pub mod blob;
pub mod chunker;
pub mod codec;
pub mod config;
pub mod diff;
pub mod error;
pub mod gc;
pub mod id;
pub mod index;
pub mod keys;
pub mod listing;
pub mod manifest;
pub mod naming;
pub mod pack;
pub mod read_plan;
pub mod restore_plan;
pub mod root;
pub mod selection;
pub mod shape;
pub mod tree;
