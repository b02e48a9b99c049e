//! Auto-follow patterns (`PUT /_ccr/auto_follow/<name>`): which indices of
//! a remote become follower indices here, and under which names.
//!
//! As in Elasticsearch, a pattern follows the leader indices that appear
//! after it was made: those that match when it is put are recorded as
//! seen, and so is every index it followed.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::core::policy::selection::wildcard_match;

/// The placeholder of `follow_index_pattern`.
pub const LEADER_INDEX: &str = "{{leader_index}}";

/// One pattern's matching rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pattern {
    pub remote_cluster: String,
    pub leader_index_patterns: Vec<String>,
    #[serde(default)]
    pub leader_index_exclusion_patterns: Vec<String>,
    /// The follower's name, `{{leader_index}}` replaced by the leader's.
    #[serde(default = "same_name")]
    pub follow_index_pattern: String,
}

fn same_name() -> String {
    LEADER_INDEX.to_string()
}

/// Why a pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("[leader_index_patterns] needs at least one pattern")]
    NoPatterns,
    #[error("[follow_index_pattern] [{0}] gives every leader index the same follower: it must contain {{{{leader_index}}}}")]
    OneFollowerForAll(String),
}

impl Pattern {
    pub fn check(&self) -> Result<(), PatternError> {
        if self.leader_index_patterns.is_empty() {
            return Err(PatternError::NoPatterns);
        }
        if !self.follow_index_pattern.contains(LEADER_INDEX) {
            return Err(PatternError::OneFollowerForAll(
                self.follow_index_pattern.clone(),
            ));
        }
        Ok(())
    }

    /// Whether leader index `name` is one this pattern follows. Hidden
    /// indices (`.`-names) only by a pattern that names them so.
    pub fn matches(&self, name: &str) -> bool {
        let hit = |patterns: &[String]| {
            patterns
                .iter()
                .any(|p| wildcard_match(p, name) && (!name.starts_with('.') || p.starts_with('.')))
        };
        hit(&self.leader_index_patterns) && !hit(&self.leader_index_exclusion_patterns)
    }

    pub fn follower_name(&self, leader: &str) -> String {
        self.follow_index_pattern.replace(LEADER_INDEX, leader)
    }

    /// The leader indices of `listed` to follow now, with their follower
    /// names: matching and not `seen` before, in name order.
    pub fn new_follows(&self, listed: &[String], seen: &BTreeSet<String>) -> Vec<(String, String)> {
        let mut names: Vec<&String> = listed
            .iter()
            .filter(|l| self.matches(l) && !seen.contains(*l))
            .collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|l| (l.clone(), self.follower_name(l)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn pattern(include: &[&str], exclude: &[&str], follow: &str) -> Pattern {
        Pattern {
            remote_cluster: "a".into(),
            leader_index_patterns: include.iter().map(|s| s.to_string()).collect(),
            leader_index_exclusion_patterns: exclude.iter().map(|s| s.to_string()).collect(),
            follow_index_pattern: follow.into(),
        }
    }

    #[test]
    fn new_matching_indices_are_followed_under_their_pattern_name() {
        let p = pattern(&["logs-*"], &["logs-tmp*"], "{{leader_index}}-copy");
        let listed: Vec<String> = ["logs-1", "logs-2", "logs-tmp1", "metrics", ".logs-x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let seen = BTreeSet::from(["logs-1".to_string()]);
        assert_eq!(
            p.new_follows(&listed, &seen),
            [("logs-2".to_string(), "logs-2-copy".to_string())]
        );
        assert!(pattern(&[".logs-*"], &[], LEADER_INDEX).matches(".logs-x"));
        assert!(!pattern(&["*"], &[], LEADER_INDEX).matches(".logs-x"));
    }

    #[test]
    fn a_pattern_without_patterns_or_placeholder_is_refused() {
        assert_eq!(
            pattern(&[], &[], LEADER_INDEX).check(),
            Err(PatternError::NoPatterns)
        );
        let one = pattern(&["*"], &[], "copy").check().unwrap_err();
        assert!(one.to_string().contains("{{leader_index}}"), "{one}");
        assert_eq!(pattern(&["*"], &[], LEADER_INDEX).check(), Ok(()));
    }
}
