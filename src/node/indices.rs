//! The data folder's indices as the node reports them: every top-level
//! folder that is not global state (`core::policy::global_state`) is an
//! index, named by its folder. An index is open unless the node closed it;
//! the closed names are kept in the state folder (`closed_indices.json`,
//! written atomically) so a closed index stays closed over a restart.

use std::collections::BTreeSet;
use std::path::Path;

use crate::core::policy::global_state::is_global_state;
use crate::node::error::NodeError;
use crate::node::state::write_atomic;

pub const CLOSED_FILE: &str = "closed_indices.json";

/// One index folder: what `_cat/indices` shows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFolder {
    pub name: String,
    /// Regular files under the folder (the `docs.count` column).
    pub files: u64,
    /// Their bytes (`store.size`).
    pub bytes: u64,
}

/// The index folders of `data`, by name. A missing data folder has none.
pub fn list(data: &Path) -> std::io::Result<Vec<IndexFolder>> {
    let entries = match std::fs::read_dir(data) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let is_dir = entry.file_type()?.is_dir();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if is_global_state(&name, is_dir) {
            continue;
        }
        let (files, bytes) = usage(&entry.path())?;
        out.push(IndexFolder { name, files, bytes });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Whether `data/name` is an index folder.
pub fn exists(data: &Path, name: &str) -> bool {
    !is_global_state(name, true)
        && std::fs::symlink_metadata(data.join(name)).is_ok_and(|m| m.is_dir())
}

/// Files and bytes under `dir`, without following links.
fn usage(dir: &Path) -> std::io::Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.path().symlink_metadata()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    Ok((files, bytes))
}

/// The closed indices, read from the state folder.
pub fn read_closed(state: &Path) -> Result<BTreeSet<String>, NodeError> {
    let path = state.join(CLOSED_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| NodeError::BadState {
            path,
            detail: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(NodeError::Io { path, source: e }),
    }
}

pub fn write_closed(state: &Path, closed: &BTreeSet<String>) -> Result<(), NodeError> {
    write_atomic(state, CLOSED_FILE, closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_indices_and_global_state_is_not() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("logs/sub")).unwrap();
        std::fs::write(d.path().join("logs/a"), b"12345").unwrap();
        std::fs::write(d.path().join("logs/sub/b"), b"12").unwrap();
        std::fs::create_dir_all(d.path().join("_meta")).unwrap();
        std::fs::create_dir_all(d.path().join(".snapkeep-restore-x")).unwrap();
        std::fs::write(d.path().join("cluster.json"), b"{}").unwrap();
        let found = list(d.path()).unwrap();
        assert_eq!(
            found,
            vec![IndexFolder {
                name: "logs".into(),
                files: 2,
                bytes: 7
            }]
        );
        assert!(exists(d.path(), "logs") && !exists(d.path(), "_meta"));
        assert!(!exists(d.path(), "cluster.json"));
    }

    #[test]
    fn closed_names_round_trip() {
        let d = tempfile::tempdir().unwrap();
        assert!(read_closed(d.path()).unwrap().is_empty());
        let closed = BTreeSet::from(["a".to_string()]);
        write_closed(d.path(), &closed).unwrap();
        assert_eq!(read_closed(d.path()).unwrap(), closed);
    }
}
