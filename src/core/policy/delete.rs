//! Which snapshots `snapshot delete` removes: each argument is a snapshot
//! name or a `*` pattern, resolved against the snapshots a root lists.

use std::collections::BTreeSet;

use crate::core::format::manifest::SnapshotSummary;
use crate::core::policy::selection::wildcard_match;

/// Names that select nothing to delete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteSelectionError {
    /// A name without a wildcard that no snapshot has, or (all the
    /// arguments joined with `,`) patterns that together match no snapshot.
    #[error("snapshot [{0}] is missing")]
    Missing(String),
}

/// The names of the snapshots `patterns` select, sorted. A plain name must
/// exist; a pattern may match nothing as long as the arguments together
/// select at least one snapshot.
pub fn select_for_delete(
    snapshots: &[SnapshotSummary],
    patterns: &[String],
) -> Result<BTreeSet<String>, DeleteSelectionError> {
    let mut doomed = BTreeSet::new();
    for p in patterns {
        let hits: Vec<&str> = snapshots
            .iter()
            .map(|s| s.snapshot.as_str())
            .filter(|n| wildcard_match(p, n))
            .collect();
        if hits.is_empty() && !p.contains('*') {
            return Err(DeleteSelectionError::Missing(p.clone()));
        }
        doomed.extend(hits.into_iter().map(str::to_string));
    }
    if doomed.is_empty() {
        return Err(DeleteSelectionError::Missing(patterns.join(",")));
    }
    Ok(doomed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::summary;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn snapshots(names: &[&str]) -> Vec<SnapshotSummary> {
        names.iter().map(|n| summary(n)).collect()
    }

    fn select(names: &[&str], patterns: &[&str]) -> Result<Vec<String>, DeleteSelectionError> {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        select_for_delete(&snapshots(names), &patterns).map(|s| s.into_iter().collect())
    }

    #[test]
    fn names_and_patterns_select_a_sorted_set_without_repeats() {
        let all = ["nightly-2", "nightly-1", "weekly-1", "manual"];
        assert_eq!(select(&all, &["manual"]).unwrap(), ["manual"]);
        assert_eq!(
            select(&all, &["nightly-*", "nightly-1", "manual"]).unwrap(),
            ["manual", "nightly-1", "nightly-2"]
        );
        assert_eq!(select(&all, &["*"]).unwrap().len(), 4);
        assert_eq!(
            select(&all, &["*-1", "nomatch-*"]).unwrap(),
            ["nightly-1", "weekly-1"]
        );
    }

    #[test]
    fn a_missing_name_or_an_empty_selection_is_an_error() {
        let all = ["nightly-1", "manual"];
        assert_eq!(
            select(&all, &["nightly-*", "gone"]),
            Err(DeleteSelectionError::Missing("gone".into()))
        );
        assert_eq!(
            select(&all, &["weekly-*", "monthly-*"]),
            Err(DeleteSelectionError::Missing("weekly-*,monthly-*".into()))
        );
        assert_eq!(
            select(&[], &["*"]),
            Err(DeleteSelectionError::Missing("*".into()))
        );
        assert_eq!(
            select(&all, &["nightly"]),
            Err(DeleteSelectionError::Missing("nightly".into())),
            "a name is not a prefix"
        );
    }
}
