//! The follower side of cross-cluster replication on disk: a checkpoint
//! applied over a follower folder so that readers always see one whole
//! checkpoint, and the check that nobody wrote into a follower folder.
//! Decisions (what to apply, when) are `core::ccr`'s.

pub mod apply;
pub mod checkpoint;
pub mod delta;
mod switch;
