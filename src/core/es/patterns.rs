//! ES's name-pattern lists (`a,b*,-b2,_all`), as the snapshot and
//! repository paths take them: `*` wildcards, `_all` (and `*`) for
//! everything, `-pattern` excluding what earlier patterns matched
//! (reference 3.3, 4.2).
//!
//! Unlike `--indices` ([`crate::core::policy::selection::Selection`]),
//! patterns apply in order (a later include re-adds what an exclusion
//! removed), a first `-x` is a name, and `_current` is a keyword; the
//! wildcard matching itself is the selection's.

pub use crate::core::policy::selection::wildcard_match as simple_match;

/// A parsed comma list of names and patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePatterns {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Include(String),
    Exclude(String),
}

impl NamePatterns {
    /// Splits `list` on commas; an empty list or `_all` means everything.
    /// A leading `-` excludes only after some include (ES reads a first
    /// `-x` as the name `-x`).
    pub fn parse(list: &str) -> NamePatterns {
        let mut parts = Vec::new();
        for p in list.split(',').filter(|p| !p.is_empty()) {
            match p.strip_prefix('-') {
                Some(ex) if !parts.is_empty() => parts.push(Part::Exclude(ex.to_string())),
                _ => parts.push(Part::Include(if p == "_all" {
                    "*".into()
                } else {
                    p.into()
                })),
            }
        }
        if parts.is_empty() {
            parts.push(Part::Include("*".into()));
        }
        NamePatterns { parts }
    }

    /// Whether the list names `_current` (running snapshots).
    pub fn wants_current(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Include(n) if is_current(n)))
    }

    /// Whether the stored snapshot `name` is selected: the last pattern
    /// that matches decides.
    pub fn matches(&self, name: &str) -> bool {
        self.selects(name, false)
    }

    /// Whether snapshot `name` is selected, `running` telling whether it is
    /// one being taken: `_current` selects every running one, and names,
    /// wildcards and exclusions apply to running and stored alike (ES's
    /// `SnapshotNamePredicate`).
    pub fn selects(&self, name: &str, running: bool) -> bool {
        let mut selected = false;
        for p in &self.parts {
            match p {
                Part::Include(i) if is_current(i) && running => selected = true,
                Part::Include(i) if simple_match(i, name) => selected = true,
                Part::Exclude(e) if simple_match(e, name) => selected = false,
                _ => {}
            }
        }
        selected
    }

    /// Names given literally (no wildcard, not `_current`): each must exist
    /// unless `ignore_unavailable`.
    pub fn literal_names(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Include(n) if !n.contains('*') && !is_current(n) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// `_current`, in any case (ES compares it ignoring case).
fn is_current(name: &str) -> bool {
    name.eq_ignore_ascii_case("_current")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn wildcards_match_runs_of_characters() {
        assert!(simple_match("*", ""));
        assert!(simple_match("snap-*", "snap-1"));
        assert!(simple_match("*-1", "snap-1"));
        assert!(simple_match("s*p*1", "snap-1"));
        assert!(simple_match("ü*", "über"));
        assert!(!simple_match("snap-*", "snip-1"));
        assert!(!simple_match("*-2", "snap-1"));
        assert!(!simple_match("snap", "snap-1"));
    }

    #[test]
    fn lists_include_exclude_in_order() {
        let p = NamePatterns::parse("snap-*,-snap-2*,snap-21");
        let picked: Vec<&str> = ["snap-1", "snap-2", "snap-20", "snap-21", "other"]
            .into_iter()
            .filter(|n| p.matches(n))
            .collect();
        assert_eq!(picked, ["snap-1", "snap-21"]);
        assert_eq!(p.literal_names(), ["snap-21"]);
        assert!(NamePatterns::parse("_all").matches("x"));
        assert!(NamePatterns::parse("").matches("x"));
        assert!(NamePatterns::parse("_all,-x").matches("y"));
        assert!(!NamePatterns::parse("_all,-x").matches("x"));
        assert!(
            NamePatterns::parse("-x").matches("-x"),
            "first -x is a name"
        );
        let cur = NamePatterns::parse("_current");
        assert!(cur.wants_current() && cur.literal_names().is_empty());
        assert!(!cur.matches("snap"));
    }

    #[test]
    fn current_selects_running_snapshots_and_exclusions_apply_to_them() {
        let cur = NamePatterns::parse("_CURRENT");
        assert!(cur.wants_current() && cur.literal_names().is_empty());
        assert!(cur.selects("live", true));
        assert!(!cur.selects("stored", false));
        let mixed = NamePatterns::parse("_current,old-*,-live-b");
        assert!(mixed.selects("live-a", true));
        assert!(
            !mixed.selects("live-b", true),
            "an exclusion removes a running one"
        );
        assert!(mixed.selects("old-1", false));
        assert!(!mixed.selects("new-1", false));
        let all = NamePatterns::parse("_all");
        assert!(all.selects("live", true) && all.selects("stored", false));
        let named = NamePatterns::parse("live");
        assert!(named.selects("live", true) && !named.selects("other", true));
    }
}
