//! Keeps snapshots and restores away from local repositories: a repository
//! inside a snapshot's source is never snapshotted (restoring that copy
//! over the source would roll the live repository back), and a restore
//! never writes into, around or over one.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::core::format::config::RepoConfig;
use crate::core::format::keys;
use crate::native::error::{Error, Result};
use crate::native::repo::Repo;

/// A folder's device and inode: what makes two paths the same folder.
pub type Identity = (u64, u64);

pub fn identity(path: &Path) -> Option<Identity> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The folder of a local repository.
pub fn local_root(repo: &Repo) -> Option<PathBuf> {
    repo.store.capabilities().local_root
}

/// Whether `dir` holds a snapkeep repository (a `config` object that
/// decodes as one). The config is opened without following a link and
/// without blocking on a FIFO.
pub fn is_repository(dir: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(dir.join(keys::CONFIG))
    else {
        return false;
    };
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut bytes = Vec::new();
    f.take(1 << 20).read_to_end(&mut bytes).is_ok() && RepoConfig::decode(&bytes).is_ok()
}

/// `path` made absolute with its existing part resolved, so that two
/// spellings of one place compare equal.
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_owned());
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    for name in rest.into_iter().rev() {
        out.push(name);
    }
    out.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// Refuses a snapshot source that is a repository or lies inside the local
/// repository written to (a repository inside the source is left out by
/// the walk instead).
pub fn check_snapshot_source(repo: &Repo, source: &Path) -> Result<()> {
    let refuse = |why: &str| {
        Err(Error::Source {
            path: source.to_path_buf(),
            detail: why.to_string(),
        })
    };
    if let Some(root) = local_root(repo) {
        if resolved(source).starts_with(resolved(&root)) {
            return refuse("is the repository being written to, or lies inside it");
        }
    }
    if is_repository(source) {
        return refuse("is a snapkeep repository");
    }
    Ok(())
}

/// Refuses a restore target that is, contains or lies inside the local
/// repository restored from, or that is a repository or holds one where
/// an index folder would go.
pub fn check_restore_target(repo: &Repo, target: &Path, index_targets: &[String]) -> Result<()> {
    let refuse = |why: String| {
        Err(Error::Usage(format!(
            "refusing to restore into {}: {why}",
            target.display()
        )))
    };
    if let Some(root) = local_root(repo) {
        let (t, r) = (resolved(target), resolved(&root));
        if t == r {
            return refuse("it is the repository restored from".into());
        }
        if t.starts_with(&r) {
            return refuse(format!("it lies inside the repository {}", r.display()));
        }
        if r.starts_with(&t) {
            return refuse(format!(
                "it contains the repository {} (restore elsewhere, then move what you need)",
                r.display()
            ));
        }
    }
    if is_repository(target) {
        return refuse("it is a snapkeep repository".into());
    }
    for name in index_targets {
        if is_repository(&target.join(name)) {
            return refuse(format!("its folder {name} is a snapkeep repository"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_place_resolve_alike() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().canonicalize().unwrap();
        std::fs::create_dir(base.join("a")).unwrap();
        std::os::unix::fs::symlink(base.join("a"), base.join("link")).unwrap();
        assert_eq!(resolved(&base.join("link/x/y")), base.join("a/x/y"));
        assert_eq!(resolved(&base.join("a/./x")), base.join("a/x"));
    }
}
