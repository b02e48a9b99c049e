//! `snapshot delete`: removes snapshots from the root, then collects the
//! garbage: packs with no live blob are deleted, mostly-dead packs are
//! repacked, and the index is rewritten as one consolidated index file.
//!
//! Safety against concurrent writers: the rewrite names every snapshot it
//! accounted for, so it does not apply if a snapshot was committed while it
//! was planned (the delete then plans again); a snapshot that deduplicated
//! against the old index re-checks its blobs before it commits. Objects are
//! deleted only after the new root is committed, so a crash leaves at worst
//! unreferenced objects, never a root that points at missing data.

use serde::Serialize;

use crate::core::format::blob::{BlobEntry, BlobKind};
use crate::core::format::id::Id;
use crate::core::format::index::IndexFile;
use crate::core::format::keys;
use crate::core::format::pack::PackBuilder;
use crate::core::format::root::{RootChange, RootConflict};
use crate::core::plan::gc::{plan_gc, GcPlan};
use crate::core::policy::delete::{select_for_delete, DeleteSelectionError};
use crate::native::clock::now_millis;
use crate::native::error::{Error, Result};
use crate::native::inflight;
use crate::native::repo::{decode_verified, Repo};
use crate::native::reserve;
use crate::native::runtime::block_on;
use crate::native::trees::live_blobs;

/// Plans are redone this many times if snapshots keep landing meanwhile.
const PLAN_ATTEMPTS: u32 = 10;

#[derive(Debug, Clone, Default, Serialize)]
pub struct DeleteOutcome {
    pub deleted: Vec<String>,
    pub packs_deleted: usize,
    pub packs_repacked: usize,
    pub packs_written: usize,
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    /// True when snapshots were running: unreferenced packs were left for
    /// `repo cleanup` instead of being deleted at once.
    pub deferred_to_cleanup: bool,
}

pub fn delete_snapshots(repo: &Repo, patterns: &[String]) -> Result<DeleteOutcome> {
    let local = crate::native::guard::local_root(repo);
    let tight = local.as_deref().is_some_and(reserve::release_if_tight);
    let outcome = delete_with_marker(repo, patterns, tight);
    if let Some(root) = &local {
        reserve::ensure(root);
    }
    outcome
}

fn delete_with_marker(repo: &Repo, patterns: &[String], tight: bool) -> Result<DeleteOutcome> {
    // The marker keeps cleanup away from the packs and index file this
    // delete writes before its commit makes them referenced.
    let _inflight = inflight::InFlight::start(
        repo,
        inflight::Activity::Delete,
        &uuid::Uuid::new_v4().to_string(),
        &patterns.join(","),
        repo.cached_generation(),
    )?;
    for _ in 0..PLAN_ATTEMPTS {
        match try_delete(repo, patterns, tight) {
            Err(Error::Conflict(
                RootConflict::SnapshotAdded(_) | RootConflict::IndexFileGone(_),
            )) => continue,
            // A manifest or pack vanished under a concurrent delete: plan again.
            Err(Error::Storage(crate::storage::StorageError::NotFound { .. })) => continue,
            other => return other,
        }
    }
    Err(Error::CommitContention(PLAN_ATTEMPTS))
}

/// Copies the live blobs of mostly-dead packs into new packs, one kind per
/// pack, and returns the new packs' tables.
fn repack(repo: &Repo, plan: &GcPlan) -> Result<Vec<(Id, Vec<BlobEntry>)>> {
    let mut out = Vec::new();
    let mut builders = [PackBuilder::new(), PackBuilder::new()];
    let flush = |b: PackBuilder, out: &mut Vec<(Id, Vec<BlobEntry>)>| -> Result<()> {
        if !b.is_empty() {
            let (id, bytes, entries) = b.finish();
            repo.put_pack(&id, bytes)?;
            out.push((id, entries));
        }
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
            let b = &mut builders[usize::from(e.kind == BlobKind::Tree)];
            b.add(e.id, e.kind, e.codec, stored, e.raw_len);
            if b.len() as u64 >= repo.config.pack_size {
                flush(std::mem::take(b), &mut out)?;
            }
        }
    }
    for b in builders {
        flush(b, &mut out)?;
    }
    Ok(out)
}

fn try_delete(repo: &Repo, patterns: &[String], tight: bool) -> Result<DeleteOutcome> {
    let (root, files) = repo.root_and_index_files()?;
    repo.refuse_lost_root(root.generation)?;
    let doomed = select_for_delete(&root.snapshots, patterns)
        .map_err(|DeleteSelectionError::Missing(name)| Error::SnapshotMissing(name))?;
    let mut index = crate::core::format::index::RepoIndex::new();
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
    // On a nearly full disk new packs may not fit: packs with a few live
    // blobs are kept whole, and the next delete or cleanup with room
    // repacks them.
    let plan = if tight {
        plan.without_repacking()
    } else {
        plan
    };

    let repacked = repack(repo, &plan)?;
    let mut new_index = IndexFile {
        packs: plan.keep.clone(),
    };
    let packs_written = repacked.len();
    new_index.packs.extend(repacked);
    new_index.packs.sort_by_key(|(id, _)| *id);
    let new_file = if new_index.packs.is_empty() {
        None
    } else {
        Some(repo.put_index_file(&new_index)?)
    };

    let old_files: Vec<Id> = files
        .iter()
        .map(|(id, _)| *id)
        .filter(|f| Some(*f) != new_file)
        .collect();
    let committed = repo.commit(&RootChange::Rewrite {
        remove_snapshots: doomed.iter().cloned().collect(),
        remove_index_files: old_files.clone(),
        add_index_files: new_file.into_iter().collect(),
        known_snapshots: root.snapshots.iter().map(|s| s.uuid.clone()).collect(),
    })?;

    // Only now is it safe to delete, unless a snapshot is running: it may
    // have deduplicated against these packs before our commit and will index
    // them again when it commits; cleanup removes them once no snapshot that
    // could reuse them is alive. The root is read again after the markers:
    // a snapshot that revived these packs and finished between our commit
    // and the listing has no marker any more, but its commit moved the root.
    let markers = inflight::scan(repo, now_millis())?;
    let deferred =
        markers.snapshot_running(None) || repo.root()?.generation != committed.generation;
    if !deferred {
        for pack in plan.delete.iter().chain(plan.repack.iter().map(|(p, _)| p)) {
            block_on(repo.store.delete(&keys::pack(pack)))?;
        }
        for f in &old_files {
            block_on(repo.store.delete(&keys::index_file(f)))?;
        }
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
        packs_written,
        blobs_removed: plan.dead_blobs,
        bytes_freed: plan.reclaim_bytes,
        deferred_to_cleanup: deferred,
    })
}
