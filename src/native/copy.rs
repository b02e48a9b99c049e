//! `snapshot copy`: snapshots from one repository into another, moving only
//! the blobs the destination's index lacks (`core::plan::copy`). Each moved
//! blob is decoded and checked against its SHA-256 before it is packed
//! again with the destination's compression and pack size; then the
//! destination gets an index file, the manifest (the source's, unchanged:
//! name, uuid, times, state, metadata) and a root naming it.
//!
//! The copy runs under an in-flight marker in the destination, written
//! before its root is read: a delete there leaves the packs the copy reuses
//! to cleanup, and cleanup keeps what the copy uploaded until it commits.
//! A delete that rewrites the destination's index meanwhile is handled as
//! for a snapshot (`RepoWriter::commit_snapshot` indexes reused blobs
//! again, or fails cleanly).

use std::collections::HashSet;

use rayon::prelude::*;
use serde::Serialize;

use crate::core::format::id::Id;
use crate::core::format::keys;
use crate::core::format::manifest::{Manifest, SnapshotSummary};
use crate::core::format::root::RootChange;
use crate::core::plan::copy::{check_chunkers, plan_copy, reachable, triage, CopyPlan};
use crate::core::plan::read::{PackRead, DEFAULT_MAX_GAP, DEFAULT_MAX_RANGE};
use crate::core::policy::delete::{select_for_delete, DeleteSelectionError};
use crate::native::backup::packer::Packer;
use crate::native::error::{Error, Result};
use crate::native::inflight::{Activity, InFlight};
use crate::native::repo::Repo;
use crate::native::runtime::block_on;

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
    if source.sealing().is_encrypted() || destination.sealing().is_encrypted() {
        // Blob ids are keyed per repository: moving blobs would need every
        // tree rewritten under the destination's ids.
        return Err(Error::Usage(
            "snapshot copy does not copy to or from an encrypted repository yet: restore the snapshot and take it again in the destination".into(),
        ));
    }
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
    let plan = plan_copy(
        &trees,
        &roots,
        &src_index,
        &dst_index,
        DEFAULT_MAX_GAP,
        DEFAULT_MAX_RANGE,
    )
    .map_err(|e| Error::DamagedSnapshot {
        snapshot: summary.snapshot.clone(),
        detail: e.to_string(),
    })?;
    let referenced: HashSet<Id> = reachable(&trees, &roots)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let packer = Packer::new(destination, &dst_index);
    plan.reads
        .par_iter()
        .try_for_each(|r| move_blobs(source, &packer, r))?;
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
fn move_blobs(source: &Repo, packer: &Packer, r: &PackRead) -> Result<()> {
    let key = keys::pack(&r.pack);
    let bytes = block_on(source.store.get(&key, Some(r.offset..r.offset + r.length)))?;
    for e in &r.blobs {
        let at = (e.offset - r.offset) as usize;
        let stored = bytes
            .get(at..at + e.stored_len as usize)
            .ok_or_else(|| Error::Integrity {
                id: e.id,
                detail: format!("pack {} is shorter than its index says", r.pack.short()),
            })?;
        let plain = source.reader().decode_verified(e, stored)?;
        packer.add(e.id, e.kind, &plain)?;
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
