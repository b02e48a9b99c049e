//! Index selection (`--indices`): comma lists, `*` wildcards and `-pattern`
//! exclusions, as in Elasticsearch's multi-target syntax, and renaming.

use regex::Regex;

/// A selection or rename that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("no such index [{0}]")]
    NoSuchIndex(String),
    #[error("index selection is empty")]
    Empty,
    /// A selection that must pick something (`allow_no_indices: false`)
    /// matched no index.
    #[error("no index matches [{0}]")]
    NoMatch(String),
    #[error("invalid --rename-pattern: {0}")]
    BadPattern(String),
    #[error("indices [{first}] and [{second}] would both be restored as [{target}]")]
    RenameCollision {
        first: String,
        second: String,
        target: String,
    },
}

/// `*` matches any run of characters (including none); everything else is literal.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    // Bytes, not chars: no allocation per call (a listing matches every
    // snapshot name). Equivalent for UTF-8: `*` is one byte, and a literal
    // run starts with a lead byte, which never equals a continuation byte,
    // so a match can only begin on a character boundary.
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != b'*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// A parsed `--indices` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    include: Vec<String>,
    exclude: Vec<String>,
    /// Elasticsearch's `allow_no_indices`: whether wildcards that match
    /// nothing are fine (its default for snapshots, and the node's). The
    /// CLI asks for a match when `--indices` is given, so a typo in a cron
    /// job's pattern fails rather than silently doing nothing.
    allow_no_indices: bool,
}

impl Default for Selection {
    fn default() -> Self {
        Selection::all()
    }
}

impl Selection {
    pub fn all() -> Selection {
        Selection {
            include: vec!["*".into()],
            exclude: vec![],
            allow_no_indices: true,
        }
    }

    /// Parses `a,b*,-b2`. Only exclusions means "everything except".
    pub fn parse(expr: &str) -> Result<Selection, SelectionError> {
        let (mut include, mut exclude) = (Vec::new(), Vec::new());
        for part in expr.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.strip_prefix('-') {
                Some(rest) if !rest.is_empty() => exclude.push(rest.to_string()),
                Some(_) => return Err(SelectionError::Empty),
                None if part == "_all" => include.push("*".into()),
                None => include.push(part.to_string()),
            }
        }
        if include.is_empty() {
            if exclude.is_empty() {
                return Err(SelectionError::Empty);
            }
            include.push("*".into());
        }
        Ok(Selection {
            include,
            exclude,
            allow_no_indices: true,
        })
    }

    /// This selection, failing with [`SelectionError::NoMatch`] when it
    /// picks nothing.
    pub fn requiring_a_match(self) -> Selection {
        Selection {
            allow_no_indices: false,
            ..self
        }
    }

    /// The expression, as `parse` reads it.
    pub fn text(&self) -> String {
        let excluded = self.exclude.iter().map(|e| format!("-{e}"));
        let parts: Vec<String> = self.include.iter().cloned().chain(excluded).collect();
        parts.join(",")
    }

    pub fn matches(&self, name: &str) -> bool {
        self.include.iter().any(|p| wildcard_match(p, name))
            && !self.exclude.iter().any(|p| wildcard_match(p, name))
    }

    /// The available names this selection picks, in the given order. A
    /// literal name (no wildcard) that is not available is an error, as in
    /// Elasticsearch.
    pub fn select<'a>(&self, available: &'a [String]) -> Result<Vec<&'a String>, SelectionError> {
        for p in &self.include {
            if !p.contains('*') && !available.iter().any(|a| a == p) {
                return Err(SelectionError::NoSuchIndex(p.clone()));
            }
        }
        let picked: Vec<&String> = available.iter().filter(|n| self.matches(n)).collect();
        if picked.is_empty() && !self.allow_no_indices {
            return Err(SelectionError::NoMatch(self.text()));
        }
        Ok(picked)
    }
}

/// `--rename-pattern` / `--rename-replacement`: a regex whose matches in an
/// index name are replaced (`$1` refers to groups).
#[derive(Debug, Clone)]
pub struct Rename {
    pattern: Regex,
    replacement: String,
}

impl Rename {
    pub fn new(pattern: &str, replacement: &str) -> Result<Rename, SelectionError> {
        // The regex crate's message draws the pattern over several lines;
        // its last line says what is wrong.
        let pattern = Regex::new(pattern).map_err(|e| {
            let text = e.to_string();
            let why = text.lines().last().unwrap_or_default().trim();
            let why = why.strip_prefix("error: ").unwrap_or(why);
            SelectionError::BadPattern(format!("{pattern:?}: {why}"))
        })?;
        Ok(Rename {
            pattern,
            replacement: replacement.to_string(),
        })
    }

    pub fn apply(&self, name: &str) -> String {
        self.pattern
            .replace_all(name, self.replacement.as_str())
            .into_owned()
    }
}

/// Source → target names for the selected indices, refusing two sources that
/// land on one target.
pub fn rename_all(
    names: &[&String],
    rename: Option<&Rename>,
) -> Result<Vec<(String, String)>, SelectionError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for n in names {
        let target = rename.map_or_else(|| n.to_string(), |r| r.apply(n));
        if let Some((first, _)) = out.iter().find(|(_, t)| *t == target) {
            return Err(SelectionError::RenameCollision {
                first: first.clone(),
                second: n.to_string(),
                target,
            });
        }
        out.push((n.to_string(), target));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("log*", "logs-1"));
        assert!(wildcard_match("*-1", "logs-1"));
        assert!(wildcard_match("l*s*1", "logs-1"));
        assert!(!wildcard_match("log*", "blog"));
        assert!(!wildcard_match("a", "ab"));
        assert!(wildcard_match("a**b", "ab"));
        // Multi-byte characters around and between wildcards.
        assert!(wildcard_match("*ä*ö", "xäyzö"));
        assert!(wildcard_match("caf*", "café"));
        assert!(!wildcard_match("*é", "cafe"));
        assert!(!wildcard_match("é*", "e\u{301}"));
    }

    #[test]
    fn lists_wildcards_and_exclusions() {
        let avail = names(&["logs-1", "logs-2", "metrics", "users"]);
        let s = Selection::parse("logs-*,-logs-2,users").unwrap();
        let picked: Vec<&str> = s
            .select(&avail)
            .unwrap()
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(picked, ["logs-1", "users"]);
        let only_ex = Selection::parse("-logs-*").unwrap();
        assert_eq!(only_ex.select(&avail).unwrap().len(), 2);
        assert_eq!(
            Selection::parse("nope").unwrap().select(&avail),
            Err(SelectionError::NoSuchIndex("nope".into()))
        );
        assert!(Selection::parse(" , ").is_err());
        assert!(Selection::parse("nomatch*")
            .unwrap()
            .select(&avail)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_selection_requiring_a_match_fails_when_it_picks_nothing() {
        let avail = names(&["logs-1", "users"]);
        let strict = |e: &str| Selection::parse(e).unwrap().requiring_a_match();
        assert_eq!(
            strict("nomatch*,-users").select(&avail),
            Err(SelectionError::NoMatch("nomatch*,-users".into()))
        );
        assert_eq!(
            strict("-logs-*,-users").select(&avail),
            Err(SelectionError::NoMatch("*,-logs-*,-users".into()))
        );
        assert_eq!(strict("log*").select(&avail).unwrap(), [&avail[0]]);
        assert_eq!(
            strict("*").select(&[]),
            Err(SelectionError::NoMatch("*".into()))
        );
        assert!(Selection::parse("*")
            .unwrap()
            .select(&[])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn rename_with_groups_and_collisions() {
        let r = Rename::new("logs-(.+)", "restored-logs-$1").unwrap();
        assert_eq!(r.apply("logs-1"), "restored-logs-1");
        assert_eq!(r.apply("users"), "users");
        let a = "logs-1".to_string();
        let b = "logs-2".to_string();
        let collapse = Rename::new("logs-.*", "all").unwrap();
        assert!(matches!(
            rename_all(&[&a, &b], Some(&collapse)),
            Err(SelectionError::RenameCollision { .. })
        ));
        assert!(Rename::new("(", "x").is_err());
    }
}
