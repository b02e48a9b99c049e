//! Read-only views: repository statistics and snapshot diffs.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::core::diff::{diff_level, Change, ChangeKind, Descend};
use crate::core::manifest::GLOBAL_STATE;
use crate::core::tree::Tree;
use crate::native::error::{Error, Result};
use crate::native::repo::Repo;
use crate::native::runtime::block_on;

#[derive(Debug, Clone, Default, Serialize)]
pub struct RepoStats {
    pub location: String,
    pub generation: u64,
    pub snapshots: usize,
    /// Sum of every snapshot's plain size: what a full copy of each would take.
    pub logical_bytes: u64,
    /// Bytes of every object in the repository.
    pub stored_bytes: u64,
    pub pack_bytes: u64,
    pub packs: usize,
    pub blobs: usize,
    pub index_files: usize,
    /// logical_bytes / stored_bytes.
    pub dedup_ratio: f64,
}

pub fn stats(repo: &Repo) -> Result<RepoStats> {
    let (root, index) = repo.root_and_index()?;
    let objects = block_on(repo.store.list(""))?;
    let packs: Vec<_> = objects
        .iter()
        .filter(|m| m.key.starts_with(crate::core::keys::PACK_PREFIX))
        .collect();
    let logical: u64 = root.snapshots.iter().map(|s| s.size_in_bytes).sum();
    let stored: u64 = objects.iter().map(|m| m.size).sum();
    Ok(RepoStats {
        location: repo.store.location(),
        generation: root.generation,
        snapshots: root.snapshots.len(),
        logical_bytes: logical,
        stored_bytes: stored,
        pack_bytes: packs.iter().map(|m| m.size).sum(),
        packs: packs.len(),
        blobs: index.blob_count(),
        index_files: root.index_files.len(),
        dedup_ratio: if stored == 0 {
            0.0
        } else {
            logical as f64 / stored as f64
        },
    })
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DiffReport {
    pub from: String,
    pub to: String,
    pub added: usize,
    pub removed: usize,
    pub modified: usize,
    pub metadata: usize,
    pub changes: Vec<Change>,
}

/// Compares two snapshots, index by index, reading only the trees along
/// changed paths.
pub fn diff(repo: &Repo, from: &str, to: &str) -> Result<DiffReport> {
    let (root, index) = repo.root_and_index()?;
    let find = |n: &str| {
        root.snapshot(n)
            .ok_or_else(|| Error::SnapshotMissing(n.to_string()))
    };
    let (a, b) = (repo.manifest(find(from)?)?, repo.manifest(find(to)?)?);
    let roots = |m: &crate::core::manifest::Manifest| -> std::collections::BTreeMap<String, crate::core::id::Id> {
        m.roots().into_iter().collect()
    };
    let (ra, rb) = (roots(&a), roots(&b));
    let names: BTreeSet<&String> = ra.keys().chain(rb.keys()).collect();
    let mut queue: Vec<Descend> = names
        .into_iter()
        .map(|n| Descend {
            path: if n == GLOBAL_STATE {
                GLOBAL_STATE.into()
            } else {
                n.clone()
            },
            old: ra.get(n).copied(),
            new: rb.get(n).copied(),
        })
        .filter(Descend::is_needed)
        .collect();
    let load = |id: Option<crate::core::id::Id>| -> Result<Tree> {
        id.map_or_else(|| Ok(Tree::default()), |id| repo.tree(&index, &id))
    };
    let mut changes = Vec::new();
    while let Some(d) = queue.pop() {
        let (c, more) = diff_level(&d.path, &load(d.old)?, &load(d.new)?);
        changes.extend(c);
        queue.extend(more.into_iter().filter(Descend::is_needed));
    }
    changes.sort_by(|x, y| x.path.cmp(&y.path));
    let count = |k: ChangeKind| changes.iter().filter(|c| c.change == k).count();
    Ok(DiffReport {
        from: from.into(),
        to: to.into(),
        added: count(ChangeKind::Added),
        removed: count(ChangeKind::Removed),
        modified: count(ChangeKind::Modified),
        metadata: count(ChangeKind::Metadata),
        changes,
    })
}
