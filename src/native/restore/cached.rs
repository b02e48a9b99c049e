//! Chunks a restore takes from its caller instead of fetching them (a
//! follower's chunks rebuilt from deltas, or sent whole), held in memory.

use std::sync::mpsc::Receiver;
use std::sync::Mutex;

use bytes::Bytes;

use crate::core::format::id::{Id, IdMap, IdSet};

/// Chunks a caller checked against their ids and holds in memory, for a
/// restore to write instead of fetching them. Kept in memory because
/// writing them to a folder and reading them back cost a file, an inode
/// and a second hash each for chunks that live for one restore.
#[derive(Debug, Default)]
pub struct HeldChunks {
    ids: IdSet,
    chunks: IdMap<Bytes>,
    bytes: u64,
}

impl HeldChunks {
    /// Holds `chunk`, whose id the caller checked is `id`.
    pub fn put(&mut self, id: Id, chunk: Bytes) {
        if self.ids.insert(id) {
            self.bytes += chunk.len() as u64;
            self.chunks.insert(id, chunk);
        }
    }

    /// Every chunk held, by id.
    pub fn into_chunks(self) -> impl Iterator<Item = (Id, Bytes)> {
        self.chunks.into_iter()
    }

    /// Takes every chunk `other` holds.
    pub fn extend(&mut self, other: HeldChunks) {
        for (id, chunk) in other.chunks {
            self.put(id, chunk);
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn ids(&self) -> &IdSet {
        &self.ids
    }

    /// Plain bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// Chunks a caller is still getting (on threads of its own) when the
/// restore starts, sent in batches until its senders are dropped: the
/// restore writes them as they come while it fetches and copies the rest,
/// then fetches those never sent.
#[derive(Debug)]
pub struct Coming(pub(super) Mutex<Receiver<HeldChunks>>);

impl Coming {
    /// The next batch sent; `None` once every sender is gone.
    pub(super) fn next(&self) -> Option<HeldChunks> {
        let rx = self.0.lock().unwrap_or_else(|e| e.into_inner());
        rx.recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_chunks_are_offered_and_counted_once() {
        let (a, b) = (Id([1; 32]), Id([2; 32]));
        let mut held = HeldChunks::default();
        held.put(a, Bytes::from(vec![7; 10]));
        let mut more = HeldChunks::default();
        more.put(a, Bytes::from(vec![7; 10]));
        more.put(b, Bytes::from(vec![8; 5]));
        held.extend(more);
        assert_eq!((held.len(), held.bytes()), (2, 15));
        assert!(held.ids().contains(&b));
        let mut chunks: Vec<(Id, Bytes)> = held.into_chunks().collect();
        chunks.sort_by_key(|(id, _)| *id);
        assert_eq!(chunks[1], (b, Bytes::from(vec![8; 5])));
    }
}
