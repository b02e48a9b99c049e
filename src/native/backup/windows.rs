//! Streaming one file's chunks through the pipeline threads.
//!
//! The file is read in windows. Each window's chunks become tasks in a
//! queue that any pipeline thread may take (one rayon job is spawned per
//! chunk to offer it), while the reading thread goes on to the next window.
//! There is no barrier between windows: the stragglers of one window overlap
//! the chunks of the next.
//!
//! Memory is bounded by two window buffers: a new window is read only when
//! fewer than two are live (a window is live until its last chunk is
//! stored), and while it waits the reading thread stores queued chunks
//! itself, or, when all are taken, runs one other pending job of the pool
//! (never from inside such a job, so a thread streams at most two files at
//! once). Buffers are recycled, so a large file costs no page faults after
//! its first two windows.
//!
//! A chunk to be stored as a patch over its place in the parent snapshot
//! waits for the rest of its window: the thread that takes the window's
//! last chunk reads all their bases together (coalesced ranged reads, a
//! round trip for the window instead of one per chunk) and stores them,
//! with the pool's idle threads helping.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rayon::prelude::*;

use crate::core::format::id::Id;
use crate::native::backup::packer::{Added, Claim, Packer};
use crate::native::backup::read_error::ReadError;
use crate::native::error::Error;
use crate::native::progress::Progress;

/// Windows being stored at once, besides none being read.
const MAX_LIVE: usize = 2;

thread_local! {
    /// Whether this thread is running pool work from inside a wait.
    static YIELDED: Cell<bool> = const { Cell::new(false) };
}

/// Runs one pending job of the pool on this thread, unless this thread is
/// already inside such a job: work run while waiting may stream another
/// file, and one level of that bounds the windows a thread holds to two
/// files' worth. True if a job ran.
fn yield_once() -> bool {
    if YIELDED.with(Cell::get) {
        return false;
    }
    YIELDED.with(|y| y.set(true));
    let ran = rayon::yield_now() == Some(rayon::Yield::Executed);
    YIELDED.with(|y| y.set(false));
    ran
}

struct Task {
    window: Arc<Vec<u8>>,
    range: Range<usize>,
    slot: usize,
    batch: Arc<Batch>,
}

/// The chunks of one window to store as patches: their bases are read
/// together (one round trip for a window, not one per chunk), by the
/// thread that finishes the window's last task.
struct Batch {
    /// Tasks of the window not yet taken through [`Windows::store`].
    left: AtomicUsize,
    deferred: Mutex<Vec<Deferred>>,
}

/// A claimed chunk waiting for its base.
struct Deferred {
    window: Arc<Vec<u8>>,
    range: Range<usize>,
    slot: usize,
    id: Id,
    base: Id,
}

impl Batch {
    fn new(tasks: usize) -> Batch {
        Batch {
            left: AtomicUsize::new(tasks),
            deferred: Mutex::new(Vec::new()),
        }
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Task>,
    live: usize,
    free: Vec<Vec<u8>>,
    results: Vec<Option<(Id, Added)>>,
    failed: Option<Error>,
}

pub struct Windows {
    state: Mutex<State>,
    changed: Condvar,
    /// The file's chunks in the parent snapshot, by place (see
    /// [`Packer::claim_data`]).
    previous: Option<Arc<[Id]>>,
}

/// What one read of a file stored: its chunk ids in order, what was new,
/// and the bytes read.
pub type Streamed = (Vec<Id>, Added, u64);

impl Default for Windows {
    fn default() -> Windows {
        Windows {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            previous: None,
        }
    }
}

impl Windows {
    /// Windows whose chunks are offered as patches over `previous`.
    pub fn over(previous: Option<Arc<[Id]>>) -> Windows {
        Windows {
            previous,
            ..Windows::default()
        }
    }
}

impl Windows {
    /// Reads windows with `read` until it reports the end, storing every
    /// chunk it cuts. `read(first, carry, buf)` fills `buf` (resizing it as
    /// it likes) starting with `carry`, the unfinished tail of the previous
    /// window, and returns the bytes filled and the chunks cut; a window
    /// shorter than `buf` is the last.
    pub fn run(
        &self,
        packer: &Packer,
        progress: &Progress,
        mut read: impl FnMut(bool, &[u8], &mut Vec<u8>) -> io::Result<(usize, Vec<Range<usize>>)> + Send,
    ) -> Result<Streamed, ReadError> {
        let mut total = 0u64;
        let outcome = rayon::scope(|scope| -> io::Result<()> {
            let mut prev: Option<(Arc<Vec<u8>>, Range<usize>)> = None;
            let mut first = true;
            loop {
                let mut buf = {
                    let mut st = self.wait_for_room(packer, progress);
                    if st.failed.is_some() {
                        break;
                    }
                    st.live += 1;
                    st.free.pop().unwrap_or_default()
                };
                let carry = prev.as_ref().map_or(&[][..], |(w, tail)| &w[tail.clone()]);
                let carried = carry.len();
                let result = read(first, carry, &mut buf);
                first = false;
                if let Some((w, _)) = prev.take() {
                    self.release(w);
                }
                let (filled, cuts) = match result {
                    Ok(r) => r,
                    Err(e) => {
                        self.release(Arc::new(buf));
                        return Err(e);
                    }
                };
                total += (filled - carried) as u64;
                let eof = filled < buf.len();
                let consumed = cuts.last().map_or(0, |r| r.end);
                let window = Arc::new(buf);
                {
                    let mut st = self.state.lock().unwrap();
                    let batch = Arc::new(Batch::new(cuts.len()));
                    for range in cuts {
                        let slot = st.results.len();
                        st.results.push(None);
                        st.queue.push_back(Task {
                            window: window.clone(),
                            range,
                            slot,
                            batch: batch.clone(),
                        });
                        scope.spawn(|_| {
                            // (Not inside `if let`: its guard would live on.)
                            let task = self.state.lock().unwrap().queue.pop_front();
                            if let Some(task) = task {
                                self.store(task, packer, progress);
                            }
                        });
                    }
                }
                if eof {
                    self.release(window);
                    break;
                }
                prev = Some((window, consumed..filled));
            }
            if let Some((w, _)) = prev.take() {
                self.release(w);
            }
            // Store what is still queued here, rather than leaving the
            // scope to steal unrelated work while this file's windows live.
            drop(self.help_while(|st| st.live > 0, packer, progress));
            Ok(())
        });
        let mut st = self.state.lock().unwrap();
        if let Some(e) = st.failed.take() {
            return Err(ReadError::Store(e));
        }
        outcome.map_err(ReadError::Io)?;
        let mut ids = Vec::with_capacity(st.results.len());
        let mut added = Added::default();
        for r in st.results.drain(..) {
            let (id, a) = r.expect("every queued chunk was stored");
            ids.push(id);
            added.plain += a.plain;
            added.stored += a.stored;
        }
        Ok((ids, added, total))
    }

    /// Waits until fewer than [`MAX_LIVE`] windows are live (or a store
    /// failed); returns with the state locked.
    fn wait_for_room(&self, packer: &Packer, progress: &Progress) -> MutexGuard<'_, State> {
        self.help_while(
            |st| st.live >= MAX_LIVE && st.failed.is_none(),
            packer,
            progress,
        )
    }

    /// Stores queued chunks, or waits for other threads to, while `busy`
    /// holds; returns with the state locked.
    fn help_while(
        &self,
        busy: impl Fn(&State) -> bool,
        packer: &Packer,
        progress: &Progress,
    ) -> MutexGuard<'_, State> {
        let mut st = self.state.lock().unwrap();
        while busy(&st) {
            st = match st.queue.pop_front() {
                Some(task) => {
                    drop(st);
                    self.store(task, packer, progress);
                    self.state.lock().unwrap()
                }
                None => {
                    // Every queued chunk is taken and being stored: run
                    // other pending work of the pool (the small files read
                    // beside this one) rather than leave this core idle.
                    drop(st);
                    if yield_once() {
                        self.state.lock().unwrap()
                    } else {
                        let st = self.state.lock().unwrap();
                        if busy(&st) && st.queue.is_empty() {
                            self.changed.wait(st).unwrap()
                        } else {
                            st
                        }
                    }
                }
            };
        }
        st
    }

    /// Stores one chunk, or defers it to its window's batch when it is to
    /// be patched; the window's last task stores the batch.
    fn store(&self, task: Task, packer: &Packer, progress: &Progress) {
        let Task {
            window,
            range,
            slot,
            batch,
        } = task;
        let failed = self.state.lock().unwrap().failed.is_some();
        if !failed {
            let chunk = &window[range.clone()];
            let id = packer.id_of(chunk);
            let before = self.previous.as_deref().and_then(|p| p.get(slot));
            let result = match packer.claim_data(id, before) {
                Ok(Claim::Over(base)) => {
                    batch.deferred.lock().unwrap().push(Deferred {
                        window: window.clone(),
                        range,
                        slot,
                        id,
                        base,
                    });
                    None
                }
                Ok(claim) => Some(packer.store_claimed(id, chunk, claim, &HashMap::new())),
                Err(e) => Some(Err(e)),
            };
            progress.inc(chunk.len() as u64);
            if let Some(result) = result {
                self.record(slot, id, result);
            }
        }
        if batch.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            let deferred = std::mem::take(&mut *batch.deferred.lock().unwrap());
            self.store_deferred(deferred, packer);
        }
        self.release(window);
    }

    /// Reads the bases of a window's deferred chunks together, then stores
    /// each (on the pool's idle threads too).
    fn store_deferred(&self, deferred: Vec<Deferred>, packer: &Packer) {
        let failed = self.state.lock().unwrap().failed.is_some();
        if !failed && !deferred.is_empty() {
            let wanted: Vec<Id> = deferred.iter().map(|d| d.base).collect();
            let bases = packer.read_bases(&wanted);
            deferred.par_iter().for_each(|d| {
                let chunk = &d.window[d.range.clone()];
                let result = packer.store_claimed(d.id, chunk, Claim::Over(d.base), &bases);
                self.record(d.slot, d.id, result);
            });
        }
        for d in deferred {
            self.release(d.window);
        }
    }

    /// The outcome of storing the chunk at `slot`.
    fn record(&self, slot: usize, id: Id, result: crate::native::error::Result<Added>) {
        let mut st = self.state.lock().unwrap();
        match result {
            Ok(a) => st.results[slot] = Some((id, a)),
            Err(e) => {
                st.failed.get_or_insert(e);
                // Wake a reader waiting for room: it stops reading.
                self.changed.notify_all();
            }
        }
    }

    /// Drops one reference to a window; the last one recycles its buffer
    /// and frees its place.
    fn release(&self, window: Arc<Vec<u8>>) {
        if let Some(buf) = Arc::into_inner(window) {
            let mut st = self.state.lock().unwrap();
            st.free.push(buf);
            st.live -= 1;
            self.changed.notify_all();
        }
    }
}
