//! [`LazyFile`]: one open snapshot file, read by byte range through a
//! [`DiskCache`], fetching only the pack ranges the core's
//! [`LazyReader`] names (each blob verified before use).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::core::format::index::RepoIndex;
use crate::core::format::keys;
use crate::core::format::tree::Node;
use crate::core::lazy::layout::FileLayout;
use crate::core::lazy::reader::{LazyReader, ReadAhead, ReadAnswer};
use crate::core::lazy::serve::{CachedRead, Hold};
use crate::core::plan::read::PackRead;
use crate::error::{Error, Result};
use crate::native::lazy::DiskCache;
use crate::repo::RepoReader;

/// Pack ranges of one read fetched at once.
const FETCH_CONCURRENCY: usize = 8;

/// One open snapshot file. Reads of one file are answered one at a time
/// (they share its read-ahead state); files share their cache.
#[derive(Debug)]
pub struct LazyFile {
    repo: RepoReader,
    cache: Arc<DiskCache>,
    reader: tokio::sync::Mutex<LazyReader>,
    /// The chunks of the last read, pinned until the next read or close.
    hold: Mutex<Hold>,
}

impl LazyFile {
    /// Opens file `node` of a snapshot of `repo` (whose index is `index`).
    /// A hard link must be resolved to its file first (see
    /// [`crate::repo::views::locate`]).
    pub fn open(
        repo: RepoReader,
        cache: Arc<DiskCache>,
        index: &RepoIndex,
        node: &Node,
        read_ahead: ReadAhead,
    ) -> Result<LazyFile> {
        let layout = FileLayout::of(node, index)?;
        Ok(LazyFile {
            repo,
            cache,
            reader: tokio::sync::Mutex::new(LazyReader::new(layout, read_ahead)),
            hold: Mutex::new(Hold::default()),
        })
    }

    /// The file's size.
    pub async fn size(&self) -> u64 {
        self.reader.lock().await.size()
    }

    /// Bytes `offset..offset + len`, cut to the file's size.
    pub async fn read_at(&self, offset: u64, len: u64) -> Result<Bytes> {
        let mut reader = self.reader.lock().await;
        let covering = reader.covering(offset, len);
        let mut read = CachedRead::new(&covering);
        // The second answer is always ready: the first's fetch delivered
        // every chunk the range needs, and a read keeps what it was handed.
        for _ in 0..2 {
            let answer = {
                let mut guard = self.cache.lock();
                let state = &mut *guard;
                reader.read(
                    offset,
                    len,
                    &mut read.source(&mut state.policy, &mut state.store),
                )
            };
            match answer {
                ReadAnswer::Ready(bytes) => {
                    let mut state = self.cache.lock();
                    let mut hold = self.hold.lock().unwrap_or_else(|p| p.into_inner());
                    hold.replace(&mut state.policy, covering);
                    return Ok(bytes);
                }
                ReadAnswer::Need(reads) => self.fetch(&reads, &mut read).await?,
            }
        }
        Err(Error::Integrity {
            id: covering[0],
            detail: format!("bytes {offset}+{len} still missing after fetching them"),
        })
    }

    /// Fetches `reads`, verifies each blob and hands it to the read (and
    /// the cache).
    async fn fetch(&self, reads: &[PackRead], read: &mut CachedRead) -> Result<()> {
        let keys: Vec<String> = reads.iter().map(|r| keys::pack(&r.pack)).collect();
        let requests: Vec<_> = reads
            .iter()
            .zip(&keys)
            .map(|(r, key)| {
                self.repo
                    .store
                    .get(key, Some(r.offset..r.offset + r.length))
            })
            .collect();
        let fetched: Vec<Bytes> = stream::iter(requests)
            .buffered(FETCH_CONCURRENCY)
            .map_err(Error::from)
            .try_collect()
            .await?;
        for (r, bytes) in reads.iter().zip(fetched) {
            for e in &r.blobs {
                let at = (e.offset - r.offset) as usize;
                let stored =
                    bytes
                        .get(at..at + e.stored_len as usize)
                        .ok_or_else(|| Error::Integrity {
                            id: e.id,
                            detail: format!(
                                "pack {} is shorter than its index says",
                                r.pack.short()
                            ),
                        })?;
                let plain = Bytes::from(self.repo.decode_verified(e, stored)?);
                let mut guard = self.cache.lock();
                let state = &mut *guard;
                read.deliver(&mut state.policy, &mut state.store, e.id, plain);
            }
        }
        Ok(())
    }
}

impl Drop for LazyFile {
    fn drop(&mut self) {
        let mut state = self.cache.lock();
        let mut hold = self.hold.lock().unwrap_or_else(|p| p.into_inner());
        hold.release(&mut state.policy);
    }
}
