//! Format v1: the objects a repository holds and how each is encoded,
//! byte for byte as docs/FORMAT.md describes them.

pub mod blob;
pub mod codec;
pub mod config;
pub mod id;
pub mod index;
pub mod keys;
pub mod manifest;
pub mod naming;
pub mod pack;
pub mod patch;
pub mod root;
pub mod sealed_config;
pub mod tree;
