//! Garbage-collection planning: given every pack's blob table and the set of
//! blobs that remaining snapshots need, decide which packs to keep, which to
//! delete and which to repack.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::core::format::blob::BlobEntry;
use crate::core::format::id::Id;

/// A pack is repacked when less than this share of its bytes is live.
pub const REPACK_BELOW_LIVE_FRACTION: f64 = 0.5;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GcPlan {
    /// Packs kept as they are, with the live blobs to index from them.
    #[serde(skip)]
    pub keep: Vec<(Id, Vec<BlobEntry>)>,
    /// Packs whose live blobs are copied into new packs before deletion.
    #[serde(skip)]
    pub repack: Vec<(Id, Vec<BlobEntry>)>,
    /// Packs with no live blob.
    pub delete: Vec<Id>,
    pub live_blobs: u64,
    pub dead_blobs: u64,
    pub repack_bytes: u64,
    /// Stored bytes freed once deletes and repacks are done.
    pub reclaim_bytes: u64,
    /// The part of `reclaim_bytes` that repacking frees.
    #[serde(skip)]
    pub repack_reclaim_bytes: u64,
}

/// Plans GC. A live blob stored in several packs is kept in the first pack
/// that lists it; its other copies count as dead. A pack listed more than
/// once (two index files can name the same content-addressed pack) is
/// considered once, with the union of its entries.
pub fn plan_gc(packs: &[(Id, Vec<BlobEntry>)], live: &HashSet<Id>) -> GcPlan {
    let mut merged: Vec<(Id, Vec<BlobEntry>)> = Vec::with_capacity(packs.len());
    let mut position: HashMap<Id, usize> = HashMap::new();
    for (pack, entries) in packs {
        let at = *position.entry(*pack).or_insert_with(|| {
            merged.push((*pack, Vec::new()));
            merged.len() - 1
        });
        let have: HashSet<Id> = merged[at].1.iter().map(|e| e.id).collect();
        merged[at]
            .1
            .extend(entries.iter().filter(|e| !have.contains(&e.id)));
    }
    let mut plan = GcPlan::default();
    let mut claimed: HashSet<Id> = HashSet::new();
    for (pack, entries) in &merged {
        let mut keep = Vec::new();
        let (mut live_bytes, mut total_bytes) = (0u64, 0u64);
        for e in entries {
            total_bytes += e.stored_len as u64;
            if live.contains(&e.id) && claimed.insert(e.id) {
                live_bytes += e.stored_len as u64;
                keep.push(*e);
            } else {
                plan.dead_blobs += 1;
            }
        }
        plan.live_blobs += keep.len() as u64;
        if keep.is_empty() {
            plan.delete.push(*pack);
            plan.reclaim_bytes += total_bytes;
        } else if (live_bytes as f64) < REPACK_BELOW_LIVE_FRACTION * total_bytes as f64 {
            plan.repack_bytes += live_bytes;
            plan.reclaim_bytes += total_bytes - live_bytes;
            plan.repack_reclaim_bytes += total_bytes - live_bytes;
            plan.repack.push((*pack, keep));
        } else {
            plan.keep.push((*pack, keep));
        }
    }
    plan
}

impl GcPlan {
    /// The plan without its repacks (their packs are kept whole): what a
    /// delete does when the storage has no room for new packs.
    pub fn without_repacking(mut self) -> GcPlan {
        self.reclaim_bytes -= self.repack_reclaim_bytes;
        self.repack_reclaim_bytes = 0;
        self.repack_bytes = 0;
        let repack = std::mem::take(&mut self.repack);
        self.keep.extend(repack);
        self
    }

    pub fn is_noop(&self) -> bool {
        self.delete.is_empty() && self.repack.is_empty() && self.dead_blobs == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::blob::BlobKind;
    use crate::core::format::codec::Codec;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn e(name: &str, len: u32) -> BlobEntry {
        BlobEntry {
            id: Id::of(name.as_bytes()),
            offset: 8,
            stored_len: len,
            raw_len: len,
            kind: BlobKind::Data,
            codec: Codec::Raw,
        }
    }

    #[test]
    fn a_pack_listed_by_two_index_files_is_kept_once() {
        let p = Id::of(b"shared");
        let packs = vec![
            (p, vec![e("a", 10)]),
            (Id::of(b"other"), vec![e("b", 10)]),
            (p, vec![e("a", 10)]),
        ];
        let live: HashSet<Id> = [Id::of(b"a")].into_iter().collect();
        let plan = plan_gc(&packs, &live);
        assert_eq!(plan.keep.len(), 1);
        assert_eq!(plan.keep[0].0, p);
        assert_eq!(plan.delete, vec![Id::of(b"other")]);
    }

    #[test]
    fn deletes_dead_packs_repacks_mostly_dead_and_keeps_the_rest() {
        let packs = vec![
            (Id::of(b"dead"), vec![e("a", 10), e("b", 10)]),
            (Id::of(b"mostly-dead"), vec![e("c", 10), e("d", 90)]),
            (Id::of(b"healthy"), vec![e("f", 90), e("g", 10)]),
            (Id::of(b"dup"), vec![e("f", 90)]),
        ];
        let live: HashSet<Id> = ["c", "f"].iter().map(|n| Id::of(n.as_bytes())).collect();
        let plan = plan_gc(&packs, &live);
        assert_eq!(plan.delete, vec![Id::of(b"dead"), Id::of(b"dup")]);
        assert_eq!(plan.repack.len(), 1);
        assert_eq!(plan.repack[0].1, vec![e("c", 10)]);
        assert_eq!(plan.keep.len(), 1);
        assert_eq!(plan.keep[0].1, vec![e("f", 90)]);
        assert_eq!(plan.live_blobs, 2);
        assert_eq!(plan.dead_blobs, 5);
        assert_eq!(plan.reclaim_bytes, 20 + 90 + 90);
    }
}
