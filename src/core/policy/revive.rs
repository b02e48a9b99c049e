//! What a snapshot must index again when a concurrent delete rewrote the
//! index it deduplicated against.
//!
//! A snapshot reuses blobs the index it started from (`base`) located. A
//! delete that commits meanwhile may drop some of them from the newest
//! index; their packs are still stored (deletes leave packs to cleanup while
//! a snapshot runs), so the snapshot lists them again in its own index file
//! and commits on the new root. A blob that `base` never located cannot be
//! revived: the snapshot fails cleanly instead.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::core::format::blob::BlobEntry;
use crate::core::format::codec::Codec;
use crate::core::format::id::Id;
use crate::core::format::index::{IndexFile, RepoIndex};

/// Per pack, the entries to index again.
pub type Revive = BTreeMap<Id, Vec<BlobEntry>>;

/// `referenced` and the base of every patch among them, as the
/// snapshot's own index file (`own`) or the index it started from
/// (`base`) names it: a reused patch needs its base as much as itself.
pub fn with_bases(referenced: &HashSet<Id>, own: &IndexFile, base: &RepoIndex) -> HashSet<Id> {
    let own_bases: HashMap<Id, Id> = own.bases.iter().copied().collect();
    let bases: Vec<Id> = referenced
        .iter()
        .filter_map(|id| own_bases.get(id).copied().or_else(|| base.base_of(id)))
        .collect();
    referenced.iter().copied().chain(bases).collect()
}

/// The bases section of `file` after revived entries joined it: each
/// patch's base as `named` (the file's own section) or `base` names it.
pub fn bases_for(file: &IndexFile, base: &RepoIndex) -> Vec<(Id, Id)> {
    let named: HashMap<Id, Id> = file.bases.iter().copied().collect();
    let mut out: Vec<(Id, Id)> = file
        .packs
        .iter()
        .flat_map(|(_, es)| es.iter())
        .filter(|e| e.codec == Codec::Patch)
        .filter_map(|e| {
            Some((
                e.id,
                named.get(&e.id).copied().or_else(|| base.base_of(&e.id))?,
            ))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The blobs of `referenced` that `now` (the newest index with the
/// snapshot's own index file merged) no longer locates, grouped by the pack
/// `base` found them in. `Err(id)` names a referenced blob neither index
/// locates.
pub fn revive_set(
    referenced: &HashSet<Id>,
    now: &RepoIndex,
    base: &RepoIndex,
) -> Result<Revive, Id> {
    let mut revive = Revive::new();
    let mut missing: Vec<&Id> = referenced.iter().filter(|id| !now.contains(id)).collect();
    // Sorted so the blob an error names does not depend on hash order.
    missing.sort();
    for id in missing {
        let (pack, entry) = base.entry(id).ok_or(*id)?;
        revive.entry(pack).or_default().push(entry);
    }
    for entries in revive.values_mut() {
        entries.sort_by_key(|e| e.offset);
    }
    Ok(revive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::index::IndexFile;
    use crate::core::testing;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn entry(n: u8, offset: u64) -> BlobEntry {
        testing::entry(&[n], offset)
    }

    fn index(packs: &[(u8, Vec<BlobEntry>)]) -> RepoIndex {
        let mut file = IndexFile::default();
        for (p, entries) in packs {
            file.packs.push((Id::of(&[100 + p]), entries.clone()));
        }
        let mut index = RepoIndex::default();
        index.merge(&file);
        index
    }

    #[test]
    fn blobs_the_new_index_dropped_are_revived_from_their_base_pack() {
        let base = index(&[(1, vec![entry(1, 0), entry(2, 10)]), (2, vec![entry(3, 0)])]);
        let now = index(&[(2, vec![entry(3, 0)])]);
        let referenced: HashSet<Id> = [1u8, 2, 3].iter().map(|n| Id::of(&[*n])).collect();
        let revive = revive_set(&referenced, &now, &base).unwrap();
        assert_eq!(revive.len(), 1);
        let entries = &revive[&Id::of(&[101])];
        assert_eq!(entries, &vec![entry(1, 0), entry(2, 10)]);
    }

    #[test]
    fn a_reused_patch_keeps_its_base_and_names_it_when_revived() {
        let patch = |n: u8, offset: u64| BlobEntry {
            codec: Codec::Patch,
            ..entry(n, offset)
        };
        let id = |n: u8| Id::of(&[n]);
        // The parent's patch 2 over 1, and 3; this run's own patch 4 over 3.
        let parent_pack = vec![entry(1, 0), patch(2, 10), entry(3, 20)];
        let parent = IndexFile {
            packs: vec![(Id::of(&[101]), parent_pack.clone())],
            bases: vec![(id(2), id(1))],
        };
        let mut base = RepoIndex::default();
        base.merge(&parent);
        let own = IndexFile {
            packs: vec![(Id::of(&[102]), vec![patch(4, 0)])],
            bases: vec![(id(4), id(3))],
        };
        let referenced: HashSet<Id> = [id(2), id(4)].into_iter().collect();
        let needed = with_bases(&referenced, &own, &base);
        let want: HashSet<Id> = [1u8, 2, 3, 4].iter().map(|n| id(*n)).collect();
        assert_eq!(needed, want);
        // A delete dropped the parent's pack from the index: the patch
        // and both bases come back, and the revived patch's base is
        // named again.
        let mut now = RepoIndex::default();
        now.merge(&own);
        let revive = revive_set(&needed, &now, &base).unwrap();
        assert_eq!(revive[&Id::of(&[101])], parent_pack);
        let mut file = own.clone();
        file.packs.extend(revive);
        let mut want = vec![(id(2), id(1)), (id(4), id(3))];
        want.sort();
        assert_eq!(bases_for(&file, &base), want);
    }

    #[test]
    fn nothing_to_revive_when_every_blob_is_still_indexed() {
        let base = index(&[(1, vec![entry(1, 0)])]);
        let referenced: HashSet<Id> = [Id::of(&[1])].into_iter().collect();
        assert!(revive_set(&referenced, &base, &base).unwrap().is_empty());
    }

    #[test]
    fn a_blob_no_index_locates_is_named() {
        let base = index(&[(1, vec![entry(1, 0)])]);
        let now = index(&[]);
        let referenced: HashSet<Id> = [1u8, 9].iter().map(|n| Id::of(&[*n])).collect();
        assert_eq!(revive_set(&referenced, &now, &base), Err(Id::of(&[9])));
    }
}
