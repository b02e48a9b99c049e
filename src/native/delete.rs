//! `snapshot delete`: removes snapshots from the root, then collects the
//! garbage: packs with no live blob are deleted, mostly-dead packs are
//! repacked, and the index is rewritten as one consolidated index file.
//!
//! Objects are deleted only after the new root is committed, so a crash
//! leaves at worst unreferenced objects, never a root that points at
//! missing data.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::core::blob::BlobEntry;
use crate::core::gc::plan_gc;
use crate::core::id::Id;
use crate::core::index::IndexFile;
use crate::core::keys;
use crate::core::pack::PackBuilder;
use crate::core::root::RootChange;
use crate::core::selection::wildcard_match;
use crate::native::error::{Error, Result};
use crate::native::repo::{decode_verified, Repo};
use crate::native::runtime::block_on;
use crate::native::trees::live_blobs;

#[derive(Debug, Clone, Default, Serialize)]
pub struct DeleteOutcome {
    pub deleted: Vec<String>,
    pub packs_deleted: usize,
    pub packs_repacked: usize,
    pub packs_written: usize,
    pub blobs_removed: u64,
    pub bytes_freed: u64,
}

pub fn delete_snapshots(repo: &Repo, patterns: &[String]) -> Result<DeleteOutcome> {
    let root = repo.root()?;
    let mut doomed = BTreeSet::new();
    for p in patterns {
        let hits: Vec<&str> = root
            .snapshots
            .iter()
            .map(|s| s.snapshot.as_str())
            .filter(|n| wildcard_match(p, n))
            .collect();
        if hits.is_empty() && !p.contains('*') {
            return Err(Error::SnapshotMissing(p.clone()));
        }
        doomed.extend(hits.into_iter().map(str::to_string));
    }
    if doomed.is_empty() {
        return Err(Error::SnapshotMissing(patterns.join(",")));
    }

    let files = repo.index_files(&root)?;
    let mut index = crate::core::index::RepoIndex::new();
    for (_, f) in &files {
        index.merge(f);
    }
    let remaining: Vec<_> = root
        .snapshots
        .iter()
        .filter(|s| !doomed.contains(&s.snapshot))
        .collect();
    let manifests = remaining
        .iter()
        .map(|s| repo.manifest(s))
        .collect::<Result<Vec<_>>>()?;
    let live = live_blobs(repo, &index, &manifests)?;
    let packs: Vec<(Id, Vec<BlobEntry>)> = files
        .iter()
        .flat_map(|(_, f)| f.packs.iter().cloned())
        .collect();
    let plan = plan_gc(&packs, &live);

    // Repack: copy live blobs of mostly-dead packs into new packs.
    let mut new_index = IndexFile {
        packs: plan.keep.clone(),
    };
    let mut builder = PackBuilder::new();
    let mut written = 0;
    let mut flush = |b: PackBuilder, new_index: &mut IndexFile| -> Result<()> {
        if b.is_empty() {
            return Ok(());
        }
        let (id, bytes, entries) = b.finish();
        repo.put_pack(&id, bytes)?;
        new_index.packs.push((id, entries));
        written += 1;
        Ok(())
    };
    for (pack, entries) in &plan.repack {
        let bytes = block_on(repo.store.get(&keys::pack(pack), None))?;
        for e in entries {
            let stored = bytes
                .get(e.offset as usize..e.end() as usize)
                .ok_or_else(|| Error::Integrity {
                    id: e.id,
                    detail: format!("lies outside pack {}", pack.short()),
                })?;
            decode_verified(e, stored)?;
            builder.add(e.id, e.kind, e.codec, stored, e.raw_len);
            if builder.len() as u64 >= repo.config.pack_size {
                flush(std::mem::take(&mut builder), &mut new_index)?;
            }
        }
    }
    flush(builder, &mut new_index)?;
    new_index.packs.sort_by_key(|(id, _)| *id);
    let new_file = if new_index.packs.is_empty() {
        None
    } else {
        Some(repo.put_index_file(&new_index)?)
    };

    let old_files: Vec<Id> = files.iter().map(|(id, _)| *id).collect();
    repo.commit(&RootChange::Rewrite {
        remove_snapshots: doomed.iter().cloned().collect(),
        remove_index_files: old_files
            .iter()
            .filter(|f| Some(**f) != new_file)
            .copied()
            .collect(),
        add_index_files: new_file.into_iter().collect(),
    })?;

    // Only now is it safe to delete.
    for pack in plan.delete.iter().chain(plan.repack.iter().map(|(p, _)| p)) {
        block_on(repo.store.delete(&keys::pack(pack)))?;
    }
    for f in old_files.iter().filter(|f| Some(**f) != new_file) {
        block_on(repo.store.delete(&keys::index_file(f)))?;
    }
    for s in root
        .snapshots
        .iter()
        .filter(|s| doomed.contains(&s.snapshot))
    {
        block_on(repo.store.delete(&keys::manifest(&s.uuid)))?;
    }
    Ok(DeleteOutcome {
        deleted: doomed.into_iter().collect(),
        packs_deleted: plan.delete.len(),
        packs_repacked: plan.repack.len(),
        packs_written: written,
        blobs_removed: plan.dead_blobs,
        bytes_freed: plan.reclaim_bytes,
    })
}
