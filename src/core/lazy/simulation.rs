//! Many files read at random and in sequence through one small cache, with
//! files held open: after every step the cache holds at most its bound plus
//! one pack, its bookkeeping matches the store, and every read returns the
//! file's bytes. Corrupt entries appear along the way and are refetched.

use std::collections::HashMap;

use bytes::Bytes;

use crate::core::format::blob::BlobEntry;
use crate::core::format::id::Id;
use crate::core::format::index::RepoIndex;
use crate::core::lazy::cache::CachePolicy;
use crate::core::lazy::layout::FileLayout;
use crate::core::lazy::reader::{LazyReader, ReadAhead, ReadAnswer};
use crate::core::lazy::serve::{CachedRead, ChunkStore, Hold};
use crate::core::seeded::{noise, Rng};
use crate::core::testing::{entry, file};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// The cache's bytes, verified on load like a disk cache's.
#[derive(Default)]
struct MemoryStore {
    chunks: HashMap<Id, Bytes>,
    loads_refused: u64,
}

impl ChunkStore for MemoryStore {
    fn load(&mut self, id: &Id) -> Option<Bytes> {
        let b = self.chunks.get(id)?;
        if Id::of(b) != *id {
            self.loads_refused += 1;
            return None;
        }
        Some(b.clone())
    }
    fn save(&mut self, id: &Id, bytes: &Bytes) {
        assert!(
            self.chunks.insert(*id, bytes.clone()).is_none(),
            "saved twice"
        );
    }
    fn remove(&mut self, id: &Id) {
        self.chunks.remove(id);
    }
}

/// Files over a shared pool of chunks (so files share chunks, as snapshots
/// of one repository do), stored in packs of a few chunks each.
struct Repository {
    files: Vec<(Vec<u8>, FileLayout)>,
    blobs: HashMap<Id, Bytes>,
    largest_pack: u64,
}

fn repository(rng: &mut Rng) -> Repository {
    let pool: Vec<Vec<u8>> = (0..120)
        .map(|i| noise(1 + rng.below(3000) as usize, i))
        .collect();
    let mut index = RepoIndex::new();
    let mut largest_pack = 0;
    for (n, group) in pool.chunks(4).enumerate() {
        let mut at = 0;
        let entries: Vec<BlobEntry> = group
            .iter()
            .map(|c| {
                let e = entry(c, at);
                at += c.len() as u64;
                e
            })
            .collect();
        largest_pack = largest_pack.max(at);
        index.add_pack(Id::of(&(n as u64).to_le_bytes()), &entries);
    }
    let files = (0..12)
        .map(|_| {
            let picks: Vec<&[u8]> = (0..1 + rng.below(30))
                .map(|_| pool[rng.below(pool.len() as u64) as usize].as_slice())
                .collect();
            let layout = FileLayout::of(&file("f", &picks), &index).unwrap();
            (picks.concat(), layout)
        })
        .collect();
    let blobs = pool
        .iter()
        .map(|c| (Id::of(c), Bytes::copy_from_slice(c)))
        .collect();
    Repository {
        files,
        blobs,
        largest_pack,
    }
}

struct Open {
    file: usize,
    reader: LazyReader,
    hold: Hold,
    next: u64,
}

fn check_bound(policy: &CachePolicy, store: &MemoryStore, limit: u64) {
    assert!(policy.total() <= limit, "{} > {limit}", policy.total());
    let stored: u64 = store.chunks.values().map(|b| b.len() as u64).sum();
    assert_eq!(stored, policy.total());
    assert_eq!(store.chunks.len(), policy.len());
}

#[test]
fn bounded_cache_serves_exact_bytes_with_files_held_open() {
    let mut rng = Rng::new(0x51a7);
    let repo = repository(&mut rng);
    let bound = 16 * 1024;
    let mut policy = CachePolicy::new(bound, repo.largest_pack);
    let limit = policy.limit();
    let mut store = MemoryStore::default();
    let mut open: Vec<Open> = Vec::new();
    let mut over_bound = 0;
    let mut served = 0u64;
    let mut corrupted = 0;
    for step in 0..20_000 {
        match rng.below(20) {
            // Open a file (up to eight at once).
            0 if open.len() < 8 => {
                let file = rng.below(repo.files.len() as u64) as usize;
                let read_ahead = ReadAhead {
                    initial: 2048,
                    max: 8192,
                };
                let reader = LazyReader::new(repo.files[file].1.clone(), read_ahead);
                open.push(Open {
                    file,
                    reader,
                    hold: Hold::default(),
                    next: 0,
                });
            }
            // Close one.
            1 if !open.is_empty() => {
                let mut f = open.swap_remove(rng.below(open.len() as u64) as usize);
                f.hold.release(&mut policy);
            }
            // Corrupt a cached chunk behind the cache's back.
            2 => {
                if let Some(id) = store.chunks.keys().next().copied() {
                    let b = store.chunks.get_mut(&id).unwrap();
                    let mut bad = b.to_vec();
                    bad[0] ^= 1;
                    *b = Bytes::from(bad);
                    corrupted += 1;
                }
            }
            _ if !open.is_empty() => {
                let pick = rng.below(open.len() as u64) as usize;
                let f = &mut open[pick];
                let data = &repo.files[f.file].0;
                let offset = if rng.below(2) == 0 {
                    f.next
                } else {
                    rng.below(data.len() as u64 + 1)
                };
                let len = 1 + rng.below(4000);
                let mut read = CachedRead::new(&f.reader.covering(offset, len));
                let mut rounds = 0;
                let bytes = loop {
                    let answer =
                        f.reader
                            .read(offset, len, &mut read.source(&mut policy, &mut store));
                    check_bound(&policy, &store, limit);
                    match answer {
                        ReadAnswer::Ready(b) => break b,
                        ReadAnswer::Need(reads) => {
                            rounds += 1;
                            assert!(rounds <= 1, "step {step}: a delivered read needs more");
                            for blob in reads.iter().flat_map(|r| &r.blobs) {
                                let b = repo.blobs[&blob.id].clone();
                                read.deliver(&mut policy, &mut store, blob.id, b);
                                check_bound(&policy, &store, limit);
                            }
                        }
                    }
                };
                let from = (offset as usize).min(data.len());
                let to = ((offset + len) as usize).min(data.len());
                assert_eq!(&bytes[..], &data[from..to], "step {step}");
                served += (to - from) as u64;
                f.next = to as u64;
                f.hold.replace(&mut policy, f.reader.covering(offset, len));
                check_bound(&policy, &store, limit);
                if policy.total() > bound {
                    over_bound += 1;
                }
            }
            _ => {}
        }
    }
    let stats = policy.stats();
    // The run exercised what it claims to: a cache under pressure, pins
    // holding it past its bound, corrupt entries caught.
    assert!(stats.evictions > 1000, "{stats:?}");
    assert!(stats.hits > 1000 && stats.misses > 1000, "{stats:?}");
    assert!(over_bound > 0 && stats.refused > 0, "{stats:?}");
    assert!(corrupted > 100 && stats.corrupt > 0, "{stats:?}");
    assert_eq!(stats.corrupt, store.loads_refused);
    assert!(stats.bytes_read_from_cache > 0 && stats.bytes_read_from_repository > 0);
    // The cache is credited with bytes the reads took from it, never more
    // than they were answered.
    assert!(
        stats.bytes_read_from_cache <= served,
        "{stats:?}, {served} served"
    );
}
