//! [`CachePolicy`]: which chunks a bounded cache keeps. The shell holds the
//! bytes (on disk, in memory); the policy decides what to admit and what to
//! evict, and counts.
//!
//! Eviction is least recently used. The workloads are a mounted index's
//! lookups (a few hot files read again and again, which LRU keeps) and
//! scans (read once, then forgotten, which LRU lets go in order). LFU
//! would hold yesterday's hot chunks over today's until its counts aged,
//! and needs that aging tuned; LRU needs nothing.
//!
//! The bound: entries being served (pinned) are never evicted, so an
//! admission that only pinned entries stand in the way of is refused once
//! it would take the total past `bound + slack` (the shell then serves the
//! chunk without caching it). So the total never exceeds `bound + slack`;
//! without pins it never exceeds `bound`. Shells set `slack` to one pack.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::core::format::id::{Id, IdMap};

/// What the cache has done, in Elasticsearch's searchable-snapshot terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub bytes_read_from_cache: u64,
    pub bytes_read_from_repository: u64,
    pub evictions: u64,
    pub evicted_bytes: u64,
    /// Admissions refused because pinned entries filled the bound.
    pub refused: u64,
    /// Entries found corrupt when read, dropped and fetched again.
    pub corrupt: u64,
}

/// The answer to an admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Keep the chunk; remove these entries first.
    Admitted { evict: Vec<Id> },
    /// Do not keep the chunk (serve it from memory): pinned entries leave
    /// no room within the bound.
    Refused,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    size: u64,
    /// Position in the recency order (higher is more recent).
    tick: u64,
    pins: u32,
}

/// The bounded cache's bookkeeping.
#[derive(Debug, Clone)]
pub struct CachePolicy {
    bound: u64,
    slack: u64,
    total: u64,
    pinned: u64,
    tick: u64,
    entries: IdMap<Entry>,
    /// Recency order: tick -> id, oldest first.
    order: BTreeMap<u64, Id>,
    stats: CacheStats,
}

impl CachePolicy {
    /// A policy keeping at most `bound` bytes, or `bound + slack` while
    /// pinned entries stand in the way.
    pub fn new(bound: u64, slack: u64) -> CachePolicy {
        CachePolicy {
            bound,
            slack,
            total: 0,
            pinned: 0,
            tick: 0,
            entries: IdMap::default(),
            order: BTreeMap::new(),
            stats: CacheStats::default(),
        }
    }

    pub fn bound(&self) -> u64 {
        self.bound
    }

    /// The most the cache may ever hold.
    pub fn limit(&self) -> u64 {
        self.bound.saturating_add(self.slack)
    }

    /// Bytes held.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes held by pinned entries.
    pub fn pinned(&self) -> u64 {
        self.pinned
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Whether `id` is held (no counting, no recency change).
    pub fn contains(&self, id: &Id) -> bool {
        self.entries.contains_key(id)
    }

    /// The size `id` was admitted with.
    pub fn size_of(&self, id: &Id) -> Option<u64> {
        self.entries.get(id).map(|e| e.size)
    }

    /// A read of up to `bytes` of chunk `id` looks it up: a hit makes it
    /// the most recent and counts the bytes read (at most the chunk's) as
    /// read from the cache; a miss is counted.
    pub fn lookup(&mut self, id: &Id, bytes: u64) -> bool {
        match self.entries.get(id).map(|e| e.size) {
            Some(size) => {
                self.touch(id);
                self.stats.hits += 1;
                self.stats.bytes_read_from_cache += size.min(bytes);
                true
            }
            None => {
                self.stats.misses += 1;
                false
            }
        }
    }

    /// Counts bytes fetched from the repository.
    pub fn fetched(&mut self, bytes: u64) {
        self.stats.bytes_read_from_repository += bytes;
    }

    /// Makes `id` the most recently used.
    pub fn touch(&mut self, id: &Id) {
        self.tick += 1;
        if let Some(e) = self.entries.get_mut(id) {
            self.order.remove(&e.tick);
            e.tick = self.tick;
            self.order.insert(self.tick, *id);
        }
    }

    /// Asks to keep `id` of `size` bytes. On `Admitted` the shell removes
    /// the entries named (they are already forgotten here) and stores the
    /// chunk. A chunk already held is only touched.
    pub fn admit(&mut self, id: Id, size: u64) -> Admission {
        if self.entries.contains_key(&id) {
            self.touch(&id);
            return Admission::Admitted { evict: Vec::new() };
        }
        if self.pinned.saturating_add(size) > self.limit() {
            self.stats.refused += 1;
            return Admission::Refused;
        }
        let mut evict = Vec::new();
        let mut cursor = 0;
        while self.total + size > self.bound {
            let Some((tick, victim)) = self.oldest_unpinned_from(cursor) else {
                break;
            };
            cursor = tick + 1;
            self.stats.evicted_bytes += self.forget(&victim).unwrap_or(0);
            self.stats.evictions += 1;
            evict.push(victim);
        }
        self.tick += 1;
        self.entries.insert(
            id,
            Entry {
                size,
                tick: self.tick,
                pins: 0,
            },
        );
        self.order.insert(self.tick, id);
        self.total += size;
        debug_assert!(self.total <= self.limit());
        Admission::Admitted { evict }
    }

    fn oldest_unpinned_from(&self, from: u64) -> Option<(u64, Id)> {
        self.order
            .range(from..)
            .find(|(_, id)| self.entries[*id].pins == 0)
            .map(|(t, id)| (*t, *id))
    }

    /// Keeps `id` from eviction until as many `unpin`s; false if not held.
    pub fn pin(&mut self, id: &Id) -> bool {
        let Some(e) = self.entries.get_mut(id) else {
            return false;
        };
        if e.pins == 0 {
            self.pinned += e.size;
        }
        e.pins += 1;
        true
    }

    pub fn unpin(&mut self, id: &Id) {
        if let Some(e) = self.entries.get_mut(id) {
            if e.pins == 1 {
                self.pinned -= e.size;
            }
            e.pins = e.pins.saturating_sub(1);
        }
    }

    /// The shell found `id` corrupt (or gone): it is forgotten, pinned or
    /// not, and counted.
    pub fn corrupt(&mut self, id: &Id) {
        if self.forget(id).is_some() {
            self.stats.corrupt += 1;
        }
    }

    /// Forgets every unpinned entry (`cache/clear`); returns them for the
    /// shell to remove.
    pub fn clear(&mut self) -> Vec<Id> {
        let unpinned: Vec<Id> = self
            .entries
            .iter()
            .filter(|(_, e)| e.pins == 0)
            .map(|(id, _)| *id)
            .collect();
        for id in &unpinned {
            self.forget(id);
        }
        unpinned
    }

    fn forget(&mut self, id: &Id) -> Option<u64> {
        let e = self.entries.remove(id)?;
        self.order.remove(&e.tick);
        self.total -= e.size;
        if e.pins > 0 {
            self.pinned -= e.size;
        }
        Some(e.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn id(n: u8) -> Id {
        Id::of(&[n])
    }

    #[test]
    fn evicts_the_least_recently_used_first() {
        let mut p = CachePolicy::new(30, 10);
        for n in 1..=3 {
            assert_eq!(p.admit(id(n), 10), Admission::Admitted { evict: vec![] });
        }
        assert!(p.lookup(&id(1), 4));
        assert_eq!(
            p.admit(id(4), 10),
            Admission::Admitted { evict: vec![id(2)] }
        );
        assert_eq!(
            p.admit(id(5), 20),
            Admission::Admitted {
                evict: vec![id(3), id(1)]
            }
        );
        assert!(!p.lookup(&id(2), u64::MAX));
        let s = p.stats();
        assert_eq!(
            (s.hits, s.misses, s.evictions, s.evicted_bytes),
            (1, 1, 3, 30)
        );
        // The hit read 4 bytes of its 10-byte chunk.
        assert_eq!(s.bytes_read_from_cache, 4);
        assert_eq!(p.total(), 30);
    }

    #[test]
    fn pinned_entries_stay_and_the_bound_holds_within_its_slack() {
        let mut p = CachePolicy::new(30, 10);
        for n in 1..=3 {
            p.admit(id(n), 10);
            assert!(p.pin(&id(n)));
        }
        // Nothing can be evicted: one more entry fits in the slack...
        assert_eq!(p.admit(id(4), 10), Admission::Admitted { evict: vec![] });
        assert_eq!(p.total(), 40);
        // ...and it is the one evicted next, pinned ones are skipped.
        assert_eq!(
            p.admit(id(5), 5),
            Admission::Admitted { evict: vec![id(4)] }
        );
        p.pin(&id(5));
        assert_eq!(p.admit(id(6), 10), Admission::Refused);
        assert_eq!(p.stats().refused, 1);
        p.unpin(&id(1));
        p.unpin(&id(5));
        assert_eq!(
            p.admit(id(6), 10),
            Admission::Admitted {
                evict: vec![id(1), id(5)]
            }
        );
        assert!(p.total() <= p.limit());
        assert!(!p.pin(&id(1)));
    }

    #[test]
    fn corrupt_and_cleared_entries_are_forgotten() {
        let mut p = CachePolicy::new(100, 0);
        p.admit(id(1), 10);
        p.admit(id(2), 20);
        p.pin(&id(2));
        p.corrupt(&id(1));
        p.corrupt(&id(9));
        assert_eq!((p.total(), p.stats().corrupt), (20, 1));
        p.admit(id(3), 5);
        assert_eq!(p.clear(), vec![id(3)]);
        assert_eq!((p.total(), p.pinned(), p.len()), (20, 20, 1));
        p.corrupt(&id(2));
        assert_eq!((p.total(), p.pinned()), (0, 0));
    }
}
