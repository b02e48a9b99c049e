//! `snapshot copy`: snapshots from one repository into another, moving only
//! the blobs the destination's index lacks (`core::plan::copy`). Each moved
//! blob is decoded and checked against its id before it is packed
//! again with the destination's compression, pack size and encryption;
//! between repositories that name blobs differently (either one
//! encrypted: ids are keyed per repository) every blob moves, named again
//! by the destination, and the trees and the manifest's roots are
//! rewritten to match (`core::plan::rekey`). Then the
//! destination gets an index file, the manifest (the source's: the same
//! name, uuid, times, state and metadata) and a root naming it.
//!
//! The copy runs under an in-flight marker in the destination, written
//! before its root is read: a delete there leaves the packs the copy reuses
//! to cleanup, and cleanup keeps what the copy uploaded until it commits.
//! A delete that rewrites the destination's index meanwhile is handled as
//! for a snapshot (`RepoWriter::commit_snapshot` indexes reused blobs
//! again, or fails cleanly).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use rayon::prelude::*;
use serde::Serialize;

use crate::core::format::blob::BlobKind;
use crate::core::format::id::Id;
use crate::core::format::index::RepoIndex;
use crate::core::format::keys;
use crate::core::format::manifest::{Manifest, SnapshotSummary};
use crate::core::format::root::RootChange;
use crate::core::format::tree::Tree;
use crate::core::plan::copy::{check_chunkers, plan_copy, reachable, triage, CopyPlan};
use crate::core::plan::read::{PackRead, DEFAULT_MAX_GAP, DEFAULT_MAX_RANGE};
use crate::core::plan::rekey::rekey_trees;
use crate::core::policy::delete::{select_for_delete, DeleteSelectionError};
use crate::native::backup::packer::Packer;
use crate::native::error::{Error, Result};
use crate::native::inflight::{Activity, InFlight};
use crate::native::repo::Repo;
use crate::native::runtime::block_on;
use crate::repo::reader::stored_in;

/// What happened to one selected snapshot.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Copied {
    pub snapshot: String,
    pub uuid: String,
    /// `copied`, or `skipped` (the destination already holds it).
    pub status: &'static str,
    /// Blobs moved, and their plain bytes (file data and trees).
    pub blobs_moved: u64,
    pub data_bytes_moved: u64,
    pub tree_bytes_moved: u64,
    /// Distinct blobs of the snapshot the destination already had.
    pub blobs_present: u64,
    /// Stored bytes read from the source's packs.
    pub bytes_fetched: u64,
    /// Pack bytes written to the destination.
    pub bytes_uploaded: u64,
    pub packs_written: u64,
    /// The destination's root generation that names the copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
}

/// Copies the snapshots `patterns` select from `source` to `destination`,
/// in name order. Every check (names, chunkers, names taken) is made
/// before anything moves.
pub fn copy_snapshots(
    source: &Repo,
    destination: &Repo,
    patterns: &[String],
) -> Result<Vec<Copied>> {
    check_chunkers(&source.config.chunker, &destination.config.chunker)?;
    let src_root = source.root()?;
    let names = select_for_delete(&src_root.snapshots, patterns)
        .map_err(|DeleteSelectionError::Missing(name)| Error::SnapshotMissing(name))?;
    let selected: Vec<&SnapshotSummary> =
        names.iter().filter_map(|n| src_root.snapshot(n)).collect();
    let uuid = uuid::Uuid::new_v4().to_string();
    let marker = InFlight::start(
        destination,
        Activity::Snapshot,
        &uuid,
        &names.iter().cloned().collect::<Vec<_>>().join(","),
        destination.cached_generation(),
    )?;
    let dst_root = destination.root()?;
    destination.refuse_lost_root(dst_root.generation)?;
    let (to_copy, present) = triage(&selected, &dst_root.snapshots)?;
    let mut out: Vec<Copied> = present
        .iter()
        .map(|s| Copied {
            snapshot: s.snapshot.clone(),
            uuid: s.uuid.clone(),
            status: "skipped",
            ..Default::default()
        })
        .collect();
    for s in to_copy {
        out.push(copy_one(source, destination, s, &marker)?);
    }
    out.sort_by(|a, b| a.snapshot.cmp(&b.snapshot));
    Ok(out)
}

fn copy_one(
    source: &Repo,
    destination: &Repo,
    summary: &SnapshotSummary,
    marker: &InFlight,
) -> Result<Copied> {
    let (_, src_index) = source.root_and_index()?;
    let manifest = source.manifest(summary)?;
    let roots: Vec<Id> = manifest.roots().into_iter().map(|(_, id)| id).collect();
    let trees = block_on(source.reader().load_trees(&src_index, &roots))?;
    let (dst_root, dst_index) = destination.root_and_index()?;
    // Blob ids are keyed per encrypted repository: every blob is read and
    // named again by the destination, and the trees rewritten.
    let rekey = source.sealing().is_encrypted() || destination.sealing().is_encrypted();
    let nothing = RepoIndex::new();
    let plan = plan_copy(
        &trees,
        &roots,
        &src_index,
        if rekey { &nothing } else { &dst_index },
        DEFAULT_MAX_GAP,
        DEFAULT_MAX_RANGE,
    )
    .map_err(|e| Error::DamagedSnapshot {
        snapshot: summary.snapshot.clone(),
        detail: e.to_string(),
    })?;
    let packer = Packer::new(destination, &dst_index);
    let renamed = rekey.then(Mutex::default);
    plan.reads
        .par_iter()
        .try_for_each(|r| move_blobs(source, &src_index, &packer, r, renamed.as_ref()))?;
    let (manifest, referenced) = match renamed {
        Some(chunks) => {
            let chunks = chunks.into_inner().unwrap();
            rekeyed(&packer, &trees, &roots, &chunks, manifest)?
        }
        None => {
            let referenced = reachable(&trees, &roots)?;
            (manifest, referenced.into_iter().map(|(id, _)| id).collect())
        }
    };
    let totals = packer.finish()?;
    let index_file = if totals.index.packs.is_empty() {
        None
    } else {
        Some(destination.put_index_file(&totals.index)?)
    };
    let hash = put_manifest(destination, &manifest)?;
    let mut s = manifest.summary();
    s.manifest = Some(hash);
    let mut change = RootChange::AddSnapshot {
        summary: s,
        index_file,
        base_index_files: dst_root.index_files.clone(),
        slot: None,
    };
    marker.ensure_fresh()?;
    // A refused commit leaves the manifest to cleanup: its uuid is the
    // source's, so it may be the one a concurrent copy just committed.
    let root = block_on(destination.writer().commit_snapshot(
        &mut change,
        &referenced,
        &totals.index,
        &dst_index,
    ))?;
    Ok(copied(
        summary,
        &plan,
        totals.bytes_uploaded,
        totals.packs_written,
        root.generation,
    ))
}

fn copied(
    s: &SnapshotSummary,
    plan: &CopyPlan,
    uploaded: u64,
    packs: u64,
    generation: u64,
) -> Copied {
    Copied {
        snapshot: s.snapshot.clone(),
        uuid: s.uuid.clone(),
        status: "copied",
        blobs_moved: plan.blobs,
        data_bytes_moved: plan.data_bytes,
        tree_bytes_moved: plan.tree_bytes,
        blobs_present: plan.blobs_present,
        bytes_fetched: plan.bytes_to_fetch,
        bytes_uploaded: uploaded,
        packs_written: packs,
        generation: Some(generation),
    }
}

/// Reads one range of a source pack and packs every blob in it for the
/// destination, each checked against its id first.
/// Adds the snapshot's trees renamed for the destination (see
/// `core::plan::rekey`) and returns the manifest naming the new roots,
/// with every blob it references.
fn rekeyed(
    packer: &Packer,
    trees: &HashMap<Id, Tree>,
    roots: &[Id],
    chunks: &HashMap<Id, Id>,
    mut manifest: Manifest,
) -> Result<(Manifest, HashSet<Id>)> {
    let ids = packer.ids();
    let out = rekey_trees(trees, roots, chunks, &ids).map_err(|e| Error::DamagedSnapshot {
        snapshot: manifest.snapshot.clone(),
        detail: e.to_string(),
    })?;
    for (id, bytes) in &out.trees {
        packer.add(*id, BlobKind::Tree, bytes)?;
    }
    let stats = manifest
        .indices
        .values_mut()
        .chain(manifest.global_state.iter_mut());
    for s in stats {
        s.tree = s.tree.map(|t| out.renamed[&t]);
    }
    let referenced = chunks
        .values()
        .chain(out.renamed.values())
        .copied()
        .collect();
    Ok((manifest, referenced))
}

/// Moves the blobs of one pack range; with `renamed` (a copy between
/// repositories whose ids differ), data blobs are named again by the
/// destination and recorded there, and tree blobs are left to [`rekeyed`].
fn move_blobs(
    source: &Repo,
    index: &RepoIndex,
    packer: &Packer,
    r: &PackRead,
    renamed: Option<&Mutex<HashMap<Id, Id>>>,
) -> Result<()> {
    let key = keys::pack(&r.pack);
    let bytes = block_on(source.store.get(&key, Some(r.offset..r.offset + r.length)))?;
    // A patch blob is stored whole in the destination: its base may not
    // be copied.
    let bases = source.bases(index, r.blobs.iter().map(|e| &e.id))?;
    for e in &r.blobs {
        let stored = stored_in(&bytes, r, e)?;
        if renamed.is_some() && e.kind == BlobKind::Tree {
            continue;
        }
        let plain = source.reader().decode_verified(e, stored, &bases)?;
        let Some(renamed) = renamed else {
            packer.add(e.id, e.kind, &plain)?;
            continue;
        };
        let id = packer.id_of(&plain);
        packer.add(id, BlobKind::Data, &plain)?;
        renamed.lock().unwrap().insert(e.id, id);
    }
    Ok(())
}

/// Stores the manifest and proves the destination holds exactly these
/// bytes: a manifest of the same uuid left there earlier (by a copy that
/// did not commit) must be the same one, or the root would name a
/// manifest that disagrees with it.
fn put_manifest(destination: &Repo, manifest: &Manifest) -> Result<Id> {
    let hash = block_on(destination.writer().put_manifest(manifest))?;
    let key = keys::manifest(&manifest.uuid);
    if Id::of(&destination.get(&key)?) != hash {
        return Err(Error::DamagedObject {
            key,
            detail: "the destination already holds another manifest of this snapshot's uuid; nothing was committed (run `snapkeep repo cleanup` there)".into(),
        });
    }
    Ok(hash)
}
