//! The running restores, persisted in the state folder (`restores/`, one
//! `<restore uuid>.json` each) so that a node stopped or killed during a
//! restore resumes it at its next start. A record is written (atomically,
//! as every state file) before its restore writes anything, and removed
//! once the restore succeeded or failed for good.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::core::es::restore_request::RestoreRequest;
use crate::node::error::NodeError;
use crate::node::state::write_atomic;

pub const RESTORES_FOLDER: &str = "restores";

/// What was asked, as needed to ask it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asked {
    /// The index selection as a comma list (`*` for all).
    pub indices: String,
    pub rename_pattern: Option<String>,
    pub rename_replacement: Option<String>,
    pub include_global_state: bool,
}

impl Asked {
    pub fn of(r: &RestoreRequest) -> Asked {
        Asked {
            indices: if r.indices.is_empty() {
                "*".to_string()
            } else {
                r.indices.join(",")
            },
            rename_pattern: r.rename_pattern.clone(),
            rename_replacement: r.rename_replacement.clone(),
            include_global_state: r.include_global_state,
        }
    }
}

/// One restore the node runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRecord {
    pub repository: String,
    pub snapshot: String,
    pub restore_uuid: String,
    pub start_ms: i64,
    pub asked: Asked,
    /// It restores over closed indices of the same names.
    pub overwrite: bool,
    /// (index in the snapshot, index it is restored as).
    pub targets: Vec<(String, String)>,
    /// Why it cannot be resumed (its repository is no longer registered).
    /// A failed record stays, for the operator, until a new restore of
    /// one of its targets is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

impl RestoreRecord {
    pub fn target_names(&self) -> Vec<String> {
        self.targets.iter().map(|(_, t)| t.clone()).collect()
    }
}

fn folder(state: &Path) -> PathBuf {
    state.join(RESTORES_FOLDER)
}

fn file_name(restore_uuid: &str) -> String {
    format!("{restore_uuid}.json")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError {
    let path = path.to_path_buf();
    move |source| NodeError::Io { path, source }
}

/// Writes (or replaces) `record`.
pub fn save(state: &Path, record: &RestoreRecord) -> Result<(), NodeError> {
    let dir = folder(state);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    write_atomic(&dir, &file_name(&record.restore_uuid), record)
}

/// Removes the record of `restore_uuid` (gone already is fine).
pub fn remove(state: &Path, restore_uuid: &str) -> Result<(), NodeError> {
    let dir = folder(state);
    let path = dir.join(file_name(restore_uuid));
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(&path)(e)),
    }
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io(&dir))
}

/// Every record, oldest first. A record that does not parse stops the
/// node, as any damaged state file does.
pub fn load_all(state: &Path) -> Result<Vec<RestoreRecord>, NodeError> {
    let dir = folder(state);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(io(&dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Temporary files of an interrupted write start with a dot.
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let record = serde_json::from_slice(&bytes).map_err(|e| NodeError::BadState {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        out.push(record);
    }
    out.sort_by(|a: &RestoreRecord, b| {
        (a.start_ms, &a.restore_uuid).cmp(&(b.start_ms, &b.restore_uuid))
    });
    Ok(out)
}

/// Removes the records (failed ones: running restores are refused before)
/// that restore into any of `targets`: a new restore of them supersedes
/// them.
pub fn supersede(state: &Path, targets: &[String]) -> Result<(), NodeError> {
    for old in load_all(state)? {
        if old.targets.iter().any(|(_, t)| targets.contains(t)) {
            remove(state, &old.restore_uuid)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(uuid: &str, start_ms: i64, targets: &[&str]) -> RestoreRecord {
        RestoreRecord {
            repository: "r".into(),
            snapshot: "s".into(),
            restore_uuid: uuid.into(),
            start_ms,
            asked: Asked {
                indices: "logs,-x".into(),
                rename_pattern: Some("(.+)".into()),
                rename_replacement: Some("copy_$1".into()),
                include_global_state: true,
            },
            overwrite: false,
            targets: targets
                .iter()
                .map(|t| ("src".to_string(), t.to_string()))
                .collect(),
            failed: None,
        }
    }

    #[test]
    fn records_round_trip_oldest_first_and_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_all(dir.path()).unwrap().is_empty());
        let (a, b) = (record("bbb", 1, &["x"]), record("aaa", 2, &["y"]));
        save(dir.path(), &b).unwrap();
        save(dir.path(), &a).unwrap();
        assert_eq!(load_all(dir.path()).unwrap(), vec![a.clone(), b.clone()]);
        let mut failed = a.clone();
        failed.failed = Some("repository [r] is no longer registered".into());
        save(dir.path(), &failed).unwrap();
        assert_eq!(load_all(dir.path()).unwrap()[0], failed);
        remove(dir.path(), "bbb").unwrap();
        remove(dir.path(), "bbb").unwrap();
        assert_eq!(load_all(dir.path()).unwrap(), vec![b]);
    }

    #[test]
    fn a_new_restore_supersedes_records_of_its_targets() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &record("a", 1, &["x", "y"])).unwrap();
        save(dir.path(), &record("b", 2, &["z"])).unwrap();
        supersede(dir.path(), &["y".to_string()]).unwrap();
        let left: Vec<String> = load_all(dir.path())
            .unwrap()
            .into_iter()
            .map(|r| r.restore_uuid)
            .collect();
        assert_eq!(left, vec!["b".to_string()]);
    }

    #[test]
    fn a_damaged_record_is_refused_and_temporaries_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let restores = dir.path().join(RESTORES_FOLDER);
        std::fs::create_dir_all(&restores).unwrap();
        std::fs::write(restores.join(".a.json.tmp-1"), b"half").unwrap();
        assert!(load_all(dir.path()).unwrap().is_empty());
        std::fs::write(restores.join("a.json"), b"{not json").unwrap();
        let e = load_all(dir.path()).unwrap_err();
        assert!(matches!(e, NodeError::BadState { .. }), "{e}");
    }
}
