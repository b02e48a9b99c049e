//! The pure core: values in, values out.
//!
//! Nothing in here reads a file, opens a socket, looks at a clock, spawns a
//! thread or awaits: time and ids are parameters, bytes arrive as slices, and
//! the answers are values (chunk boundaries, encoded objects, plans). The
//! shells in `crate::native` (and later the wasm shells) are loops around it.
//! CI proves this: clippy denies the calls `clippy.toml` lists in here (see
//! `mod core` in `src/lib.rs`), and the core builds for
//! `wasm32-unknown-unknown` with no default features, where its unit tests
//! run too: a test module here starts with
//! `#[cfg(target_arch = "wasm32")] use wasm_bindgen_test::wasm_bindgen_test as test;`
//! so its `#[test]`s run under wasm-bindgen-test-runner.

pub mod ccr;
pub mod chunker;
pub mod chunking;
pub mod crypto;
pub mod elapsed;
pub mod error;
pub mod es;
pub mod format;
pub mod lazy;
pub mod plan;
pub mod policy;
pub mod seeded;
pub mod slm;
#[cfg(test)]
pub(crate) mod testing;
