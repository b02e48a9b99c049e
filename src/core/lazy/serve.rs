//! Serving lazy reads through a bounded cache: the steps between a
//! [`LazyReader`](crate::core::lazy::reader::LazyReader), a
//! [`CachePolicy`] and the shell's chunk store, so every shell (disk
//! cache, memory cache) admits, evicts, pins and counts the same way.
//!
//! ```text
//!  let mut read = CachedRead::new(&reader.covering(offset, len));
//!  loop {
//!      match reader.read(offset, len, &mut read.source(&mut policy, &mut store)) {
//!          Ready(bytes) => break bytes,
//!          Need(reads) => for each blob fetched and verified:
//!                             read.deliver(&mut policy, &mut store, id, bytes),
//!      }
//!  }
//!  hold.replace(&mut policy, reader.covering(offset, len));
//! ```

use bytes::Bytes;

use crate::core::format::id::{Id, IdMap, IdSet};
use crate::core::lazy::cache::{Admission, CachePolicy};
use crate::core::lazy::reader::ChunkSource;

/// Where the shell keeps cached chunks (files in a folder, a map).
pub trait ChunkStore {
    /// The chunk's plain bytes, verified against its id; `None` when it is
    /// missing or corrupt (the caller then forgets and refetches it).
    fn load(&mut self, id: &Id) -> Option<Bytes>;
    /// Bytes `start..start + len` of the chunk, verified as far as the
    /// store can check a part (by default: the whole chunk is loaded).
    fn load_range(&mut self, id: &Id, start: u64, len: u64) -> Option<Bytes> {
        let b = self.load(id)?;
        let end = start.checked_add(len)?;
        (end <= b.len() as u64).then(|| b.slice(start as usize..end as usize))
    }
    /// Keeps a verified chunk the policy admitted.
    fn save(&mut self, id: &Id, bytes: &Bytes);
    /// Drops a chunk the policy evicted or found corrupt.
    fn remove(&mut self, id: &Id);
}

/// One read in progress: the chunks it has been handed since it started
/// (kept in memory until it is answered, so admissions made for its own
/// read-ahead cannot take them away, and one the policy refused still
/// serves this read).
#[derive(Debug, Default)]
pub struct CachedRead {
    covering: IdSet,
    fresh: IdMap<Bytes>,
    /// Parts of chunks loaded from the cache (id, start, len), kept like
    /// `fresh` for the rest of the read.
    parts: std::collections::HashMap<(Id, u64, u64), Bytes>,
    counted: IdSet,
}

impl CachedRead {
    /// A read whose range is held by chunks `covering`.
    pub fn new(covering: &[Id]) -> CachedRead {
        CachedRead {
            covering: covering.iter().copied().collect(),
            ..CachedRead::default()
        }
    }

    /// The chunk source the reader reads this read from.
    pub fn source<'a, S: ChunkStore>(
        &'a mut self,
        policy: &'a mut CachePolicy,
        store: &'a mut S,
    ) -> Source<'a, S> {
        Source {
            read: self,
            policy,
            store,
        }
    }

    /// A blob fetched from the repository (verified by the shell): counted,
    /// offered to the cache (evicting what the policy says), and kept for
    /// this read if it covers it.
    pub fn deliver<S: ChunkStore>(
        &mut self,
        policy: &mut CachePolicy,
        store: &mut S,
        id: Id,
        bytes: Bytes,
    ) {
        policy.fetched(bytes.len() as u64);
        if let Admission::Admitted { evict } = policy.admit(id, bytes.len() as u64) {
            for victim in &evict {
                store.remove(victim);
            }
            store.save(&id, &bytes);
        }
        if self.covering.contains(&id) {
            self.counted.insert(id);
            self.fresh.insert(id, bytes);
        }
    }
}

/// [`CachedRead`]'s view of the cache as a [`ChunkSource`].
pub struct Source<'a, S: ChunkStore> {
    read: &'a mut CachedRead,
    policy: &'a mut CachePolicy,
    store: &'a mut S,
}

impl<S: ChunkStore> ChunkSource for Source<'_, S> {
    fn contains(&self, id: &Id) -> bool {
        self.read.fresh.contains_key(id) || self.policy.contains(id)
    }

    fn chunk(&mut self, id: &Id) -> Option<Bytes> {
        if let Some(b) = self.read.fresh.get(id) {
            return Some(b.clone());
        }
        self.counted_load(id, None, |store| store.load(id))
    }

    fn chunk_range(&mut self, id: &Id, start: u64, len: u64) -> Option<Bytes> {
        if let Some(b) = self.read.fresh.get(id) {
            let end = start.checked_add(len)?;
            return (end <= b.len() as u64).then(|| b.slice(start as usize..end as usize));
        }
        if let Some(b) = self.read.parts.get(&(*id, start, len)) {
            return Some(b.clone());
        }
        let b = self.counted_load(id, Some(len), |store| store.load_range(id, start, len))?;
        self.read.parts.insert((*id, start, len), b.clone());
        Some(b)
    }
}

impl<S: ChunkStore> Source<'_, S> {
    /// A load from the store with the policy's bookkeeping, of `part`
    /// bytes of the chunk or of all of it (`None`); a whole chunk is kept
    /// for the rest of the read.
    fn counted_load(
        &mut self,
        id: &Id,
        part: Option<u64>,
        load: impl FnOnce(&mut S) -> Option<Bytes>,
    ) -> Option<Bytes> {
        // Each chunk counts once per read (a hit, or a miss when absent or
        // corrupt), however many times the read asks for it.
        let first_ask = self.read.counted.insert(*id);
        let loaded = if self.policy.contains(id) {
            let loaded = load(self.store);
            if loaded.is_none() {
                self.policy.corrupt(id);
                self.store.remove(id);
            }
            loaded
        } else {
            None
        };
        if first_ask {
            self.policy.lookup(id, part.unwrap_or(u64::MAX));
        } else if loaded.is_some() {
            self.policy.touch(id);
        }
        let b = loaded?;
        if part.is_none() {
            self.read.fresh.insert(*id, b.clone());
        }
        Some(b)
    }
}

/// What an open file keeps pinned: the chunks of its last read, until its
/// next read or its close, so a reader coming back to where it was finds
/// them (and the bound accounts for every open file's hold).
#[derive(Debug, Default)]
pub struct Hold(Vec<Id>);

impl Hold {
    /// Pins `ids` (those the cache holds) and unpins the previous hold.
    pub fn replace(&mut self, policy: &mut CachePolicy, ids: Vec<Id>) {
        let pinned: Vec<Id> = ids.into_iter().filter(|id| policy.pin(id)).collect();
        self.release(policy);
        self.0 = pinned;
    }

    /// Unpins everything (the file is closed).
    pub fn release(&mut self, policy: &mut CachePolicy) {
        for id in self.0.drain(..) {
            policy.unpin(&id);
        }
    }

    pub fn ids(&self) -> &[Id] {
        &self.0
    }
}
