//! Policies: the rules operations follow, as functions of values. Each
//! shell (CLI, edge Worker, browser inspector) asks these instead of
//! deciding for itself, so they all answer alike.
//!
//! - [`selection`]: which indices an `--indices` expression selects, and
//!   how `--rename-pattern` renames them.
//! - [`global_state`]: which top-level entries of a data directory are
//!   global state rather than index folders (backup and restore).
//! - [`delete`]: which snapshots `snapshot delete`'s names and patterns
//!   remove, and when they select nothing.
//! - [`listing`]: listing queries (sort, order, size, cursor) parsed from
//!   text, and how listings sort and page.
//! - [`read_subset`]: which packs `repo check --read-data-subset` reads.
//! - [`parents`]: which earlier snapshot a new one deduplicates against.
//! - [`revive`]: what a snapshot indexes again when a concurrent delete
//!   rewrote the index it deduplicated against.
//! - [`inflight`]: in-flight markers, when one is live or stale, and when
//!   an operation must not commit.
//! - [`keep`]: which unreferenced objects cleanup keeps.
//! - [`exclude`]: which paths `snapshot create --exclude` leaves out.
//! - [`include`]: which paths of a snapshot `restore --include` restores.
//! - [`snapshot_path`]: what a path given to `snapshot ls` / `snapshot
//!   dump` names (an index and a path inside it).
//! - [`hooks`]: which consistency hook applies to an index, and what a
//!   failed hook (or any index failure) makes of a snapshot.

pub mod delete;
pub mod exclude;
pub mod global_state;
pub mod hooks;
pub mod include;
pub mod inflight;
pub mod keep;
pub mod listing;
pub mod parents;
pub mod pins;
pub mod read_subset;
pub mod revive;
pub mod selection;
pub mod snapshot_path;
