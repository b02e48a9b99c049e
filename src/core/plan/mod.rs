//! Plans: what an operation will read, write or delete, computed from
//! values (trees, indexes, what a target holds) before anything is done.

pub mod copy;
pub mod diff;
pub mod gc;
pub mod read;
pub mod rekey;
pub mod restore;
pub mod shape;
pub mod subset;
