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

pub mod delete;
pub mod global_state;
pub mod listing;
pub mod read_subset;
pub mod selection;

/// A summary with every field empty, for tests to fill in.
#[cfg(test)]
pub(crate) fn empty_summary() -> crate::core::format::manifest::SnapshotSummary {
    crate::core::format::manifest::SnapshotSummary {
        snapshot: String::new(),
        uuid: String::new(),
        state: crate::core::format::manifest::SnapshotState::Success,
        start_time_in_millis: 0,
        end_time_in_millis: 0,
        indices: vec![],
        include_global_state: false,
        size_in_bytes: 0,
        new_bytes: 0,
        new_stored_bytes: 0,
        files: 0,
        failures: 0,
        manifest: None,
    }
}
