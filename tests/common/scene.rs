//! The place most tests work in: a fresh temporary folder with a source
//! data directory, a repository and a restore target side by side.

use std::path::PathBuf;

use tempfile::TempDir;

/// `(dir, src, repo, dst)`: a temporary folder and the paths of `src/`,
/// `repo/` and `dst/` in it. Nothing is created: tests write the source,
/// `repo init` makes the repository and a restore makes its target. Keep
/// `dir` bound (`_t`, not `_`) for the whole test: dropping it removes the
/// folder.
pub fn scene() -> (TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let (src, repo, dst) = (at("src"), at("repo"), at("dst"));
    (dir, src, repo, dst)
}
