//! Copying a snapshot to another repository (`snapshot copy`): which blobs
//! its trees need that the destination's index lacks, and the range reads
//! of the source's packs that fetch them. Only those blobs move; everything
//! the destination already holds (from earlier copies or its own snapshots)
//! is shared.
//!
//! Sharing works only between repositories that cut files alike: with
//! other chunker parameters every boundary differs, so a copy would share
//! nothing with the destination's own snapshots and the next copies would
//! share nothing with it. [`check_chunkers`] refuses such a pair.

use std::collections::HashMap;

use crate::core::chunker::ChunkerParams;
use crate::core::format::blob::BlobKind;
use crate::core::format::id::{Id, IdSet};
use crate::core::format::index::RepoIndex;
use crate::core::format::manifest::SnapshotSummary;
use crate::core::format::tree::Tree;
use crate::core::plan::read::{plan_reads, MissingBlob, PackRead};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyError {
    #[error("the repositories cut files differently (source chunker {from:?}, destination {to:?}), so a copy would share no data with the destination; create the destination with `snapkeep repo init DST --copy-chunker-params-from SRC`")]
    ChunkerMismatch {
        from: ChunkerParams,
        to: ChunkerParams,
    },
    /// The destination holds another snapshot (another uuid) of the name.
    #[error("the destination already holds a different snapshot named [{0}]; nothing was copied (delete it there, or copy into another repository)")]
    NameTaken(String),
    #[error("tree {0} was not loaded")]
    MissingTree(Id),
    #[error("{0}")]
    MissingBlob(#[from] MissingBlob),
}

/// What copying one snapshot moves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyPlan {
    /// Range reads of the source's packs; every blob in them moves.
    pub reads: Vec<PackRead>,
    /// Blobs to move, and their plain bytes by kind.
    pub blobs: u64,
    pub data_bytes: u64,
    pub tree_bytes: u64,
    /// Distinct blobs the snapshot needs that the destination already has.
    pub blobs_present: u64,
    /// Stored bytes the reads fetch from the source (gaps included).
    pub bytes_to_fetch: u64,
}

/// Refuses a copy between repositories whose chunkers differ.
pub fn check_chunkers(
    source: &ChunkerParams,
    destination: &ChunkerParams,
) -> Result<(), CopyError> {
    if source == destination {
        Ok(())
    } else {
        Err(CopyError::ChunkerMismatch {
            from: *source,
            to: *destination,
        })
    }
}

/// Of the snapshots selected in the source, those to copy and those the
/// destination already holds (same name and uuid: an earlier copy), which
/// are skipped. A name the destination holds for another snapshot refuses
/// the whole copy, before anything moves.
pub fn triage<'a>(
    selected: &[&'a SnapshotSummary],
    destination: &[SnapshotSummary],
) -> Result<(Vec<&'a SnapshotSummary>, Vec<&'a SnapshotSummary>), CopyError> {
    let mut copy = Vec::new();
    let mut present = Vec::new();
    for s in selected {
        match destination.iter().find(|d| d.snapshot == s.snapshot) {
            None => copy.push(*s),
            Some(d) if d.uuid == s.uuid => present.push(*s),
            Some(_) => return Err(CopyError::NameTaken(s.snapshot.clone())),
        }
    }
    Ok((copy, present))
}

/// Every distinct blob reachable from `roots` (trees first met first, then
/// their chunks), with its kind.
pub fn reachable(
    trees: &HashMap<Id, Tree>,
    roots: &[Id],
) -> Result<Vec<(Id, BlobKind)>, CopyError> {
    let mut seen = IdSet::default();
    let mut out = Vec::new();
    let mut stack: Vec<Id> = roots.to_vec();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        out.push((id, BlobKind::Tree));
        let tree = trees.get(&id).ok_or(CopyError::MissingTree(id))?;
        for n in &tree.nodes {
            for c in &n.chunks {
                if seen.insert(*c) {
                    out.push((*c, BlobKind::Data));
                }
            }
            stack.extend(n.subtree);
        }
    }
    Ok(out)
}

/// The reads that move every blob reachable from `roots` that
/// `destination` lacks, from `source`.
pub fn plan_copy(
    trees: &HashMap<Id, Tree>,
    roots: &[Id],
    source: &RepoIndex,
    destination: &RepoIndex,
    max_gap: u64,
    max_range: u64,
) -> Result<CopyPlan, CopyError> {
    let needed = reachable(trees, roots)?;
    let mut plan = CopyPlan::default();
    let mut missing = Vec::new();
    for (id, kind) in needed {
        if destination.contains(&id) {
            plan.blobs_present += 1;
            continue;
        }
        let raw = source.get(&id).ok_or(MissingBlob(id))?.raw_len as u64;
        match kind {
            BlobKind::Tree => plan.tree_bytes += raw,
            BlobKind::Data => plan.data_bytes += raw,
        }
        missing.push(id);
    }
    plan.blobs = missing.len() as u64;
    plan.reads = plan_reads(&missing, source, max_gap, max_range)?;
    plan.bytes_to_fetch = plan.reads.iter().map(|r| r.length).sum();
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::{dir, entry, file, store};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A snapshot of `x` (chunks a, b) and `sub/y` (chunks b, c), indexed
    /// in one source pack with its trees.
    fn fixture() -> (HashMap<Id, Tree>, Id, RepoIndex) {
        let mut trees = HashMap::new();
        let sub = store(&mut trees, Tree::new(vec![file("y", &[b"bbbb", b"cccc"])]));
        let top = store(
            &mut trees,
            Tree::new(vec![file("x", &[b"aaaa", b"bbbb"]), dir("sub", sub)]),
        );
        let mut source = RepoIndex::new();
        let mut entries = vec![entry(b"aaaa", 8), entry(b"bbbb", 12), entry(b"cccc", 16)];
        let mut at = 20;
        for t in [sub, top] {
            let bytes = trees[&t].encode();
            let mut e = entry(&bytes, at);
            e.kind = BlobKind::Tree;
            at += e.stored_len as u64;
            entries.push(e);
        }
        source.add_pack(Id::of(b"p"), &entries);
        (trees, top, source)
    }

    #[test]
    fn everything_moves_into_an_empty_destination_each_blob_once() {
        let (trees, top, source) = fixture();
        let plan = plan_copy(&trees, &[top], &source, &RepoIndex::new(), 1024, u64::MAX).unwrap();
        assert_eq!(
            plan.blobs, 5,
            "a, b, c and two trees; b twice but moved once"
        );
        assert_eq!(plan.data_bytes, 12);
        assert_eq!(plan.blobs_present, 0);
        assert_eq!(plan.reads.len(), 1, "neighbours share one read");
        assert!(plan.tree_bytes > 0);
    }

    #[test]
    fn only_what_the_destination_lacks_moves() {
        let (trees, top, source) = fixture();
        let mut destination = RepoIndex::new();
        destination.add_pack(Id::of(b"q"), &[entry(b"aaaa", 8), entry(b"bbbb", 12)]);
        let plan = plan_copy(&trees, &[top], &source, &destination, 1024, u64::MAX).unwrap();
        assert_eq!(plan.data_bytes, 4, "only c");
        assert_eq!(plan.blobs, 3, "c and the two trees");
        assert_eq!(plan.blobs_present, 2);
        let moved: Vec<Id> = plan
            .reads
            .iter()
            .flat_map(|r| r.blobs.iter().map(|e| e.id))
            .collect();
        assert!(moved.contains(&Id::of(b"cccc")) && !moved.contains(&Id::of(b"aaaa")));
    }

    #[test]
    fn a_blob_the_source_lacks_or_an_unloaded_tree_is_an_error() {
        let (mut trees, top, _) = fixture();
        assert!(matches!(
            plan_copy(
                &trees,
                &[top],
                &RepoIndex::new(),
                &RepoIndex::new(),
                0,
                u64::MAX
            ),
            Err(CopyError::MissingBlob(_))
        ));
        trees.clear();
        assert_eq!(reachable(&trees, &[top]), Err(CopyError::MissingTree(top)));
    }

    #[test]
    fn earlier_copies_are_skipped_and_a_taken_name_refuses_everything() {
        use crate::core::testing::summary;
        let (a, b) = (summary("a"), summary("b"));
        let mut other_b = summary("b");
        other_b.uuid = "another".into();
        let (copy, present) = triage(&[&a, &b], std::slice::from_ref(&b)).unwrap();
        assert_eq!(copy.iter().map(|s| &s.snapshot).collect::<Vec<_>>(), ["a"]);
        assert_eq!(present.len(), 1);
        assert_eq!(
            triage(&[&a, &b], &[other_b]),
            Err(CopyError::NameTaken("b".into()))
        );
    }

    #[test]
    fn different_chunkers_are_refused() {
        let a = ChunkerParams::default();
        let b = ChunkerParams {
            avg: a.avg * 2,
            max: a.max * 2,
            ..a
        };
        assert!(check_chunkers(&a, &a).is_ok());
        let e = check_chunkers(&a, &b).unwrap_err();
        assert!(e.to_string().contains("--copy-chunker-params-from"), "{e}");
    }
}
