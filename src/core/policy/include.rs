//! Which paths of a snapshot `restore --include` restores: globs over the
//! snapshot's paths as `snapshot ls` shows them (relative to the data
//! directory, `index/sub/file`, global-state entries by their own names,
//! index names as in the snapshot, before any rename).
//!
//! `*` and `?` stay inside one path component, `**` crosses folders, and a
//! path is selected when it or one of its folders matches, so
//! `--include logs/2026` restores that folder with everything in it.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// An `--include` pattern that is not a glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncludeError {
    #[error("--include {pattern:?} is not a valid glob: {reason}")]
    BadGlob { pattern: String, reason: String },
    #[error("--include {0:?} names no path (use e.g. 'logs/**/*.json')")]
    Empty(String),
    #[error("--include {0:?}: paths in a snapshot have no '..' components")]
    Parent(String),
}

/// Compiled `--include` globs.
#[derive(Debug, Clone)]
pub struct PathFilter {
    patterns: Vec<String>,
    set: GlobSet,
}

impl PathFilter {
    /// Compiles `patterns`; a leading or trailing `/` is ignored (paths in
    /// a snapshot are relative).
    pub fn new(patterns: &[String]) -> Result<PathFilter, IncludeError> {
        let mut set = GlobSetBuilder::new();
        let mut kept = Vec::with_capacity(patterns.len());
        for raw in patterns {
            let p = raw.trim_matches('/');
            if p.is_empty() {
                return Err(IncludeError::Empty(raw.clone()));
            }
            if p.split('/').any(|c| c == "..") {
                return Err(IncludeError::Parent(raw.clone()));
            }
            let glob = GlobBuilder::new(p)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| IncludeError::BadGlob {
                    pattern: raw.clone(),
                    reason: e.kind().to_string(),
                })?;
            set.add(glob);
            kept.push(p.to_string());
        }
        let set = set.build().map_err(|e| IncludeError::BadGlob {
            pattern: patterns.join(","),
            reason: e.kind().to_string(),
        })?;
        Ok(PathFilter {
            patterns: kept,
            set,
        })
    }

    /// The patterns as given (without leading or trailing `/`).
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `path` itself matches a pattern.
    pub fn matches(&self, path: &str) -> bool {
        self.set.is_match(path)
    }

    /// Whether `path` or one of the folders it lies in matches a pattern:
    /// what a restore with this filter writes.
    pub fn selects(&self, path: &str) -> bool {
        self.matches(path)
            || path
                .match_indices('/')
                .any(|(at, _)| self.matches(&path[..at]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn filter(patterns: &[&str]) -> PathFilter {
        PathFilter::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn a_star_stays_in_its_folder_and_two_stars_cross_folders() {
        let f = filter(&["logs/*.json"]);
        assert!(f.selects("logs/a.json"));
        assert!(!f.selects("logs/sub/a.json"));
        assert!(!f.selects("metrics/a.json"));
        let f = filter(&["logs/**/*.json"]);
        assert!(f.selects("logs/a.json"));
        assert!(f.selects("logs/sub/deeper/a.json"));
        assert!(!f.selects("logs/sub/a.log"));
    }

    #[test]
    fn a_matching_folder_selects_everything_in_it() {
        let f = filter(&["/logs/2026/"]);
        assert_eq!(f.patterns(), ["logs/2026"]);
        assert!(f.selects("logs/2026"));
        assert!(f.selects("logs/2026/12/a.log"));
        assert!(!f.selects("logs/2025/a.log"));
        assert!(!f.selects("logs"), "a parent of a match is not selected");
        assert!(!f.selects("logs/20261"));
    }

    #[test]
    fn any_pattern_may_match() {
        let f = filter(&["settings.json", "logs/a?.log"]);
        assert!(f.selects("settings.json"));
        assert!(f.selects("logs/ab.log"));
        assert!(!f.selects("logs/abc.log"));
    }

    #[test]
    fn bad_patterns_are_refused_with_their_reason() {
        let err = |p: &str| PathFilter::new(&[p.to_string()]).unwrap_err();
        assert!(matches!(err("logs/[a"), IncludeError::BadGlob { .. }));
        assert_eq!(err("/"), IncludeError::Empty("/".into()));
        assert_eq!(err("logs/../x"), IncludeError::Parent("logs/../x".into()));
    }
}
