//! The restore's own files: one private staging folder per run at the top of
//! the target, `.snapkeep-restore-<token>/`, holding the marker
//! (`marker.json`, what identifies the restore to a rerun) and a temporary
//! file per restored file (named by the SHA-256 of its path), renamed into
//! place when complete.
//!
//! The token is random and never the name of anything the restore writes at
//! the top of the target, so no snapshot entry can collide with the
//! restore's own files, and nothing inside an index folder is ever taken for
//! them. A rerun recognises an interrupted run by a staging folder (a real
//! folder, not a link) whose marker describes the same restore.

use std::collections::HashSet;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::core::format::id::Id;
use crate::native::dirfd::{DirFd, Kind};

pub const STAGING_PREFIX: &str = ".snapkeep-restore-";
const MARKER: &str = "marker.json";
/// Markers are a few hundred bytes; anything much larger is not one.
const MARKER_MAX: u64 = 1 << 20;

/// What identifies a restore: the same snapshot, indices and names,
/// global state or not, and the same `--include` patterns (absent for a
/// whole restore, so markers of earlier versions still match).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub snapshot_uuid: String,
    pub indices: Vec<(String, String)>,
    pub global_state: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
}

/// The staging folder of one run.
pub struct Staging {
    pub name: String,
    pub dir: DirFd,
}

/// The temporary file's name for the restored file at `path`.
pub fn temp_name(path: &str) -> String {
    Id::of(path.as_bytes()).to_hex()
}

/// Finds the staging folder of an interrupted run of the restore `marker`
/// describes. `taken` are the top-level names the restore itself writes:
/// an entry with such a name is data, never a staging folder.
pub fn find(target: &DirFd, marker: &Marker, taken: &HashSet<String>) -> Option<Staging> {
    let names = target.names().ok()?;
    names
        .iter()
        .filter_map(|n| n.to_str())
        .filter(|n| n.starts_with(STAGING_PREFIX) && !taken.contains(*n))
        .find_map(|name| {
            let dir = target.child_dir(name).ok()?;
            (read_marker(&dir).as_ref() == Some(marker)).then(|| Staging {
                name: name.to_string(),
                dir,
            })
        })
}

fn read_marker(dir: &DirFd) -> Option<Marker> {
    let f = dir.open_for_read(MARKER).ok()?;
    let mut bytes = Vec::new();
    f.take(MARKER_MAX).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Creates a new staging folder (private: mode 0700) with its marker.
/// `token` draws a fresh random token each call.
pub fn create(
    target: &DirFd,
    marker: &Marker,
    taken: &HashSet<String>,
    mut token: impl FnMut() -> String,
) -> std::io::Result<Staging> {
    loop {
        let name = format!("{STAGING_PREFIX}{}", token());
        if taken.contains(&name) || target.kind(&name)?.is_some() {
            continue;
        }
        match target.create_dir(&name, 0o700) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            r => r?,
        }
        let dir = target.child_dir(&name)?;
        let mut f = dir.create_new(MARKER)?;
        f.write_all(&serde_json::to_vec(marker).expect("markers serialize"))?;
        return Ok(Staging { name, dir });
    }
}

/// Whether `name` at the top of a target is a restore's staging folder
/// (of any run), not data.
pub fn is_staging(target: &DirFd, name: &str) -> bool {
    name.starts_with(STAGING_PREFIX)
        && target.kind(name).ok().flatten() == Some(Kind::Dir)
        && target
            .child_dir(name)
            .ok()
            .is_some_and(|d| read_marker(&d).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(uuid: &str) -> Marker {
        Marker {
            snapshot_uuid: uuid.into(),
            indices: vec![("a".into(), "a".into())],
            global_state: false,
            include: Vec::new(),
        }
    }

    #[test]
    fn a_rerun_finds_its_own_staging_folder_and_nothing_else() {
        let t = tempfile::tempdir().unwrap();
        let target = DirFd::open(t.path()).unwrap();
        let mut n = 0;
        let staging = create(&target, &marker("u1"), &HashSet::new(), || {
            n += 1;
            format!("t{n}")
        })
        .unwrap();
        assert_eq!(staging.name, ".snapkeep-restore-t1");
        let found = find(&target, &marker("u1"), &HashSet::new()).unwrap();
        assert_eq!(found.name, staging.name);
        assert!(find(&target, &marker("u2"), &HashSet::new()).is_none());
        // A name the restore writes is data, whatever it holds.
        let taken: HashSet<String> = [staging.name.clone()].into_iter().collect();
        assert!(find(&target, &marker("u1"), &taken).is_none());
        // A taken or existing name is never used for a new folder.
        let mut tokens = ["t1", "t2"].into_iter();
        let next = create(&target, &marker("u3"), &HashSet::new(), || {
            tokens.next().unwrap().to_string()
        })
        .unwrap();
        assert_eq!(next.name, ".snapkeep-restore-t2");
    }

    #[test]
    fn a_link_named_like_a_staging_folder_is_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let elsewhere = t.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let root = t.path().join("target");
        std::fs::create_dir(&root).unwrap();
        let target = DirFd::open(&root).unwrap();
        let real = create(&target, &marker("u1"), &HashSet::new(), || "x".into()).unwrap();
        drop(real);
        std::fs::rename(
            root.join(".snapkeep-restore-x"),
            elsewhere.join(".snapkeep-restore-x"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            elsewhere.join(".snapkeep-restore-x"),
            root.join(".snapkeep-restore-x"),
        )
        .unwrap();
        assert!(find(&target, &marker("u1"), &HashSet::new()).is_none());
        assert!(!is_staging(&target, ".snapkeep-restore-x"));
    }
}
