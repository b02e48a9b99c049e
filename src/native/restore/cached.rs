//! Chunks a restore takes from its caller instead of fetching them (a
//! follower's chunks rebuilt from deltas, or sent whole), held in memory.

use std::sync::mpsc::Receiver;
use std::sync::Mutex;

use bytes::Bytes;

use crate::core::format::id::{Id, IdMap};

/// Chunks a caller checked against their ids and holds in memory, for a
/// restore to write instead of fetching them. Kept in memory because
/// writing them to a folder and reading them back cost a file, an inode
/// and a second hash each for chunks that live for one restore.
#[derive(Debug, Default)]
pub struct HeldChunks(IdMap<Bytes>);

impl HeldChunks {
    /// Holds `chunk`, whose id the caller checked is `id`.
    pub fn put(&mut self, id: Id, chunk: Bytes) {
        self.0.insert(id, chunk);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every chunk held, by id.
    pub fn into_chunks(self) -> impl Iterator<Item = (Id, Bytes)> {
        self.0.into_iter()
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
    fn held_chunks_are_held_once_each() {
        let (a, b) = (Id([1; 32]), Id([2; 32]));
        let mut held = HeldChunks::default();
        assert!(held.is_empty());
        held.put(a, Bytes::from(vec![7; 10]));
        held.put(a, Bytes::from(vec![7; 10]));
        held.put(b, Bytes::from(vec![8; 5]));
        let mut chunks: Vec<(Id, Bytes)> = held.into_chunks().collect();
        chunks.sort_by_key(|(id, _)| *id);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1], (b, Bytes::from(vec![8; 5])));
    }
}
