//! The node's own state folder (`--state`): a lock that one live node
//! holds, the node's identity and its registered repositories. Every file
//! is replaced atomically (temporary file, fsync, rename, fsync of the
//! folder), so a node killed at any moment finds either the old or the new
//! version.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{flock, FlockOperation};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::node::error::NodeError;

pub const LOCK_FILE: &str = "node.lock";
pub const NODE_FILE: &str = "node.json";
pub const REPOSITORIES_FILE: &str = "repositories.json";

/// The node's identity, made once per state folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// Reported as the node id and the cluster UUID.
    pub id: String,
}

/// One registered repository, as `PUT /_snapshot/<repo>` gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Elasticsearch's type: fs, s3, azure, gcs or url.
    #[serde(rename = "type")]
    pub kind: String,
    /// Settings as Elasticsearch reports them: values as strings.
    pub settings: BTreeMap<String, String>,
    /// The snapkeep location the settings map to.
    pub location: String,
    /// Storage options for that location (an s3 `endpoint`, `region`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<(String, String)>,
    pub readonly: bool,
    /// The repository's id once it was opened (verified registration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

pub type Repositories = BTreeMap<String, Registration>;

/// The state folder, locked for this process's life.
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    /// Holds the `flock`; dropping it (or the process dying) releases it.
    _lock: File,
}

impl StateDir {
    /// Creates the folder if needed and takes its lock, or fails naming
    /// the pid of the node that holds it.
    pub fn lock(path: &Path) -> Result<StateDir, NodeError> {
        let io = |e| NodeError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        std::fs::create_dir_all(path).map_err(io)?;
        let lock_path = path.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io)?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(NodeError::StateLocked {
                path: path.to_path_buf(),
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid.into()
                },
            });
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(StateDir {
            path: path.to_path_buf(),
            _lock: file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The node's identity, made (with `fresh_id`) on first start.
    pub fn identity(&self, fresh_id: impl FnOnce() -> String) -> Result<NodeIdentity, NodeError> {
        if let Some(identity) = self.read(NODE_FILE)? {
            return Ok(identity);
        }
        let identity = NodeIdentity { id: fresh_id() };
        write_atomic(&self.path, NODE_FILE, &identity)?;
        Ok(identity)
    }

    pub fn repositories(&self) -> Result<Repositories, NodeError> {
        Ok(self.read(REPOSITORIES_FILE)?.unwrap_or_default())
    }

    /// The path of a state file, for writing it from another thread.
    pub fn folder(&self) -> PathBuf {
        self.path.clone()
    }

    fn read<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, NodeError> {
        read_json(&self.path, name)
    }
}

/// `folder/name` as JSON; `None` when the file is absent (nothing was
/// written yet).
pub fn read_json<T: DeserializeOwned>(folder: &Path, name: &str) -> Result<Option<T>, NodeError> {
    let path = folder.join(name);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(NodeError::Io { path, source: e }),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| NodeError::BadState {
            path,
            detail: e.to_string(),
        })
}

/// Replaces `folder/name` with `value` as JSON: written to a temporary
/// file, synced, renamed over the old one, and the folder synced so the
/// rename itself survives a crash.
pub fn write_atomic<T: Serialize>(folder: &Path, name: &str, value: &T) -> Result<(), NodeError> {
    write_atomic_mode(folder, name, value, 0o644)
}

/// As [`write_atomic`], for a file only the node's user may read (it holds
/// credentials): created with mode 0600, never readable by others.
pub fn write_atomic_private<T: Serialize>(
    folder: &Path,
    name: &str,
    value: &T,
) -> Result<(), NodeError> {
    write_atomic_mode(folder, name, value, 0o600)
}

/// Numbers temporary files within the process, so two threads saving the
/// same file never write through one temporary name.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn write_atomic_mode<T: Serialize>(
    folder: &Path,
    name: &str,
    value: &T,
    mode: u32,
) -> Result<(), NodeError> {
    let target = folder.join(name);
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = folder.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| NodeError::Io { path, source: e }
    };
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| NodeError::BadState {
        path: target.clone(),
        detail: e.to_string(),
    })?;
    // A leftover of a killed run keeps its mode: start from nothing.
    let _ = std::fs::remove_file(&temp);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temp)
        .map_err(io(&temp))?;
    file.write_all(&bytes).map_err(io(&temp))?;
    file.sync_all().map_err(io(&temp))?;
    drop(file);
    std::fs::rename(&temp, &target).map_err(io(&target))?;
    File::open(folder)
        .and_then(|d| d.sync_all())
        .map_err(io(folder))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateDir::lock(dir.path()).unwrap();
        let e = StateDir::lock(dir.path()).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        drop(first);
        StateDir::lock(dir.path()).unwrap();
    }

    #[test]
    fn repositories_round_trip_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::lock(dir.path()).unwrap();
        assert!(state.repositories().unwrap().is_empty());
        let mut repos = Repositories::new();
        repos.insert(
            "r".into(),
            Registration {
                kind: "fs".into(),
                settings: BTreeMap::from([("location".into(), "/x".into())]),
                location: "/x".into(),
                options: vec![],
                readonly: false,
                uuid: Some("u".into()),
            },
        );
        write_atomic(state.path(), REPOSITORIES_FILE, &repos).unwrap();
        assert_eq!(state.repositories().unwrap(), repos);
        write_atomic(state.path(), REPOSITORIES_FILE, &Repositories::new()).unwrap();
        assert!(state.repositories().unwrap().is_empty());
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn identity_is_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::lock(dir.path()).unwrap();
        let a = state.identity(|| "one".into()).unwrap();
        let b = state.identity(|| "two".into()).unwrap();
        assert_eq!((a.id.as_str(), b.id.as_str()), ("one", "one"));
    }
}
