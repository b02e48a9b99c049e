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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::core::format::blob::{BlobEntry, BlobKind};
use crate::core::format::codec::Codec;
use crate::core::format::id::Id;
use crate::core::format::index::{IndexFile, RepoIndex};
use crate::core::format::keys;
use crate::core::format::manifest::Manifest;
use crate::core::format::pack::PackBuilder;
use crate::core::format::patch;
use crate::core::format::root::{RootChange, RootConflict};
use crate::core::plan::gc::{plan_gc, GcPlan};
use crate::core::policy::delete::{select_for_delete, DeleteSelectionError};
use crate::core::policy::inflight::Activity;
use crate::core::policy::pins::blocking;
use crate::error::{Error, Result};
use crate::repo::clock::{Clock, Sleep};
use crate::repo::inflight::{scan, with_marker, InFlight};
use crate::repo::pins;
use crate::repo::{RepoReader, RepoWriter};
use crate::storage::{Storage, StorageError};

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

/// A delete's plan: the root it was made from, its index files, the
/// snapshots it removes and the garbage collection that follows.
struct Planned {
    root: crate::core::format::root::Root,
    files: Vec<(Id, IndexFile)>,
    index: RepoIndex,
    doomed: std::collections::BTreeSet<String>,
    gc: GcPlan,
}

/// One delete: what it removes and what it runs with.
pub struct Delete<'a> {
    pub writer: &'a RepoWriter,
    /// Storage for the in-flight marker, below any rate limit.
    pub control: Arc<dyn Storage>,
    pub clock: Arc<dyn Clock>,
    pub sleep: &'a dyn Sleep,
    /// The operation's id (its marker's name), fresh per delete.
    pub uuid: &'a str,
    /// Snapshot names and `*` patterns.
    pub patterns: &'a [String],
    /// The disk is nearly full: keep sparse packs whole instead of writing
    /// repacked ones.
    pub tight: bool,
}

impl Delete<'_> {
    /// Deletes under an in-flight marker, which keeps cleanup away from the
    /// packs and index file this delete writes before its commit makes them
    /// referenced.
    pub async fn run(&self) -> Result<DeleteOutcome> {
        let marker = InFlight::start(
            self.control.clone(),
            self.clock.clone(),
            Activity::Delete,
            self.uuid,
            &self.patterns.join(","),
            self.writer.reader().cached_generation(),
        )
        .await?;
        with_marker(&marker, self.sleep, self.plan_until_it_applies()).await
    }

    async fn plan_until_it_applies(&self) -> Result<DeleteOutcome> {
        for _ in 0..PLAN_ATTEMPTS {
            match self.try_once().await {
                Err(Error::Conflict(
                    RootConflict::SnapshotAdded(_) | RootConflict::IndexFileGone(_),
                )) => continue,
                // A manifest or pack vanished under a concurrent delete:
                // plan again.
                Err(Error::Storage(StorageError::NotFound { .. })) => continue,
                other => return other,
            }
        }
        Err(Error::CommitContention(PLAN_ATTEMPTS))
    }

    /// What the delete would remove and free, changing nothing (no
    /// marker, no repacking, no commit).
    pub async fn preview(&self) -> Result<DeleteOutcome> {
        let planned = self.plan().await?;
        let plan = &planned.gc;
        Ok(DeleteOutcome {
            deleted: planned.doomed.into_iter().collect(),
            packs_deleted: plan.delete.len(),
            packs_repacked: plan.repack.len(),
            packs_written: 0,
            blobs_removed: plan.dead_blobs,
            bytes_freed: plan.reclaim_bytes,
            deferred_to_cleanup: false,
        })
    }

    /// The snapshots the patterns select and the garbage collection their
    /// removal allows, as of the newest root.
    async fn plan(&self) -> Result<Planned> {
        let reader = self.writer.reader();
        let (root, files) = reader.root_and_index_files().await?;
        reader.refuse_lost_root(root.generation)?;
        let doomed = select_for_delete(&root.snapshots, self.patterns)
            .map_err(|DeleteSelectionError::Missing(name)| Error::SnapshotMissing(name))?;
        self.refuse_pinned(&doomed).await?;
        let mut index = RepoIndex::new();
        for (_, f) in &files {
            index.merge(f);
        }
        let mut manifests = Vec::new();
        for s in root
            .snapshots
            .iter()
            .filter(|s| !doomed.contains(&s.snapshot))
        {
            manifests.push(reader.manifest(s).await?);
        }
        let mut live = live_blobs(reader, &index, &manifests).await?;
        keep_bases(&mut live, &files);
        let packs: Vec<(Id, Vec<BlobEntry>)> = files
            .iter()
            .flat_map(|(_, f)| f.packs.iter().cloned())
            .collect();
        let gc = plan_gc(&packs, &live);
        // On a nearly full disk new packs may not fit: packs with a few live
        // blobs are kept whole, and the next delete or cleanup with room
        // repacks them.
        let gc = if self.tight {
            gc.without_repacking()
        } else {
            gc
        };
        Ok(Planned {
            root,
            files,
            index,
            doomed,
            gc,
        })
    }

    async fn try_once(&self) -> Result<DeleteOutcome> {
        let reader = self.writer.reader();
        let Planned {
            root,
            files,
            index,
            doomed,
            gc: plan,
        } = self.plan().await?;

        let repacked = self.repack(&plan, &index).await?;
        let mut new_index = IndexFile {
            packs: plan.keep.clone(),
            bases: Vec::new(),
        };
        let packs_written = repacked.len();
        new_index.packs.extend(repacked);
        new_index.packs.sort_by_key(|(id, _)| *id);
        new_index.bases = bases_of_patches(&new_index.packs, &files);
        let new_file = if new_index.packs.is_empty() {
            None
        } else {
            Some(self.writer.put_index_file(&new_index).await?)
        };

        // Again just before the commit: a mount may have pinned one of
        // them while the repack ran.
        self.refuse_pinned(&doomed).await?;
        let old_files: Vec<Id> = files
            .iter()
            .map(|(id, _)| *id)
            .filter(|f| Some(*f) != new_file)
            .collect();
        let committed = self
            .writer
            .commit(&RootChange::Rewrite {
                remove_snapshots: doomed.iter().cloned().collect(),
                remove_index_files: old_files.clone(),
                add_index_files: new_file.into_iter().collect(),
                known_snapshots: root.snapshots.iter().map(|s| s.uuid.clone()).collect(),
            })
            .await?;

        // Only now is it safe to delete, unless a snapshot is running: it
        // may have deduplicated against these packs before our commit and
        // will index them again when it commits; cleanup removes them once
        // no snapshot that could reuse them is alive. The root is read again
        // after the markers: a snapshot that revived these packs and
        // finished between our commit and the listing has no marker any
        // more, but its commit moved the root.
        let store = reader.store.as_ref();
        let markers = scan(store, self.clock.now_ms()).await?;
        let deferred = markers.snapshot_running(None)
            || reader.root().await?.generation != committed.generation;
        if !deferred {
            for pack in plan.delete.iter().chain(plan.repack.iter().map(|(p, _)| p)) {
                store.delete(&keys::pack(pack)).await?;
            }
            for f in &old_files {
                store.delete(&keys::index_file(f)).await?;
            }
        }
        for s in root
            .snapshots
            .iter()
            .filter(|s| doomed.contains(&s.snapshot))
        {
            store.delete(&keys::manifest(&s.uuid)).await?;
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

    /// Fails if a live mount pins one of `doomed`.
    async fn refuse_pinned(&self, doomed: &BTreeSet<String>) -> Result<()> {
        let store = self.writer.reader().store.as_ref();
        let found = pins::scan(store, self.clock.now_ms()).await?;
        match blocking(&found.live, doomed) {
            Some(p) => Err(Error::SnapshotPinned {
                snapshot: p.snapshot.clone(),
                by: p.describe(),
            }),
            None => Ok(()),
        }
    }

    /// Copies the live blobs of mostly-dead packs into new packs, one kind
    /// per pack, and returns the new packs' tables.
    async fn repack(&self, plan: &GcPlan, index: &RepoIndex) -> Result<Vec<(Id, Vec<BlobEntry>)>> {
        let reader = self.writer.reader();
        let pack_size = reader.config.pack_size;
        let mut out = Vec::new();
        let mut builders = [PackBuilder::new(), PackBuilder::new()];
        for (pack, entries) in &plan.repack {
            let bytes = reader.store.get(&keys::pack(pack), None).await?;
            // Bases a batch at a time: a pack of patches would otherwise
            // hold a base per patch at once.
            for batch in patch::batches(entries) {
                let bases = reader.bases(index, batch.iter().map(|e| &e.id)).await?;
                for e in batch {
                    let stored = blob_in(&bytes, pack, e)?;
                    reader.decode_verified(e, stored, &bases)?;
                    let b = &mut builders[usize::from(e.kind == BlobKind::Tree)];
                    b.add(e.id, e.kind, e.codec, stored, e.raw_len);
                    if b.len() as u64 >= pack_size {
                        self.flush(std::mem::take(b), &mut out).await?;
                    }
                }
            }
        }
        for b in builders {
            self.flush(b, &mut out).await?;
        }
        Ok(out)
    }

    async fn flush(&self, b: PackBuilder, out: &mut Vec<(Id, Vec<BlobEntry>)>) -> Result<()> {
        if !b.is_empty() {
            let sealing = self.writer.reader().sealing();
            let (id, bytes, entries) = b.finish(sealing.table_seal()?);
            self.writer.put_pack(&id, Bytes::from(bytes)).await?;
            out.push((id, entries));
        }
        Ok(())
    }
}

/// Blob `e`'s stored bytes in the whole pack `bytes`.
fn blob_in<'a>(bytes: &'a Bytes, pack: &Id, e: &BlobEntry) -> Result<&'a [u8]> {
    bytes
        .get(e.offset as usize..e.end() as usize)
        .ok_or_else(|| Error::Integrity {
            id: e.id,
            detail: format!("lies outside pack {}", pack.short()),
        })
}

/// Adds to `live` the base of every live patch blob: a patch is kept
/// with the blob it decodes over. Bases come from every index file, not
/// only the copy the merged index reads, so whichever copy cleanup keeps
/// can be decoded.
fn keep_bases(live: &mut HashSet<Id>, files: &[(Id, IndexFile)]) {
    let bases: Vec<Id> = files
        .iter()
        .flat_map(|(_, f)| f.bases.iter())
        .filter(|(id, _)| live.contains(id))
        .map(|(_, base)| *base)
        .collect();
    live.extend(bases);
}

/// The bases section for an index file listing `packs`: the base of each
/// patch blob, as the index files it came from name it.
fn bases_of_patches(packs: &[(Id, Vec<BlobEntry>)], files: &[(Id, IndexFile)]) -> Vec<(Id, Id)> {
    let known: HashMap<Id, Id> = files
        .iter()
        .flat_map(|(_, f)| f.bases.iter().copied())
        .collect();
    let mut bases: Vec<(Id, Id)> = packs
        .iter()
        .flat_map(|(_, es)| es.iter())
        .filter(|e| e.codec == Codec::Patch)
        .filter_map(|e| Some((e.id, *known.get(&e.id)?)))
        .collect();
    bases.sort();
    bases.dedup();
    bases
}

/// Every blob (trees and data) the given manifests need. Fails if any tree
/// cannot be read, so callers never mistake an unreadable tree for garbage.
pub async fn live_blobs(
    reader: &RepoReader,
    index: &RepoIndex,
    manifests: &[Manifest],
) -> Result<HashSet<Id>> {
    let mut live = HashSet::new();
    let mut stack: Vec<Id> = manifests
        .iter()
        .flat_map(|m| m.roots())
        .map(|(_, t)| t)
        .collect();
    while let Some(id) = stack.pop() {
        if !live.insert(id) {
            continue;
        }
        let tree = reader.tree(index, &id).await?;
        for n in tree.nodes {
            live.extend(n.chunks);
            if let Some(sub) = n.subtree {
                stack.push(sub);
            }
        }
    }
    Ok(live)
}
