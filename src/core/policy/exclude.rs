//! `snapshot create --exclude PATTERN` / `--exclude-file FILE`: which paths
//! of the source a snapshot leaves out, decided from the path alone.
//!
//! Patterns follow `.gitignore`'s rules for where they apply:
//! - a pattern without a `/` (but a trailing one) matches a name at any
//!   depth: `*.tmp`, `cache`;
//! - a pattern with a `/` at its start or in its middle is anchored at the
//!   source folder: `/MyIndex`, `logs-1/tmp/*`;
//! - a trailing `/` matches folders only: `tmp/`;
//! - `*` and `?` never match `/`; `**` matches any number of folders;
//! - a folder that matches is left out with everything below it.
//!
//! Paths are relative to the source folder, `/`-separated: an index's
//! entries start with the index's name (`logs-1/sub/a.log`), global state
//! entries are top-level names. Negation (`!pattern`) is refused rather than
//! half supported: a re-included file below an excluded folder would never
//! be seen, since excluded folders are not walked.
//!
//! In an exclude file, blank lines and lines starting with `#` are skipped
//! and trailing spaces are dropped.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExcludeError {
    #[error("exclude pattern {0:?} is empty")]
    Empty(String),
    #[error(
        "exclude pattern {0:?} is a negation, which is not supported: narrow the other patterns instead"
    )]
    Negation(String),
    #[error("exclude pattern {pattern:?} is not a valid glob: {reason}")]
    Glob { pattern: String, reason: String },
}

/// The compiled patterns of one snapshot.
#[derive(Debug, Clone)]
pub struct Excludes {
    /// Patterns that match files and folders alike.
    any: GlobSet,
    /// Patterns with a trailing `/`: folders only.
    dirs: GlobSet,
}

impl Default for Excludes {
    fn default() -> Excludes {
        Excludes {
            any: GlobSet::empty(),
            dirs: GlobSet::empty(),
        }
    }
}

/// The patterns of an exclude file's text: one a line, blank lines and
/// `#` comments skipped, trailing spaces dropped.
pub fn patterns_of_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_end_matches([' ', '\r']))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

impl Excludes {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Excludes, ExcludeError> {
        let mut any = GlobSetBuilder::new();
        let mut dirs = GlobSetBuilder::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            let (glob, dir_only) = translate(pattern)?;
            let compiled = GlobBuilder::new(&glob)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| ExcludeError::Glob {
                    pattern: pattern.to_string(),
                    reason: e.kind().to_string(),
                })?;
            if dir_only {
                dirs.add(compiled);
            } else {
                any.add(compiled);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build().map_err(|e| ExcludeError::Glob {
                pattern: e.glob().unwrap_or_default().to_string(),
                reason: e.kind().to_string(),
            })
        };
        Ok(Excludes {
            any: build(any)?,
            dirs: build(dirs)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.any.is_empty() && self.dirs.is_empty()
    }

    /// Whether the entry at `path` (relative to the source, `/`-separated)
    /// is left out.
    pub fn excludes(&self, path: &str, is_dir: bool) -> bool {
        self.any.is_match(path) || (is_dir && self.dirs.is_match(path))
    }
}

/// A pattern as a glob over source-relative paths, and whether it matches
/// folders only.
fn translate(pattern: &str) -> Result<(String, bool), ExcludeError> {
    if pattern.starts_with('!') {
        return Err(ExcludeError::Negation(pattern.to_string()));
    }
    let dir_only = pattern.ends_with('/');
    let body = pattern.trim_end_matches('/');
    let anchored = body.contains('/');
    let body = body.trim_start_matches('/');
    if body.is_empty() {
        return Err(ExcludeError::Empty(pattern.to_string()));
    }
    let glob = if anchored {
        body.to_string()
    } else {
        format!("**/{body}")
    };
    Ok((glob, dir_only))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn ex(patterns: &[&str]) -> Excludes {
        Excludes::new(patterns).unwrap()
    }

    #[test]
    fn a_name_pattern_matches_at_any_depth() {
        let e = ex(&["*.tmp", "cache"]);
        assert!(e.excludes("a.tmp", false));
        assert!(e.excludes("logs-1/a.tmp", false));
        assert!(e.excludes("logs-1/deep/er/b.tmp", false));
        assert!(e.excludes("logs-1/cache", true));
        assert!(e.excludes("cache", false));
        assert!(!e.excludes("logs-1/a.tmpx", false));
        assert!(!e.excludes("logs-1/cached", true));
    }

    #[test]
    fn a_pattern_with_a_slash_is_anchored_at_the_source() {
        let e = ex(&["/MyIndex", "logs-1/tmp/*"]);
        assert!(e.excludes("MyIndex", true));
        assert!(!e.excludes("logs-1/MyIndex", true));
        assert!(e.excludes("logs-1/tmp/x", false));
        assert!(!e.excludes("logs-2/tmp/x", false));
        assert!(!e.excludes("other/logs-1/tmp/x", false));
    }

    #[test]
    fn a_star_stops_at_a_slash_and_two_stars_cross_folders() {
        let e = ex(&["logs-1/*.log"]);
        assert!(e.excludes("logs-1/a.log", false));
        assert!(!e.excludes("logs-1/sub/a.log", false));
        let e = ex(&["logs-1/**/*.log"]);
        assert!(e.excludes("logs-1/a.log", false));
        assert!(e.excludes("logs-1/sub/deeper/a.log", false));
    }

    #[test]
    fn a_trailing_slash_matches_folders_only() {
        let e = ex(&["tmp/"]);
        assert!(e.excludes("logs-1/tmp", true));
        assert!(!e.excludes("logs-1/tmp", false));
    }

    #[test]
    fn no_pattern_excludes_nothing() {
        let e = Excludes::new::<&str>(&[]).unwrap();
        assert!(e.is_empty());
        assert!(!e.excludes("anything", true));
    }

    #[test]
    fn negations_empty_patterns_and_bad_globs_are_refused_by_name() {
        assert_eq!(
            Excludes::new(&["!keep.log"]).unwrap_err(),
            ExcludeError::Negation("!keep.log".into())
        );
        assert_eq!(
            Excludes::new(&["/"]).unwrap_err(),
            ExcludeError::Empty("/".into())
        );
        let bad = Excludes::new(&["a[b"]).unwrap_err();
        assert!(
            matches!(&bad, ExcludeError::Glob { pattern, .. } if pattern == "a[b"),
            "{bad:?}"
        );
    }

    #[test]
    fn an_exclude_file_skips_comments_blank_lines_and_trailing_spaces() {
        let text = "# caches\n*.tmp  \n\n/MyIndex\r\n  # not a comment\n";
        assert_eq!(
            patterns_of_file(text),
            vec!["*.tmp", "/MyIndex", "  # not a comment"]
        );
    }
}
