//! Cross-cluster replication decisions (issue #17): what a follower does
//! next, how a leader keeps what followers still read, and how two
//! histories of one index relate after a failover.
//!
//! The model: a leader turns a followed index into **checkpoints**,
//! ordinary snapshots in a checkpoint repository, numbered `seq` = 1, 2, …
//! within a **lineage** (the identity of one line of history). A follower
//! applies the newest checkpoint with the restore plan over the folder it
//! already holds, so whatever it holds is the base of a delta: there is no
//! checkpoint a follower must have read to catch up, and no cliff after a
//! long absence. A promotion starts a new lineage forked at the checkpoint
//! the promoted follower held; an old leader that kept writing past that
//! checkpoint is then *diverged* from it, and says so.
//!
//! Everything here is a value: times are milliseconds passed in, and the
//! node's shells do the reading, applying and waiting.

pub mod auto_follow;
pub mod checkpoint;
pub mod delta;
pub mod feed;
pub mod follower;
pub mod lease;
pub mod lineage;
pub mod remote;
#[cfg(test)]
mod simulation;
