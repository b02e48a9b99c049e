//! [`CacheWriter`]: writes a [`super::DiskCache`]'s admitted chunks (and
//! their block sums) to the folder on a thread of its own, so a read is
//! answered as soon as its chunk is verified instead of after the chunk,
//! its block sums and two renames reached the disk.
//!
//! Until written, a chunk stays in memory here and is served from here
//! (the policy counts it as cached from its admission). What waits is
//! bounded by [`PENDING_BYTES`]: an admission past it waits for the
//! writer (the read path then pays for the disk, as before, instead of
//! memory growing). A chunk removed (evicted, found corrupt, cleared)
//! while queued is dropped unwritten; one removed while being written is
//! removed once it is in place, so the folder never holds an entry the
//! policy dropped.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use bytes::Bytes;

use crate::core::format::id::{Id, IdMap};

/// Most bytes of chunks waiting to be written.
const PENDING_BYTES: u64 = 32 * 1024 * 1024;

/// Suffix of a file being written; renamed into place once whole (an
/// open cache removes leftovers).
pub(super) const PARTIAL: &str = ".partial";
/// Sidecar of an entry's block sums (XXH3-128, see [`block_sums`]).
pub(super) const SUMS: &str = "xxh3";
/// Sidecar of the SHA-256 block sums caches kept before: removed when a
/// cache is opened (the entries stay, and are read whole until rewritten).
pub(super) const OLD_SUMS: &str = ".sums";
/// Bytes of one block's sum.
pub(super) const SUM_BYTES: usize = 16;
/// Bytes per summed block.
pub(super) const BLOCK: u64 = 64 * 1024;

/// The background writer of one cache folder.
#[derive(Debug)]
pub(super) struct CacheWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    /// Chunks admitted and not yet in place, with their entry's path.
    chunks: IdMap<(Bytes, PathBuf)>,
    /// Write order (an id no longer in `chunks` was removed: skipped).
    order: VecDeque<Id>,
    /// The chunk being written, outside the lock.
    writing: Option<Id>,
    bytes: u64,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        self.changed.wait(guard).unwrap_or_else(|p| p.into_inner())
    }
}

impl CacheWriter {
    pub fn start() -> CacheWriter {
        let shared = Arc::new(Shared::default());
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("snapkeep-cache".into())
            .spawn(move || write_loop(&worker))
            .expect("spawning the cache writer thread");
        CacheWriter {
            shared,
            thread: Some(thread),
        }
    }

    /// A chunk waiting to be written.
    pub fn get(&self, id: &Id) -> Option<Bytes> {
        self.shared.lock().chunks.get(id).map(|(b, _)| b.clone())
    }

    /// Queues verified chunk `id` for entry `path`; waits while the queue
    /// holds [`PENDING_BYTES`] already.
    pub fn write(&self, id: Id, bytes: Bytes, path: PathBuf) {
        let len = bytes.len() as u64;
        let mut q = self.shared.lock();
        while q.bytes > 0 && q.bytes + len > PENDING_BYTES && !q.closed {
            q = self.shared.wait(q);
        }
        if let Some((old, _)) = q.chunks.insert(id, (bytes, path)) {
            q.bytes -= old.len() as u64;
        }
        q.bytes += len;
        q.order.push_back(id);
        self.shared.changed.notify_all();
    }

    /// Forgets chunk `id` unwritten, or, when it is being written, waits
    /// until it is in place (the caller then removes its files).
    pub fn cancel(&self, id: &Id) {
        let mut q = self.shared.lock();
        while q.writing == Some(*id) {
            q = self.shared.wait(q);
        }
        if let Some((b, _)) = q.chunks.remove(id) {
            q.bytes -= b.len() as u64;
            self.shared.changed.notify_all();
        }
    }

    /// Waits until every queued chunk is written.
    pub fn flush(&self) {
        let mut q = self.shared.lock();
        while !q.chunks.is_empty() || q.writing.is_some() {
            q = self.shared.wait(q);
        }
    }
}

impl Drop for CacheWriter {
    /// Writes what is queued, then stops the thread.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_loop(shared: &Shared) {
    loop {
        let (id, bytes, path) = {
            let mut q = shared.lock();
            loop {
                if let Some(id) = q.order.pop_front() {
                    if let Some((b, p)) = q.chunks.get(&id) {
                        let next = (id, b.clone(), p.clone());
                        q.writing = Some(id);
                        break next;
                    }
                } else if q.closed {
                    return;
                } else {
                    q = shared.wait(q);
                }
            }
        };
        let written = write_partial(&path, &bytes);
        let mut q = shared.lock();
        q.writing = None;
        // Still wanted (a cancel waits for `writing` to clear, so it cannot
        // have run since): put it in place; otherwise drop the partials.
        let wanted = q.chunks.remove(&id).is_some();
        if wanted {
            q.bytes -= bytes.len() as u64;
        }
        match written {
            Ok(()) if wanted => commit(&path),
            _ => discard(&path),
        }
        drop(q);
        shared.changed.notify_all();
    }
}

fn partial(path: &Path) -> PathBuf {
    path.with_extension(PARTIAL.trim_start_matches('.'))
}

fn sums_partial(path: &Path) -> PathBuf {
    path.with_extension(format!("{SUMS}{PARTIAL}"))
}

/// Writes the entry and its block sums beside their final names.
fn write_partial(path: &Path, bytes: &Bytes) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(partial(path), bytes)?;
    // A chunk of one block is read whole anyway.
    if bytes.len() as u64 > BLOCK {
        fs::write(sums_partial(path), block_sums(bytes))?;
    }
    Ok(())
}

/// Renames the partials into place: the chunk first, then its sums (an
/// entry without sums is read whole and checked against its id). A failed
/// rename (a full disk) is not an error: the entry then fails its check
/// when read and is fetched again.
fn commit(path: &Path) {
    if fs::rename(partial(path), path).is_err() {
        discard(path);
        return;
    }
    let _ = fs::rename(sums_partial(path), path.with_extension(SUMS));
}

fn discard(path: &Path) {
    let _ = fs::remove_file(partial(path));
    let _ = fs::remove_file(sums_partial(path));
}

/// The XXH3-128 of each [`BLOCK`] of `bytes`, little-endian. The sums
/// catch a damaged or truncated local file; they authenticate nothing (a
/// cryptographic hash kept in the same folder could not either), so the
/// chunk's id, checked once before it is stored, is what vouches for it,
/// and the cold read pays for one SHA-256 pass instead of two.
pub(super) fn block_sums(bytes: &[u8]) -> Vec<u8> {
    bytes.chunks(BLOCK as usize).flat_map(block_sum).collect()
}

pub(super) fn block_sum(block: &[u8]) -> [u8; SUM_BYTES] {
    twox_hash::XxHash3_128::oneshot(block).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_chunks_are_served_written_or_dropped_when_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let writer = CacheWriter::start();
        let chunks: Vec<(Id, Bytes, PathBuf)> = (0..40u8)
            .map(|n| {
                let bytes = Bytes::from(vec![n; 3 * BLOCK as usize + n as usize]);
                let id = Id::of(&bytes);
                let path = dir.path().join(format!("sub{}", n % 4)).join(id.to_hex());
                (id, bytes, path)
            })
            .collect();
        for (id, bytes, path) in &chunks {
            writer.write(*id, bytes.clone(), path.clone());
        }
        // Every other chunk removed again: written and then removed by
        // the caller, or never written.
        for (id, _, path) in chunks.iter().step_by(2) {
            writer.cancel(id);
            let _ = fs::remove_file(path);
            let _ = fs::remove_file(path.with_extension(SUMS));
            assert_eq!(writer.get(id), None);
        }
        writer.flush();
        for (n, (id, bytes, path)) in chunks.iter().enumerate() {
            let kept = n % 2 == 1;
            assert_eq!(fs::read(path).ok(), kept.then(|| bytes.to_vec()), "{n}");
            let sums = fs::read(path.with_extension(SUMS)).ok();
            assert_eq!(sums, kept.then(|| block_sums(bytes)), "{n}");
            assert_eq!(writer.get(id), None, "written chunks leave memory");
        }
        // A folder only cancelled chunks went to may never have been made.
        let leftovers = (0..4)
            .flat_map(|k| {
                fs::read_dir(dir.path().join(format!("sub{k}")))
                    .into_iter()
                    .flatten()
            })
            .filter(|f| {
                f.as_ref()
                    .unwrap()
                    .path()
                    .to_string_lossy()
                    .ends_with(PARTIAL)
            })
            .count();
        assert_eq!(leftovers, 0);
        assert_eq!(writer.shared.lock().bytes, 0);
    }
}
