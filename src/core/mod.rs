//! The pure core: values in, values out.
//!
//! Nothing in here reads a file, opens a socket, looks at a clock, spawns a
//! thread or awaits: time and ids are parameters, bytes arrive as slices, and
//! the answers are values (chunk boundaries, encoded objects, plans). The
//! shells in `crate::native` (and later the wasm shells) are loops around it.
//! CI proves this by building the core for `wasm32-unknown-unknown` with no
//! default features.

pub mod chunker;
pub mod error;
pub mod format;
pub mod plan;
pub mod policy;
pub mod seeded;
#[cfg(test)]
pub(crate) mod testing;
