//! Chunking rules (`repo init --chunking-rule PATTERN=MODE`): the mode a
//! file is cut with, chosen by its path inside its index. The first rule
//! whose pattern matches wins; a file no rule matches is cut by the
//! repository's `chunking` (usually `auto`).
//!
//! Patterns are globs with `.gitignore`'s sense of where they apply: one
//! without a `/` matches a name at any depth (`*.sqlite`); one with a `/`
//! is anchored at the index folder (`base/**`, `/pg_wal/**`). `*` and `?`
//! never match `/`; `**` matches any number of folders.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::Chunking;

/// One rule as the config holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkingRule {
    pub pattern: String,
    /// `cdc`, `auto` or `pages:SIZE`, as `--chunking` spells it.
    #[serde(with = "mode_name")]
    pub chunking: Chunking,
}

/// A rule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("chunking rule [{0}] is not PATTERN=MODE (for example *.sqlite=pages:4KiB)")]
    Shape(String),
    #[error("chunking rule [{rule}]: {reason}")]
    Mode { rule: String, reason: String },
    #[error("chunking rule pattern [{pattern}] is not a valid glob: {reason}")]
    Glob { pattern: String, reason: String },
}

impl ChunkingRule {
    /// Parses `PATTERN=MODE` (split at the last `=`, so a pattern may hold
    /// one).
    pub fn parse(s: &str) -> Result<ChunkingRule, RuleError> {
        let (pattern, mode) = s
            .rsplit_once('=')
            .filter(|(p, m)| !p.trim().is_empty() && !m.trim().is_empty())
            .ok_or_else(|| RuleError::Shape(s.to_string()))?;
        let chunking = Chunking::parse(mode).map_err(|e| RuleError::Mode {
            rule: s.to_string(),
            reason: e.to_string(),
        })?;
        let rule = ChunkingRule {
            pattern: pattern.trim().to_string(),
            chunking,
        };
        ChunkingRules::new(std::slice::from_ref(&rule))?;
        Ok(rule)
    }
}

/// The compiled rules of a repository.
#[derive(Debug, Clone)]
pub struct ChunkingRules {
    set: GlobSet,
    modes: Vec<Chunking>,
}

impl Default for ChunkingRules {
    fn default() -> ChunkingRules {
        ChunkingRules {
            set: GlobSet::empty(),
            modes: Vec::new(),
        }
    }
}

impl ChunkingRules {
    pub fn new(rules: &[ChunkingRule]) -> Result<ChunkingRules, RuleError> {
        let mut set = GlobSetBuilder::new();
        for rule in rules {
            let glob = match rule.pattern.strip_prefix('/') {
                Some(anchored) => anchored.to_string(),
                None if rule.pattern.contains('/') => rule.pattern.clone(),
                None => format!("**/{}", rule.pattern),
            };
            let compiled = GlobBuilder::new(&glob)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| RuleError::Glob {
                    pattern: rule.pattern.clone(),
                    reason: e.kind().to_string(),
                })?;
            set.add(compiled);
        }
        let set = set.build().map_err(|e| RuleError::Glob {
            pattern: rules.iter().map(|r| r.pattern.as_str()).collect(),
            reason: e.to_string(),
        })?;
        Ok(ChunkingRules {
            set,
            modes: rules.iter().map(|r| r.chunking).collect(),
        })
    }

    /// The mode of the first rule matching `path` (inside its index,
    /// `/`-separated), if any does.
    pub fn mode_for(&self, path: &str) -> Option<Chunking> {
        if self.modes.is_empty() {
            return None;
        }
        let first = self.set.matches(path).into_iter().min()?;
        Some(self.modes[first])
    }
}

/// A rule's mode as its name (`pages:4KiB`) in the config.
mod mode_name {
    use super::Chunking;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mode: &Chunking, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&mode.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Chunking, D::Error> {
        let name = String::deserialize(d)?;
        Chunking::parse(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn rules(specs: &[&str]) -> ChunkingRules {
        let parsed: Vec<ChunkingRule> = specs
            .iter()
            .map(|s| ChunkingRule::parse(s).unwrap())
            .collect();
        ChunkingRules::new(&parsed).unwrap()
    }

    #[test]
    fn the_first_matching_rule_wins_and_unmatched_paths_have_none() {
        let r = rules(&[
            "pg_wal/**=cdc",
            "*.sqlite=pages:4KiB",
            "base/**=pages:8KiB",
            "**=auto",
        ]);
        let pages = |page_size| Some(Chunking::Pages { page_size });
        assert_eq!(r.mode_for("app.sqlite"), pages(4096));
        assert_eq!(r.mode_for("deep/down/app.sqlite"), pages(4096));
        // Earlier rules win over later ones that also match.
        assert_eq!(r.mode_for("base/1/app.sqlite"), pages(4096));
        assert_eq!(r.mode_for("base/1/16384"), pages(8192));
        assert_eq!(
            r.mode_for("pg_wal/000000010000000000000001"),
            Some(Chunking::Cdc)
        );
        // Anchored: pg_wal inside another folder is not the index's.
        assert_eq!(r.mode_for("x/pg_wal/1"), Some(Chunking::Auto));
        assert_eq!(rules(&["base/*=cdc"]).mode_for("base/1/2"), None);
        assert_eq!(ChunkingRules::default().mode_for("a"), None);
    }

    #[test]
    fn bad_rules_name_what_is_wrong() {
        for shape in ["*.sqlite", "=cdc", "*.db=", ""] {
            assert!(
                matches!(ChunkingRule::parse(shape), Err(RuleError::Shape(_))),
                "{shape}"
            );
        }
        let mode = ChunkingRule::parse("*.db=pages:3KiB").unwrap_err();
        assert!(mode.to_string().contains("4KiB, 8KiB"), "{mode}");
        let glob = ChunkingRule::parse("a[=cdc").unwrap_err();
        assert!(matches!(glob, RuleError::Glob { .. }), "{glob}");
        // A pattern may hold `=`: the mode follows the last one.
        let eq = ChunkingRule::parse("a=b.db=cdc").unwrap();
        assert_eq!(eq.pattern, "a=b.db");
    }

    #[test]
    fn rules_round_trip_through_the_config_by_name() {
        let rule = ChunkingRule::parse("*.sqlite=pages:4KiB").unwrap();
        let text = serde_json::to_string(&rule).unwrap();
        assert_eq!(text, r#"{"pattern":"*.sqlite","chunking":"pages:4KiB"}"#);
        assert_eq!(serde_json::from_str::<ChunkingRule>(&text).unwrap(), rule);
    }
}
