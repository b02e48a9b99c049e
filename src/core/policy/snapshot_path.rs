//! Paths inside a snapshot, as `snapshot ls` prints them and `snapshot
//! ls` / `snapshot dump` take them: relative to the data directory that was
//! snapshotted, so `logs/sub/a.log` is file `sub/a.log` of index `logs`, and
//! a global-state entry is named by itself (`settings.json`). With
//! `--index I` the path is relative to index `I` (`_global_state` for the
//! global state).

use crate::core::format::manifest::GLOBAL_STATE;

/// A path that cannot name anything in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotPathError {
    #[error(
        "path {0:?} has a '..' component: paths in a snapshot are relative to its data directory"
    )]
    Parent(String),
    /// Neither an index of the snapshot nor (the snapshot has none) a
    /// global-state entry.
    #[error("{0}")]
    NoSuchEntry(String),
}

/// Where a path points: an index (or [`GLOBAL_STATE`]) and a path inside
/// it (`/`-separated, empty for the index folder itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPath {
    pub index: String,
    pub rel: String,
}

impl SnapshotPath {
    /// The path as `snapshot ls` prints it.
    pub fn display(&self) -> String {
        display_path(&self.index, &self.rel)
    }
}

/// `rel` inside `index` as `snapshot ls` prints it.
pub fn display_path(index: &str, rel: &str) -> String {
    match (index == GLOBAL_STATE, rel.is_empty()) {
        (true, _) => rel.to_string(),
        (false, true) => index.to_string(),
        (false, false) => format!("{index}/{rel}"),
    }
}

/// The components of `path` without empty and `.` ones.
fn components(path: &str) -> Result<Vec<&str>, SnapshotPathError> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(SnapshotPathError::Parent(path.to_string()));
    }
    Ok(parts)
}

/// Resolves `path` (with `--index`, relative to that index) against a
/// snapshot whose indices `is_index` recognises. `None`: the whole
/// snapshot (no index and an empty path).
pub fn resolve(
    path: &str,
    index: Option<&str>,
    is_index: impl Fn(&str) -> bool,
    has_global_state: bool,
) -> Result<Option<SnapshotPath>, SnapshotPathError> {
    let parts = components(path)?;
    if let Some(index) = index {
        return Ok(Some(SnapshotPath {
            index: index.to_string(),
            rel: parts.join("/"),
        }));
    }
    let Some((first, rest)) = parts.split_first() else {
        return Ok(None);
    };
    if is_index(first) {
        return Ok(Some(SnapshotPath {
            index: first.to_string(),
            rel: rest.join("/"),
        }));
    }
    if !has_global_state {
        return Err(SnapshotPathError::NoSuchEntry(format!(
            "index [{first}] (the snapshot has no global state)"
        )));
    }
    Ok(Some(SnapshotPath {
        index: GLOBAL_STATE.to_string(),
        rel: parts.join("/"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn at(path: &str, index: Option<&str>, global: bool) -> Option<SnapshotPath> {
        resolve(path, index, |n| n == "logs" || n == "metrics", global).unwrap()
    }

    fn sp(index: &str, rel: &str) -> Option<SnapshotPath> {
        Some(SnapshotPath {
            index: index.into(),
            rel: rel.into(),
        })
    }

    #[test]
    fn the_first_component_names_an_index_or_else_global_state() {
        assert_eq!(at("", None, true), None);
        assert_eq!(at("/", None, true), None);
        assert_eq!(at("logs", None, true), sp("logs", ""));
        assert_eq!(
            at("/logs/./sub//a.log", None, true),
            sp("logs", "sub/a.log")
        );
        assert_eq!(
            at("settings.json", None, true),
            sp(GLOBAL_STATE, "settings.json")
        );
        assert_eq!(at("_state/x", None, true), sp(GLOBAL_STATE, "_state/x"));
    }

    #[test]
    fn with_an_index_the_path_is_relative_to_it() {
        assert_eq!(
            at("sub/a.log", Some("logs"), false),
            sp("logs", "sub/a.log")
        );
        assert_eq!(at("", Some("logs"), false), sp("logs", ""));
        assert_eq!(
            at("x", Some(GLOBAL_STATE), true),
            sp(GLOBAL_STATE, "x"),
            "the global state is named like an index"
        );
    }

    #[test]
    fn parents_and_unknown_indices_are_refused() {
        let r = |p: &str, g: bool| resolve(p, None, |n| n == "logs", g);
        assert!(matches!(
            r("logs/../x", true),
            Err(SnapshotPathError::Parent(_))
        ));
        assert!(matches!(
            r("nope/x", false),
            Err(SnapshotPathError::NoSuchEntry(_))
        ));
    }

    #[test]
    fn paths_print_relative_to_the_data_directory() {
        assert_eq!(display_path("logs", ""), "logs");
        assert_eq!(display_path("logs", "sub/a"), "logs/sub/a");
        assert_eq!(display_path(GLOBAL_STATE, "settings.json"), "settings.json");
    }
}
