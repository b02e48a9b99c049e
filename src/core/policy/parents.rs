//! Which earlier snapshot an index is deduplicated against: its files whose
//! size, mtime and inode match that snapshot's nodes keep their chunk lists
//! and are never read again.

use crate::core::format::manifest::{SnapshotState, SnapshotSummary, GLOBAL_STATE};

/// The newest snapshot (by start time) that holds `index` and did not fail.
/// For [`GLOBAL_STATE`], the newest that includes global state. A tie on
/// start time goes to the snapshot listed first in the root.
pub fn parent_for<'a>(
    snapshots: &'a [SnapshotSummary],
    index: &str,
) -> Option<&'a SnapshotSummary> {
    snapshots
        .iter()
        .filter(|s| s.state != SnapshotState::Failed)
        .filter(|s| {
            if index == GLOBAL_STATE {
                s.include_global_state
            } else {
                s.indices.iter().any(|i| i == index)
            }
        })
        .fold(None, |best: Option<&SnapshotSummary>, s| match best {
            Some(b) if b.start_time_in_millis >= s.start_time_in_millis => Some(b),
            _ => Some(s),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn summary(name: &str, start: i64, indices: &[&str], global: bool) -> SnapshotSummary {
        SnapshotSummary {
            start_time_in_millis: start,
            end_time_in_millis: start + 1,
            indices: indices.iter().map(|s| s.to_string()).collect(),
            include_global_state: global,
            ..testing::summary(name)
        }
    }

    #[test]
    fn newest_snapshot_holding_the_index_wins() {
        let all = [
            summary("old", 10, &["logs", "users"], false),
            summary("new", 30, &["users"], true),
            summary("mid", 20, &["logs"], false),
        ];
        assert_eq!(parent_for(&all, "logs").unwrap().snapshot, "mid");
        assert_eq!(parent_for(&all, "users").unwrap().snapshot, "new");
        assert_eq!(parent_for(&all, GLOBAL_STATE).unwrap().snapshot, "new");
        assert!(parent_for(&all, "orders").is_none());
    }

    #[test]
    fn failed_snapshots_are_never_parents_but_partial_ones_are() {
        let mut failed = summary("failed", 50, &["logs"], true);
        failed.state = SnapshotState::Failed;
        let mut partial = summary("partial", 40, &["logs"], false);
        partial.state = SnapshotState::Partial;
        let all = [summary("ok", 10, &["logs"], true), failed, partial];
        assert_eq!(parent_for(&all, "logs").unwrap().snapshot, "partial");
        assert_eq!(parent_for(&all, GLOBAL_STATE).unwrap().snapshot, "ok");
    }

    #[test]
    fn equal_start_times_keep_the_first_listed() {
        let all = [
            summary("a", 10, &["x"], false),
            summary("b", 10, &["x"], false),
        ];
        assert_eq!(parent_for(&all, "x").unwrap().snapshot, "a");
    }
}
