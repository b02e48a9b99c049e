//! Read-only views (see [`crate::repo::views`]), driven synchronously.

pub use crate::repo::views::{DiffReport, RepoStats};

use crate::native::error::Result;
use crate::native::repo::Repo;
use crate::native::runtime::block_on;

pub fn stats(repo: &Repo) -> Result<RepoStats> {
    block_on(crate::repo::views::stats(repo.reader()))
}

/// Compares two snapshots, index by index, reading only the trees along
/// changed paths.
pub fn diff(repo: &Repo, from: &str, to: &str) -> Result<DiffReport> {
    block_on(crate::repo::views::diff(repo.reader(), from, to))
}
