//! [`CacheWriter`]: writes a [`super::DiskCache`]'s admitted chunks (with
//! their block sums, [`super::cache_entry`]) to the folder on a thread of
//! its own, so a read is answered as soon as its chunk is verified instead
//! of after its entry and a rename reached the disk.
//!
//! Until written, a chunk stays in memory here and is served from here
//! (the policy counts it as cached from its admission). What waits is
//! bounded by [`PENDING_BYTES`]: an admission past it waits for the
//! writers (the read path then pays for the disk, as before, instead of
//! memory growing). A chunk removed (evicted, found corrupt, cleared)
//! while queued is dropped unwritten; one removed while being written is
//! removed once it is in place, so the folder never holds an entry the
//! policy dropped.
//!
//! Writing an entry costs about as much CPU as the reader's own copy of
//! the chunk, and a cold sequential read keeps every core busy, so the
//! entries are written by two threads: one at the lowest priority, which
//! takes only the time the readers leave (the gaps while a range is read
//! from the repository), and one at the readers' priority that writes
//! only while more than half the bound waits, so a busy machine never
//! starves the cache and holds readers up behind it.

use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use bytes::Bytes;

use crate::core::format::id::{Id, IdMap};

use super::cache_entry::trailer;

/// Most bytes of chunks waiting to be written.
const PENDING_BYTES: u64 = 32 * 1024 * 1024;

/// Suffix of a file being written; renamed into place once whole (an
/// open cache removes leftovers).
pub(super) const PARTIAL: &str = ".partial";

/// The background writer of one cache folder.
#[derive(Debug)]
pub(super) struct CacheWriter {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
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
    /// The chunks being written, outside the lock.
    writing: Vec<Id>,
    bytes: u64,
    closed: bool,
    /// Callers waiting in [`CacheWriter::flush`]: the catch-up writer
    /// drains the queue for them, as at close.
    flushing: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        self.changed.wait(guard).unwrap_or_else(|p| p.into_inner())
    }
}

/// Which of the two writers a thread is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// Lowest priority, writes whatever is queued.
    Idle,
    /// Readers' priority, writes while the queue is over half the bound
    /// (down to a quarter), and drains it for a flush and at close.
    CatchUp,
}

impl Queue {
    /// Whether writer `w`, `catching_up` until now, has work to take.
    fn wanted_by(&self, w: Writer, catching_up: bool) -> bool {
        let floor = if catching_up { 4 } else { 2 };
        !self.order.is_empty()
            && (w == Writer::Idle
                || self.closed
                || self.flushing > 0
                || self.bytes > PENDING_BYTES / floor)
    }
}

impl CacheWriter {
    pub fn start() -> CacheWriter {
        let shared = Arc::new(Shared::default());
        let threads = [
            (Writer::Idle, "snapkeep-cache"),
            (Writer::CatchUp, "snapkeep-cache+"),
        ]
        .map(|(role, name)| {
            let worker = shared.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || write_loop(&worker, role))
                .expect("spawning a cache writer thread")
        });
        CacheWriter {
            shared,
            threads: threads.into(),
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
        while q.writing.contains(id) {
            q = self.shared.wait(q);
        }
        if let Some((b, _)) = q.chunks.remove(id) {
            q.bytes -= b.len() as u64;
            self.shared.changed.notify_all();
        }
    }

    /// Waits until every queued chunk is written (by both writers: an
    /// unmount does not wait on the idle one alone).
    pub fn flush(&self) {
        let mut q = self.shared.lock();
        q.flushing += 1;
        self.shared.changed.notify_all();
        while !q.chunks.is_empty() || !q.writing.is_empty() {
            q = self.shared.wait(q);
        }
        q.flushing -= 1;
    }
}

impl Drop for CacheWriter {
    /// Writes what is queued, then stops the threads.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn write_loop(shared: &Shared, role: Writer) {
    if role == Writer::Idle {
        // Raising one's own nice value needs no privilege; failing to is
        // harmless (the writer then competes as before).
        let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
    }
    let mut catching_up = false;
    while let Some((id, bytes, path)) = next_entry(shared, role, &mut catching_up) {
        let written = write_partial(&path, &bytes);
        let mut q = shared.lock();
        q.writing.retain(|w| *w != id);
        // Still wanted (a cancel waits while it is being written, so it
        // cannot have run since): put it in place; otherwise drop the
        // partials.
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

/// The next chunk writer `role` should write, marked as being written;
/// `None` once the writer is closed and nothing is left.
fn next_entry(
    shared: &Shared,
    role: Writer,
    catching_up: &mut bool,
) -> Option<(Id, Bytes, PathBuf)> {
    let mut q = shared.lock();
    loop {
        *catching_up = q.wanted_by(role, *catching_up);
        if *catching_up {
            let id = q.order.pop_front().expect("wanted_by saw one");
            // An id no longer queued was removed, or queued again later.
            if let Some((b, p)) = q.chunks.get(&id) {
                let next = (id, b.clone(), p.clone());
                if !q.writing.contains(&id) {
                    q.writing.push(id);
                    return Some(next);
                }
            }
        } else if q.closed && q.order.is_empty() {
            return None;
        } else {
            q = shared.wait(q);
        }
    }
}

fn partial(path: &Path) -> PathBuf {
    path.with_extension(PARTIAL.trim_start_matches('.'))
}

/// Writes the entry beside its final name.
fn write_partial(path: &Path, bytes: &Bytes) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut f = fs::File::create(partial(path))?;
    f.write_all(bytes)?;
    f.write_all(&trailer(bytes))
}

/// Renames the partial into place. A failed rename (a full disk) is not an
/// error: the entry is then fetched again when next read.
fn commit(path: &Path) {
    if fs::rename(partial(path), path).is_err() {
        discard(path);
    }
}

fn discard(path: &Path) {
    let _ = fs::remove_file(partial(path));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::lazy::cache_entry::{chunk_of, BLOCK};

    /// The idle writer takes anything queued; the catch-up writer starts
    /// past half the bound, goes on down to a quarter, and drains for a
    /// flush and at close.
    #[test]
    fn the_catch_up_writer_works_only_while_the_queue_runs_full() {
        let mut q = Queue::default();
        let wants = |q: &Queue, w, catching_up| q.wanted_by(w, catching_up);
        assert!(!wants(&q, Writer::Idle, false));
        q.order.push_back(Id::of(b"queued"));
        for (bytes, starts, goes_on) in [
            (1, false, false),
            (PENDING_BYTES / 4, false, false),
            (PENDING_BYTES / 4 + 1, false, true),
            (PENDING_BYTES / 2, false, true),
            (PENDING_BYTES / 2 + 1, true, true),
        ] {
            q.bytes = bytes;
            assert!(wants(&q, Writer::Idle, false), "{bytes}");
            assert_eq!(wants(&q, Writer::CatchUp, false), starts, "{bytes}");
            assert_eq!(wants(&q, Writer::CatchUp, true), goes_on, "{bytes}");
        }
        q.bytes = 1;
        q.flushing = 1;
        assert!(wants(&q, Writer::CatchUp, false));
        q.flushing = 0;
        q.closed = true;
        assert!(wants(&q, Writer::CatchUp, false));
        q.order.clear();
        assert!(!wants(&q, Writer::CatchUp, true));
        assert!(!wants(&q, Writer::Idle, true));
    }

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
            assert_eq!(writer.get(id), None);
        }
        writer.flush();
        for (n, (id, bytes, path)) in chunks.iter().enumerate() {
            let kept = n % 2 == 1;
            let entry = fs::read(path).ok();
            let want = kept.then(|| [&bytes[..], &trailer(bytes)].concat());
            assert_eq!(entry, want, "{n}");
            let chunk = entry.and_then(chunk_of);
            assert_eq!(chunk, kept.then(|| bytes.to_vec()), "{n}");
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
