//! [`LazyReader`]: answers a byte range of one file from the chunks in hand,
//! or names the pack ranges to fetch first.
//!
//! Read-ahead: a read that starts where the previous answered read ended is
//! sequential; when it needs chunks, the fetch is widened to the chunks
//! that follow, up to a window that doubles with each such fetch (from
//! `ReadAhead::initial` to `ReadAhead::max`). A read anywhere else is random:
//! it fetches only what covers it and resets the window, so random readers
//! (an index's lookups) never pay for bytes they will not read.

use bytes::Bytes;

use crate::core::format::id::Id;
use crate::core::lazy::layout::{ChunkSpan, FileLayout};
use crate::core::plan::read::{plan_located, PackRead, DEFAULT_MAX_GAP, DEFAULT_MAX_RANGE};

/// Where a lazy reader finds chunks: the shell's cache (and what it has
/// just fetched). A chunk handed out must be the verified plain bytes of
/// its id; one the source cannot hand out (gone, corrupt) is fetched again.
pub trait ChunkSource {
    /// Whether the chunk is in hand, without reading it (read-ahead skips
    /// chunks already held).
    fn contains(&self, id: &Id) -> bool;
    /// The chunk's plain bytes, or `None` if it is not (or no longer) held.
    fn chunk(&mut self, id: &Id) -> Option<Bytes>;
    /// Bytes `start..start + len` of the chunk (a source that can check
    /// part of a chunk reads only that part).
    fn chunk_range(&mut self, id: &Id, start: u64, len: u64) -> Option<Bytes> {
        let b = self.chunk(id)?;
        let end = start.checked_add(len)?;
        (end <= b.len() as u64).then(|| b.slice(start as usize..end as usize))
    }
}

/// How far sequential reads fetch ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAhead {
    /// Bytes fetched past a read at the first sequential miss.
    pub initial: u64,
    /// Largest window: the read-ahead never grows beyond this.
    pub max: u64,
}

impl ReadAhead {
    pub const DEFAULT: ReadAhead = ReadAhead {
        initial: 1024 * 1024,
        max: 32 * 1024 * 1024,
    };
    /// No read-ahead at all.
    pub const NONE: ReadAhead = ReadAhead { initial: 0, max: 0 };
}

/// The answer to one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadAnswer {
    /// The bytes of the range (shorter than asked at the end of the file).
    Ready(Bytes),
    /// Fetch these pack ranges (coalesced as restore coalesces them), hand
    /// their blobs to the source, and ask again.
    Need(Vec<PackRead>),
}

/// One open file's lazy reads.
#[derive(Debug, Clone)]
pub struct LazyReader {
    layout: FileLayout,
    read_ahead: ReadAhead,
    max_gap: u64,
    max_range: u64,
    /// Where the last answered read ended: a read starting here is sequential.
    next_offset: Option<u64>,
    /// The current read-ahead window (0 after a random read).
    window: u64,
}

impl LazyReader {
    pub fn new(layout: FileLayout, read_ahead: ReadAhead) -> LazyReader {
        LazyReader {
            layout,
            read_ahead,
            max_gap: DEFAULT_MAX_GAP,
            max_range: DEFAULT_MAX_RANGE,
            next_offset: None,
            window: 0,
        }
    }

    /// The same reader coalescing with other limits (see
    /// [`crate::core::plan::read`]).
    pub fn with_coalescing(mut self, max_gap: u64, max_range: u64) -> LazyReader {
        self.max_gap = max_gap;
        self.max_range = max_range;
        self
    }

    pub fn layout(&self) -> &FileLayout {
        &self.layout
    }

    pub fn size(&self) -> u64 {
        self.layout.size()
    }

    /// The chunks that hold bytes `offset..offset + len` (a shell pins them
    /// in its cache while it serves the read).
    pub fn covering(&self, offset: u64, len: u64) -> Vec<Id> {
        let range = self.layout.covering(offset, len);
        self.layout.spans()[range]
            .iter()
            .map(ChunkSpan::id)
            .collect()
    }

    /// Whether `source` holds every chunk bytes `offset..offset + len`
    /// need, without reading any or changing the reader: a shell may then
    /// answer the read where it stands instead of on a task of its own.
    pub fn in_hand(&self, offset: u64, len: u64, source: &impl ChunkSource) -> bool {
        let range = self.layout.covering(offset, len);
        self.layout.spans()[range]
            .iter()
            .all(|s| source.contains(&s.id()))
    }

    /// Bytes `offset..offset + len` of the file (clamped to its size) from
    /// `source`, or the pack ranges to fetch first.
    pub fn read(&mut self, offset: u64, len: u64, source: &mut impl ChunkSource) -> ReadAnswer {
        let end = offset.saturating_add(len).min(self.layout.size());
        if offset >= end {
            return ReadAnswer::Ready(Bytes::new());
        }
        let range = self.layout.covering(offset, len);
        let spans = &self.layout.spans()[range.clone()];
        let mut pieces = Vec::with_capacity(spans.len());
        let mut missing = Vec::new();
        for span in spans {
            // Only the part of each chunk the read covers.
            let from = offset.max(span.offset) - span.offset;
            let to = end.min(span.end()) - span.offset;
            match source.chunk_range(&span.id(), from, to - from) {
                Some(b) if b.len() as u64 == to - from => pieces.push(b),
                _ => missing.push(*span),
            }
        }
        let sequential = self.next_offset == Some(offset);
        if !missing.is_empty() {
            self.window = if sequential {
                (self.window * 2)
                    .max(self.read_ahead.initial)
                    .min(self.read_ahead.max)
            } else {
                0
            };
            let ahead = self.ahead(range.end, end, &*source);
            let blobs = missing.iter().chain(&ahead).map(|s| (s.pack, s.entry));
            return ReadAnswer::Need(plan_located(blobs, self.max_gap, self.max_range));
        }
        if !sequential {
            self.window = 0;
        }
        self.next_offset = Some(end);
        ReadAnswer::Ready(assemble(pieces, end - offset))
    }

    /// After a sequential read answered from what was in hand, the pack
    /// ranges to fetch next, so the following fetch starts before the
    /// reader reaches the end of the last one: `None` unless the reader is
    /// sequential and less than half its window past the last read is in
    /// hand. The window doubles (up to `ReadAhead::max`) as at a miss, and
    /// the chunks not in hand up to its end are named. A shell calls this
    /// when no fetch of its own is on the way (a chunk being fetched is not
    /// in hand yet and would be named again).
    pub fn refill(&mut self, source: &impl ChunkSource) -> Option<Vec<PackRead>> {
        let end = self.next_offset?;
        if self.window == 0 || end >= self.layout.size() {
            return None;
        }
        let from = self.layout.covering(end, 1).start;
        let spans = &self.layout.spans()[from..];
        let first_missing = spans
            .iter()
            .take_while(|s| s.offset < end.saturating_add(self.window))
            .find(|s| !source.contains(&s.id()))?;
        if first_missing.offset.saturating_sub(end) >= self.window / 2 {
            return None;
        }
        self.window = (self.window * 2).min(self.read_ahead.max);
        let ahead = self.ahead(from, end, source);
        Some(plan_located(
            ahead.iter().map(|s| (s.pack, s.entry)),
            self.max_gap,
            self.max_range,
        ))
    }

    /// The chunks after span `from` that start before `end + window` and are
    /// not in hand.
    fn ahead(&self, from: usize, end: u64, source: &impl ChunkSource) -> Vec<ChunkSpan> {
        let limit = end.saturating_add(self.window);
        self.layout.spans()[from..]
            .iter()
            .take_while(|s| self.window > 0 && s.offset < limit)
            .filter(|s| !source.contains(&s.id()))
            .copied()
            .collect()
    }
}

/// The read's bytes from the covered parts of its chunks, in order.
fn assemble(mut pieces: Vec<Bytes>, len: u64) -> Bytes {
    if pieces.len() == 1 {
        // Within one chunk: a slice of it, no copy.
        return pieces.pop().expect("one piece");
    }
    let mut out = Vec::with_capacity(len as usize);
    for piece in &pieces {
        out.extend_from_slice(piece);
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::core::format::blob::BlobEntry;
    use crate::core::format::index::RepoIndex;
    use crate::core::seeded::{noise, Rng};
    use crate::core::testing::{entry, file};
    #[cfg(not(target_arch = "wasm32"))]
    use proptest::prelude::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Chunks in hand, by id.
    #[derive(Default)]
    struct Held(HashMap<Id, Bytes>);

    impl ChunkSource for Held {
        fn contains(&self, id: &Id) -> bool {
            self.0.contains_key(id)
        }
        fn chunk(&mut self, id: &Id) -> Option<Bytes> {
            self.0.get(id).cloned()
        }
    }

    /// A file of `data` cut at `cuts`, its chunks stored in packs of
    /// `per_pack` chunks each; returns the reader and every chunk's bytes.
    fn stored(data: &[u8], cuts: &[usize], per_pack: usize) -> (LazyReader, HashMap<Id, Bytes>) {
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        bounds.extend([0, data.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let chunks: Vec<&[u8]> = bounds.windows(2).map(|w| &data[w[0]..w[1]]).collect();
        let mut index = RepoIndex::new();
        let mut bytes = HashMap::new();
        for (n, group) in chunks.chunks(per_pack.max(1)).enumerate() {
            let mut at = 0;
            let entries: Vec<BlobEntry> = group
                .iter()
                .map(|c| {
                    let e = entry(c, at);
                    at += c.len() as u64 + 7;
                    e
                })
                .collect();
            index.add_pack(Id::of(&n.to_le_bytes()), &entries);
            for c in group {
                bytes.insert(Id::of(c), Bytes::copy_from_slice(c));
            }
        }
        let layout = FileLayout::of(&file("f", &chunks), &index).unwrap();
        (LazyReader::new(layout, ReadAhead::DEFAULT), bytes)
    }

    /// Reads through `held`, fetching from `all` what the reader asks for;
    /// returns the bytes and how many fetch rounds it took.
    fn read_fetching(
        r: &mut LazyReader,
        held: &mut Held,
        all: &HashMap<Id, Bytes>,
        offset: u64,
        len: u64,
    ) -> (Bytes, usize) {
        for round in 0..3 {
            match r.read(offset, len, held) {
                ReadAnswer::Ready(b) => return (b, round),
                ReadAnswer::Need(reads) => {
                    assert!(!reads.is_empty());
                    for read in reads {
                        for b in read.blobs {
                            assert!(
                                b.offset >= read.offset && b.end() <= read.offset + read.length
                            );
                            held.0.insert(b.id, all[&b.id].clone());
                        }
                    }
                }
            }
        }
        panic!("a read still needs chunks after fetching what it asked for");
    }

    #[test]
    fn a_read_needs_only_its_chunks_coalesced_per_pack() {
        let data = noise(100, 1);
        let (mut r, all) = stored(&data, &[10, 20, 30, 40, 50, 60, 70, 80, 90], 5);
        let mut held = Held::default();
        let ReadAnswer::Need(reads) = r.read(15, 20, &mut held) else {
            panic!("nothing is held yet");
        };
        // Chunks 10..20, 20..30, 30..40 sit in the first pack, next to each
        // other: one range.
        assert_eq!(reads.len(), 1);
        assert_eq!(reads[0].blobs.len(), 3);
        for b in &reads[0].blobs {
            held.0.insert(b.id, all[&b.id].clone());
        }
        assert_eq!(
            r.read(15, 20, &mut held),
            ReadAnswer::Ready(Bytes::copy_from_slice(&data[15..35]))
        );
        assert_eq!(r.read(95, 20, &mut held).clone(), r.read(95, 20, &mut held));
        assert_eq!(r.read(100, 5, &mut held), ReadAnswer::Ready(Bytes::new()));
    }

    #[test]
    fn in_hand_answers_for_every_chunk_a_read_covers_and_changes_nothing() {
        let data = noise(100, 3);
        let (mut r, all) = stored(&data, &[10, 20, 30, 40, 50, 60, 70, 80, 90], 5);
        let mut held = Held::default();
        let id = |k: usize| Id::of(&data[k * 10..(k + 1) * 10]);
        held.0.insert(id(1), all[&id(1)].clone());
        held.0.insert(id(3), all[&id(3)].clone());
        assert!(r.in_hand(12, 5, &held));
        assert!(r.in_hand(100, 5, &held), "nothing to read past the end");
        // Bytes 15..35 need chunk 2, which is missing.
        assert!(!r.in_hand(15, 20, &held));
        held.0.insert(id(2), all[&id(2)].clone());
        assert!(r.in_hand(15, 20, &held));
        // Asking moves no read-ahead state: the reader still takes a read
        // at 35 as random, its first, and fetches that chunk alone.
        let before = r.clone();
        assert!(!r.in_hand(35, 10, &held));
        assert_eq!(
            (r.next_offset, r.window),
            (before.next_offset, before.window)
        );
        let ReadAnswer::Need(reads) = r.read(35, 10, &mut held) else {
            panic!("chunks 3 and 4 are not both held");
        };
        let ids: Vec<Id> = reads.iter().flat_map(|r| &r.blobs).map(|b| b.id).collect();
        assert_eq!(ids, vec![id(4)]);
    }

    #[test]
    fn sequential_reads_fetch_ahead_and_random_reads_do_not() {
        let data = noise(64 * 1024, 2);
        let cuts: Vec<usize> = (1..64).map(|i| i * 1024).collect();
        let (r, all) = stored(&data, &cuts, 8);
        let mut r = r;
        r.read_ahead = ReadAhead {
            initial: 4096,
            max: 16 * 1024,
        };
        let mut held = Held::default();
        // A first read is random: exactly its chunk.
        let (b, rounds) = read_fetching(&mut r, &mut held, &all, 0, 1024);
        assert_eq!((&b[..], rounds), (&data[..1024], 1));
        assert_eq!(held.0.len(), 1);
        // The next read continues it: 4 KiB more come along.
        read_fetching(&mut r, &mut held, &all, 1024, 1024);
        assert_eq!(held.0.len(), 2 + 4);
        // Served from what read-ahead brought, then a wider window.
        for at in (2..6).map(|k| k * 1024) {
            let (_, rounds) = read_fetching(&mut r, &mut held, &all, at, 1024);
            assert_eq!(rounds, 0, "read-ahead fetched offset {at}");
        }
        read_fetching(&mut r, &mut held, &all, 6 * 1024, 1024);
        assert_eq!(held.0.len(), 7 + 8);
        // A jump elsewhere fetches its chunk only.
        let before = held.0.len();
        read_fetching(&mut r, &mut held, &all, 40 * 1024 + 5, 10);
        assert_eq!(held.0.len(), before + 1);
        // The window never passes its bound.
        for k in 41..64 {
            read_fetching(&mut r, &mut held, &all, k * 1024, 1024);
            let ahead = held.0.keys().filter(|id| {
                r.layout()
                    .spans()
                    .iter()
                    .any(|s| s.id() == **id && s.offset > (k + 1) * 1024 + 16 * 1024)
            });
            assert_eq!(ahead.count(), 0);
        }
    }

    #[test]
    fn a_sequential_reader_refills_before_its_window_runs_out() {
        let data = noise(64 * 1024, 4);
        let cuts: Vec<usize> = (1..64).map(|i| i * 1024).collect();
        let (mut r, all) = stored(&data, &cuts, 8);
        r.read_ahead = ReadAhead {
            initial: 4096,
            max: 16 * 1024,
        };
        let mut held = Held::default();
        // Random so far: nothing to refill.
        read_fetching(&mut r, &mut held, &all, 0, 1024);
        assert_eq!(r.refill(&held), None);
        // A sequential miss fetches 4 KiB ahead (chunks 2..6 in hand).
        read_fetching(&mut r, &mut held, &all, 1024, 1024);
        assert_eq!(r.refill(&held), None, "the whole window is in hand");
        read_fetching(&mut r, &mut held, &all, 2048, 1024);
        read_fetching(&mut r, &mut held, &all, 3072, 1024);
        assert_eq!(r.refill(&held), None, "half the window is in hand");
        read_fetching(&mut r, &mut held, &all, 4096, 1024);
        // 1 KiB of the 4 KiB window past offset 5120 in hand: refill, with
        // the window doubled to 8 KiB, naming only chunks not in hand.
        let reads = r.refill(&held).expect("half the window is left");
        let mut ids: Vec<Id> = reads
            .iter()
            .flat_map(|r| r.blobs.iter().map(|b| b.id))
            .collect();
        ids.sort();
        let mut want: Vec<Id> = (6..13)
            .map(|k| Id::of(&data[k * 1024..(k + 1) * 1024]))
            .collect();
        want.sort();
        assert_eq!(ids, want);
        for id in ids {
            held.0.insert(id, all[&id].clone());
        }
        assert_eq!(r.refill(&held), None);
        // The reads that follow are answered from what was refilled.
        for at in (5..13).map(|k| k * 1024) {
            let (b, rounds) = read_fetching(&mut r, &mut held, &all, at, 1024);
            assert_eq!(
                (&b[..], rounds),
                (&data[at as usize..at as usize + 1024], 0)
            );
        }
        // A random read stops refills.
        read_fetching(&mut r, &mut held, &all, 40 * 1024, 10);
        assert_eq!(r.refill(&held), None);
    }

    #[test]
    fn a_chunk_the_source_cannot_hand_out_is_fetched_again() {
        let data = noise(30, 3);
        let (mut r, all) = stored(&data, &[10, 20], 3);
        let mut held = Held(all.clone());
        assert!(matches!(r.read(0, 30, &mut held), ReadAnswer::Ready(_)));
        let middle = Id::of(&data[10..20]);
        held.0.insert(middle, Bytes::from_static(b"short"));
        let ReadAnswer::Need(reads) = r.read(0, 30, &mut held) else {
            panic!("a wrong-sized chunk was served");
        };
        let ids: Vec<Id> = reads
            .iter()
            .flat_map(|r| r.blobs.iter().map(|b| b.id))
            .collect();
        assert_eq!(ids, [middle]);
    }

    #[test]
    fn seeded_random_reads_return_the_files_bytes() {
        let mut rng = Rng::new(7);
        for seed in 0..20 {
            let data = noise(rng.below(50_000) as usize, seed);
            let cuts: Vec<usize> = (0..rng.below(40))
                .map(|_| rng.below(60_000) as usize)
                .collect();
            let (mut r, all) = stored(&data, &cuts, 1 + rng.below(6) as usize);
            let mut held = Held::default();
            for _ in 0..50 {
                let offset = rng.below(data.len() as u64 + 10);
                let len = rng.below(9000);
                let (b, _) = read_fetching(&mut r, &mut held, &all, offset, len);
                let from = (offset as usize).min(data.len());
                let to = (offset + len).min(data.len() as u64) as usize;
                assert_eq!(&b[..], &data[from..to.max(from)]);
            }
        }
    }

    // proptest is a native dev-dependency: these run natively only.
    #[cfg(not(target_arch = "wasm32"))]
    proptest! {
        #[test]
        fn random_reads_return_exactly_the_files_bytes(
            len in 0usize..20_000,
            seed: u64,
            cuts in proptest::collection::vec(0usize..20_000, 0..30),
            per_pack in 1usize..6,
            reads in proptest::collection::vec((0u64..21_000, 0u64..5_000, any::<bool>()), 1..40),
        ) {
            let data = noise(len, seed);
            let (mut r, all) = stored(&data, &cuts, per_pack);
            let mut held = Held::default();
            let mut next = 0u64;
            for (offset, n, sequential) in reads {
                let offset = if sequential { next } else { offset };
                let (b, _) = read_fetching(&mut r, &mut held, &all, offset, n);
                let from = (offset as usize).min(data.len());
                let to = ((offset + n) as usize).min(data.len()).max(from);
                prop_assert_eq!(&b[..], &data[from..to]);
                next = to as u64;
            }
        }
    }
}
