//! Which byte ranges of which packs to fetch to assemble a list of blobs.
//! Neighbouring blobs of one pack are fetched in one range when the gap
//! between them is small, so a file stored contiguously is one request.

use serde::Serialize;

use crate::core::format::blob::BlobEntry;
use crate::core::format::id::Id;
use crate::core::format::index::RepoIndex;

/// Gaps up to this many bytes are read through rather than split.
pub const DEFAULT_MAX_GAP: u64 = 256 * 1024;
/// Coalesced ranges stop growing at this length (a single larger blob is
/// still read whole): it bounds what one read holds in memory.
pub const DEFAULT_MAX_RANGE: u64 = 8 * 1024 * 1024;
/// Coalesced ranges also stop growing once their blobs decode to this many
/// bytes (a single larger blob is still read whole). A read is one unit of
/// parallel work (fetch, decode, verify, write): well-compressed data (a
/// database's pages shrink 20x) would otherwise pack a gigabyte of work
/// into a handful of reads, and the last of them would run on one core
/// while the others wait.
pub const MAX_RAW_PER_READ: u64 = 16 * 1024 * 1024;

/// One ranged read of a pack and the blobs it yields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackRead {
    pub pack: Id,
    pub offset: u64,
    pub length: u64,
    /// Blobs inside the range (offsets relative to the pack).
    #[serde(skip)]
    pub blobs: Vec<BlobEntry>,
}

/// A blob the index does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("blob {0} is not in the repository index")]
pub struct MissingBlob(pub Id);

/// Plans reads for `ids` (duplicates fetched once). Reads come out grouped by
/// pack and sorted by offset; none spans more than `max_range` bytes unless
/// it holds a single blob.
pub fn plan_reads(
    ids: &[Id],
    index: &RepoIndex,
    max_gap: u64,
    max_range: u64,
) -> Result<Vec<PackRead>, MissingBlob> {
    // Sorted by pack number and offset (cheap keys), then resolved.
    let mut located = Vec::with_capacity(ids.len());
    let mut seen = crate::core::format::id::IdSet::default();
    for id in ids {
        if seen.insert(*id) {
            located.push((*id, index.get(id).ok_or(MissingBlob(*id))?));
        }
    }
    located.sort_unstable_by_key(|(_, l)| (l.pack, l.offset));
    let resolved = located.into_iter().map(|(id, l)| index.resolve(&id, l));
    Ok(merge_sorted(resolved, max_gap, max_range))
}

/// Plans reads for blobs whose packs and entries are already known (a lazy
/// reader keeps them per file), with the same coalescing as [`plan_reads`].
/// Duplicates are fetched once.
pub fn plan_located(
    blobs: impl IntoIterator<Item = (Id, BlobEntry)>,
    max_gap: u64,
    max_range: u64,
) -> Vec<PackRead> {
    let mut located: Vec<(Id, BlobEntry)> = blobs.into_iter().collect();
    located.sort_unstable_by_key(|(pack, e)| (*pack, e.offset, e.id));
    located.dedup_by_key(|(pack, e)| (*pack, e.id));
    merge_sorted(located, max_gap, max_range)
}

/// Joins blobs sorted by pack and offset into ranged reads: a blob joins the
/// previous read of its pack when the gap is at most `max_gap`, the read
/// stays within `max_range` and its blobs within [`MAX_RAW_PER_READ`]
/// decoded bytes.
fn merge_sorted(
    sorted: impl IntoIterator<Item = (Id, BlobEntry)>,
    max_gap: u64,
    max_range: u64,
) -> Vec<PackRead> {
    let mut reads: Vec<PackRead> = Vec::new();
    // Decoded bytes of the last read's blobs.
    let mut raw = 0u64;
    for (pack, e) in sorted {
        match reads.last_mut() {
            Some(r)
                if r.pack == pack
                    && e.offset <= r.offset + r.length + max_gap
                    && e.end() - r.offset <= max_range
                    && raw + e.raw_len as u64 <= MAX_RAW_PER_READ =>
            {
                r.length = r.length.max(e.end() - r.offset);
                raw += e.raw_len as u64;
                r.blobs.push(e);
            }
            _ => {
                raw = e.raw_len as u64;
                reads.push(PackRead {
                    pack,
                    offset: e.offset,
                    length: e.stored_len as u64,
                    blobs: vec![e],
                })
            }
        }
    }
    reads
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::blob::BlobKind;
    use crate::core::format::codec::Codec;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn entry(name: &str, offset: u64, len: u32) -> BlobEntry {
        BlobEntry {
            id: Id::of(name.as_bytes()),
            offset,
            stored_len: len,
            raw_len: len,
            kind: BlobKind::Data,
            codec: Codec::Raw,
        }
    }

    #[test]
    fn coalesces_neighbours_and_splits_far_blobs() {
        let mut idx = RepoIndex::new();
        idx.add_pack(
            Id::of(b"p1"),
            &[
                entry("a", 8, 100),
                entry("b", 108, 100),
                entry("c", 10_000, 50),
            ],
        );
        idx.add_pack(Id::of(b"p2"), &[entry("d", 8, 10)]);
        let ids: Vec<Id> = ["c", "a", "b", "d", "a"]
            .iter()
            .map(|n| Id::of(n.as_bytes()))
            .collect();
        let reads = plan_reads(&ids, &idx, 1000, u64::MAX).unwrap();
        let shape: Vec<(u64, u64, usize)> = reads
            .iter()
            .map(|r| (r.offset, r.length, r.blobs.len()))
            .collect();
        let p1_first = reads[0].pack == Id::of(b"p1");
        let p1: Vec<_> = shape
            .iter()
            .zip(&reads)
            .filter(|(_, r)| r.pack == Id::of(b"p1"))
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(p1, [(8, 200, 2), (10_000, 50, 1)]);
        assert_eq!(reads.len(), 3, "first is p1: {p1_first}");
        let wide = plan_reads(&ids, &idx, 20_000, u64::MAX).unwrap();
        assert_eq!(wide.len(), 2);
        assert!(plan_reads(&[Id::of(b"zzz")], &idx, 0, u64::MAX).is_err());
        // A length cap splits a contiguous run, but never a blob.
        let capped = plan_reads(&ids, &idx, 20_000, 150).unwrap();
        let p1: Vec<(u64, u64)> = capped
            .iter()
            .filter(|r| r.pack == Id::of(b"p1"))
            .map(|r| (r.offset, r.length))
            .collect();
        assert_eq!(p1, [(8, 100), (108, 100), (10_000, 50)]);
        let tiny = plan_reads(&ids, &idx, 20_000, 1).unwrap();
        assert!(tiny.iter().all(|r| r.blobs.len() == 1));
    }

    #[test]
    fn well_compressed_runs_split_by_decoded_bytes() {
        // 40 neighbouring blobs of 100 stored bytes that each decode to
        // 1 MiB: one read by stored length, but 40 MiB of work.
        let blobs: Vec<BlobEntry> = (0..40u64)
            .map(|i| BlobEntry {
                raw_len: 1 << 20,
                ..entry(&format!("z{i}"), 8 + i * 100, 100)
            })
            .collect();
        let reads = plan_located(
            blobs.iter().map(|e| (Id::of(b"p"), *e)),
            DEFAULT_MAX_GAP,
            DEFAULT_MAX_RANGE,
        );
        let per_read = (MAX_RAW_PER_READ >> 20) as usize;
        let counts: Vec<usize> = reads.iter().map(|r| r.blobs.len()).collect();
        assert_eq!(counts, [per_read, per_read, 40 - 2 * per_read]);
        // Contiguous: together they still cover the run exactly once.
        assert_eq!(reads.iter().map(|r| r.length).sum::<u64>(), 4_000);
        // One blob larger than the bound is still one read.
        let big = BlobEntry {
            raw_len: (MAX_RAW_PER_READ * 2) as u32,
            ..entry("big", 8, 100)
        };
        assert_eq!(plan_located([(Id::of(b"p"), big)], 0, u64::MAX).len(), 1);
    }
}
