//! [`LazyFile`]: one open snapshot file, read by byte range through a
//! [`DiskCache`], fetching only the pack ranges the core's
//! [`LazyReader`] names (each blob verified before use).

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use tokio::sync::Notify;

use crate::core::format::id::{Id, IdSet};
use crate::core::format::index::RepoIndex;
use crate::core::format::keys;
use crate::core::format::tree::Node;
use crate::core::lazy::layout::FileLayout;
use crate::core::lazy::reader::{LazyReader, ReadAhead, ReadAnswer};
use crate::core::lazy::serve::{CachedRead, ChunkStore, Hold};
use crate::core::plan::read::{PackRead, DEFAULT_MAX_GAP};
use crate::error::{Error, Result};
use crate::native::lazy::DiskCache;
use crate::repo::reader::{stored_in, Bases};
use crate::repo::RepoReader;

/// Pack ranges of one read fetched at once.
const FETCH_CONCURRENCY: usize = 8;

/// Largest pack range one request fetches (restore's are 8 MiB): each
/// range is decoded on a thread of its own and handed over whole, so
/// smaller ones keep every core decoding a read-ahead window and let a
/// reader waiting on the window go on sooner.
const FETCH_RANGE: u64 = 2 * 1024 * 1024;

/// One open snapshot file. Reads of one file are answered one at a time
/// (they share its read-ahead state); files share their cache.
#[derive(Debug)]
pub struct LazyFile {
    repo: RepoReader,
    /// Where the bases of patch blobs are (a clone shares the tables).
    index: RepoIndex,
    cache: Arc<DiskCache>,
    state: tokio::sync::Mutex<Reading>,
    /// The chunks of the last read, pinned until the next read or close.
    hold: Mutex<Hold>,
    /// Woken each time a fetch has handed over a pack range's chunks.
    delivered: Arc<Notify>,
}

/// A file's read state: the core's reader, and the read-ahead fetch
/// running in the background, if any.
#[derive(Debug)]
struct Reading {
    reader: LazyReader,
    ahead: Option<tokio::task::JoinHandle<()>>,
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
            index: index.clone(),
            cache,
            state: tokio::sync::Mutex::new(Reading {
                reader: LazyReader::new(layout, read_ahead)
                    .with_coalescing(DEFAULT_MAX_GAP, FETCH_RANGE),
                ahead: None,
            }),
            hold: Mutex::new(Hold::default()),
            delivered: Arc::new(Notify::new()),
        })
    }

    /// The file's size.
    pub async fn size(&self) -> u64 {
        self.state.lock().await.reader.size()
    }

    /// Bytes `offset..offset + len`, cut to the file's size.
    ///
    /// A miss fetches the chunks the read needs and answers; the chunks
    /// the reader wants fetched ahead come in the background, into the
    /// cache, while the next reads are answered from what is there. A miss
    /// while that fetch runs waits for it (its chunk is most likely on the
    /// way) instead of fetching the same bytes twice, and is answered as
    /// soon as a range it delivers holds the chunk, not when it is done.
    pub async fn read_at(&self, offset: u64, len: u64) -> Result<Bytes> {
        let mut state = self.state.lock().await;
        let covering = state.reader.covering(offset, len);
        let mut read = CachedRead::new(&covering);
        // Waits for the read-ahead end with it; then one fetch, one answer.
        let mut fetched = false;
        loop {
            // Asked before looking, so a delivery in between is not missed.
            let delivered = self.delivered.notified();
            let answer = {
                let mut guard = self.cache.lock();
                let cache = &mut *guard;
                state.reader.read(
                    offset,
                    len,
                    &mut read.source(&mut cache.policy, &mut cache.store),
                )
            };
            let reads = match answer {
                ReadAnswer::Ready(bytes) => {
                    self.answered(&mut state, covering);
                    return Ok(bytes);
                }
                ReadAnswer::Need(reads) => reads,
            };
            if let Some(ahead) = state.ahead.as_mut() {
                if ahead.is_finished() {
                    state.ahead = None;
                } else {
                    tokio::select! {
                        _ = delivered => {}
                        _ = ahead => state.ahead = None,
                    }
                }
                continue;
            }
            if fetched {
                break;
            }
            fetched = true;
            let wanted: IdSet = covering.iter().copied().collect();
            let (now, later): (Vec<PackRead>, Vec<PackRead>) = reads
                .into_iter()
                .partition(|r| r.blobs.iter().any(|b| wanted.contains(&b.id)));
            fetch(
                &self.repo,
                &self.index,
                &self.cache,
                &self.delivered,
                &now,
                &mut read,
            )
            .await?;
            if !later.is_empty() {
                state.ahead = Some(self.fetch_ahead(later));
            }
        }
        Err(Error::Integrity {
            id: covering[0],
            detail: format!("bytes {offset}+{len} still missing after fetching them"),
        })
    }
}

impl LazyFile {
    /// Bytes `offset..offset + len` when every chunk they need is in hand
    /// and no other read of the file runs; `None` when the read must wait
    /// or fetch (then [`LazyFile::read_at`]). Answers on the caller's
    /// thread: a sequential reader's reads are nearly all of this kind, and
    /// each saves a hand-over to a task and back. A read-ahead it starts
    /// is spawned, so the caller must be inside the runtime.
    pub fn read_ready(&self, offset: u64, len: u64) -> Option<Bytes> {
        let mut state = self.state.try_lock().ok()?;
        let covering = state.reader.covering(offset, len);
        let mut read = CachedRead::new(&covering);
        let answer = {
            let mut guard = self.cache.lock();
            let cache = &mut *guard;
            let mut source = read.source(&mut cache.policy, &mut cache.store);
            if !state.reader.in_hand(offset, len, &source) {
                return None;
            }
            // A held chunk that cannot be loaded (a corrupt entry) makes
            // this a miss after all; `read_at` then fetches it.
            state.reader.read(offset, len, &mut source)
        };
        match answer {
            ReadAnswer::Ready(bytes) => {
                self.answered(&mut state, covering);
                Some(bytes)
            }
            ReadAnswer::Need(_) => None,
        }
    }

    /// After a read was answered: its chunks pinned until the next, and
    /// the read-ahead topped up.
    fn answered(&self, state: &mut Reading, covering: Vec<Id>) {
        {
            let mut cache = self.cache.lock();
            let mut hold = self.hold.lock().unwrap_or_else(|p| p.into_inner());
            hold.replace(&mut cache.policy, covering);
        }
        self.refill(state);
    }

    /// Starts the next read-ahead fetch when a sequential reader has used
    /// half its window and no fetch is on the way, so the reader finds the
    /// chunks in hand instead of waiting at each window's end.
    fn refill(&self, state: &mut Reading) {
        if state.ahead.as_ref().is_some_and(|a| !a.is_finished()) {
            return;
        }
        let reads = {
            let mut guard = self.cache.lock();
            let cache = &mut *guard;
            let mut none = CachedRead::new(&[]);
            let source = none.source(&mut cache.policy, &mut cache.store);
            state.reader.refill(&source)
        };
        if let Some(reads) = reads.filter(|r| !r.is_empty()) {
            state.ahead = Some(self.fetch_ahead(reads));
        }
    }

    /// Fetches `reads` into the cache in the background.
    fn fetch_ahead(&self, reads: Vec<PackRead>) -> tokio::task::JoinHandle<()> {
        let (repo, cache) = (self.repo.clone(), self.cache.clone());
        let (index, delivered) = (self.index.clone(), self.delivered.clone());
        tokio::spawn(async move {
            // Failures here only cost the read that needs the chunk a
            // fetch of its own.
            let mut none = CachedRead::new(&[]);
            let _ = fetch(&repo, &index, &cache, &delivered, &reads, &mut none).await;
        })
    }
}

/// Fetches `reads`, verifies each blob and hands it to the read (and the
/// cache). The ranges are requested concurrently and decoded on blocking
/// threads as they arrive (in parallel, as restore decodes), each handed
/// over as soon as it is verified.
async fn fetch(
    repo: &RepoReader,
    index: &RepoIndex,
    cache: &DiskCache,
    delivered: &Notify,
    reads: &[PackRead],
    read: &mut CachedRead,
) -> Result<()> {
    let jobs: Vec<_> = reads
        .iter()
        .map(|r| {
            let (repo, r) = (repo.clone(), r.clone());
            async move {
                let key = keys::pack(&r.pack);
                let range = Some(r.offset..r.offset + r.length);
                let bytes = repo.store.get(&key, range).await?;
                // A patch's base is most often in the cache: the parent
                // snapshot's group, read through an earlier mount.
                let cached = |id: &Id| cache.lock().store.load(id);
                let ids = r.blobs.iter().map(|e| &e.id);
                let bases = repo.bases_beside(index, ids, cached).await?;
                tokio::task::spawn_blocking(move || decode_range(&repo, &r, &bytes, &bases))
                    .await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
            }
        })
        .collect();
    let mut decoded = stream::iter(jobs).buffered(FETCH_CONCURRENCY);
    while let Some(blobs) = decoded.next().await {
        let blobs = blobs?;
        let mut guard = cache.lock();
        let state = &mut *guard;
        for (id, plain) in blobs {
            read.deliver(&mut state.policy, &mut state.store, id, plain);
        }
        drop(guard);
        delivered.notify_waiters();
    }
    Ok(())
}

/// The verified plain blobs of one fetched pack range.
fn decode_range(
    repo: &RepoReader,
    r: &PackRead,
    bytes: &Bytes,
    bases: &Bases,
) -> Result<Vec<(Id, Bytes)>> {
    r.blobs
        .iter()
        .map(|e| {
            let stored = stored_in(bytes, r, e)?;
            let plain = match repo.decode_checked(e, stored, bases)? {
                // Stored raw: a view of the fetched range, not a copy, as
                // long as the blob is a large part of it (a view keeps the
                // whole range in memory while the chunk is held).
                Cow::Borrowed(raw) if raw.len() as u64 * SHARE_AT_MOST >= bytes.len() as u64 => {
                    bytes.slice_ref(raw)
                }
                plain => Bytes::from(plain.into_owned()),
            };
            Ok((e.id, plain))
        })
        .collect()
}

/// A raw blob is handed out as a view of its fetched range only when the
/// range is at most this many times its size.
const SHARE_AT_MOST: u64 = 4;

impl Drop for LazyFile {
    fn drop(&mut self) {
        if let Some(ahead) = self.state.get_mut().ahead.take() {
            ahead.abort();
        }
        let mut state = self.cache.lock();
        let mut hold = self.hold.lock().unwrap_or_else(|p| p.into_inner());
        hold.release(&mut state.policy);
    }
}
