//! Chunks rebuilt from deltas before an apply (see `core::ccr::delta`).
//!
//! The apply's restore is planned first, to learn which chunks it would
//! fetch. Each is matched with the chunk of the held checkpoint's version
//! of the same file that lies most over the same offsets (its *base*),
//! the leader is asked for deltas in batches (two requests in flight),
//! and each chunk is rebuilt from its base as the live folder holds it,
//! checked against its id and written into a chunk cache folder that the
//! restore, its plan updated (`Planned::use_cache`), then reads. What
//! gets no delta (a refused or failed request, a pruned base, a base the
//! folder no longer holds as it was, too little saved) is fetched by the
//! restore as usual: deltas never make an apply fail.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::core::ccr::delta::{apply, best_base, decode_batch, Ask, Delta, MAX_ASKS};
use crate::core::format::id::Id;
use crate::core::format::index::RepoIndex;
use crate::core::plan::restore::{RestorePlan, TargetState};
use crate::native::error::{Error, Result};
use crate::native::lazy::put_entry;
use crate::native::repo::Repo;
use crate::native::restore::{chunk_spans, Planned, RestoreOptions};
use crate::native::runtime::block_on;
use crate::repo::restore::{prepare, RestoreChoice};

/// The most plain bytes of new chunks asked for in one request (the answer
/// is at most about three quarters of it).
const BATCH_BYTES: u64 = 8 << 20;
/// Requests in flight at once: the leader reads and compares chunks while
/// the follower rebuilds the answer before.
const IN_FLIGHT: usize = 2;

/// Where chunk deltas come from: the leader node, over HTTP. Asked from
/// [`IN_FLIGHT`] threads at once.
pub trait DeltaSource: Sync {
    /// The leader's batch answer to `asks` (`core::ccr::delta`'s framing),
    /// or why there is none.
    fn deltas(&self, asks: &[Ask]) -> std::result::Result<Vec<u8>, String>;
}

/// Deltas for one apply: whom to ask, and the checkpoint whose chunks the
/// live folder holds (the bases).
pub struct Deltas<'a> {
    pub source: &'a dyn DeltaSource,
    /// The snapshot, in the checkpoint repository, of the checkpoint the
    /// follower folder was last switched to.
    pub held: &'a str,
    /// That checkpoint's plan over the folder, when the local-write check
    /// has just made it (`Follow::examine`): its files are not planned
    /// again.
    pub planned: Option<&'a Planned>,
}

/// What deltas gave one apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeltaUse {
    /// Chunks the restore would fetch for which a base was found, and
    /// asked for.
    pub asked: u64,
    /// Chunks rebuilt and found right (the restore takes them from the
    /// cache instead of fetching them).
    pub chunks: u64,
    /// Bytes of the leader's answers.
    pub bytes_received: u64,
    /// Requests that failed or were refused (their chunks are fetched).
    pub failed_requests: u64,
}

/// A chunk to ask for, and where its base lies in the live folder.
struct Wanted {
    ask: Ask,
    len: u64,
    /// The base's file (relative to the data folder), offset and length.
    path: String,
    offset: u64,
    base_len: u64,
}

/// One file of the held checkpoint: its chunks and where each lies.
struct HeldFile {
    ids: Vec<Id>,
    /// (offset, length) of each chunk.
    spans: Vec<(u64, u64)>,
}

/// The files of `plan` (the held checkpoint's); files with a chunk the
/// index does not know are left out.
fn held_files(plan: &RestorePlan, index: &RepoIndex) -> HashMap<String, HeldFile> {
    let mut out = HashMap::new();
    for f in &plan.files {
        if let Some(spans) = chunk_spans(&f.chunks, index) {
            let ids = f.chunks.clone();
            out.insert(f.path.clone(), HeldFile { ids, spans });
        }
    }
    out
}

/// The chunks `next` fetches that have a base in `held`: for each, the
/// first of its places whose file the held checkpoint has too.
fn wanted(next: &RestorePlan, held: &HashMap<String, HeldFile>) -> Vec<Wanted> {
    let mut out = Vec::new();
    for blob in next.reads.iter().flat_map(|r| &r.blobs) {
        let len = u64::from(blob.entry.raw_len);
        let found = blob.places.iter().find_map(|p| {
            let path = &next.files[p.file as usize].path;
            let file = held.get(path)?;
            let i = best_base(p.offset, len, &file.spans)?;
            let base = file.ids[i];
            (base != blob.id).then(|| (path.clone(), base, file.spans[i]))
        });
        if let Some((path, base, (offset, base_len))) = found {
            out.push(Wanted {
                ask: Ask { id: blob.id, base },
                len,
                path,
                offset,
                base_len,
            });
        }
    }
    out
}

/// Asks for deltas of the chunks that `next`, the plan of restore `opts`
/// (over a stage linked from the live folder in `data`), fetches, and
/// writes those rebuilt into the cache folder `cache`.
pub fn prefetch(
    repo: &Repo,
    deltas: &Deltas,
    next: &RestorePlan,
    opts: &RestoreOptions,
    data: &Path,
    cache: &Path,
) -> Result<DeltaUse> {
    let held = match deltas.planned {
        Some(p) => held_files(&p.plan, &p.index),
        None => {
            let choice = RestoreChoice {
                snapshot: deltas.held.to_string(),
                selection: opts.selection.clone(),
                rename: opts.rename.clone(),
                include_global_state: false,
                include: None,
            };
            let prepared = block_on(prepare(repo.reader(), &choice))?;
            held_files(&prepared.plan(TargetState::default())?, &prepared.index)
        }
    };
    let todo = wanted(next, &held);
    let requests = batched(&todo);
    let (taken, abort, source) = (AtomicUsize::new(0), &opts.abort, deltas.source);
    let workers = IN_FLIGHT.min(requests.len());
    let outcomes: Vec<Result<DeltaUse>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> Result<DeltaUse> {
                    let mut used = DeltaUse::default();
                    while let Some(b) = requests.get(taken.fetch_add(1, Ordering::Relaxed)) {
                        abort.check("restore")?;
                        one_batch(repo, source, b, data, cache, &mut used)?;
                    }
                    Ok(used)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a delta request thread panicked"))
            .collect()
    });
    let mut used = DeltaUse::default();
    for u in outcomes {
        let u = u?;
        used.asked += u.asked;
        used.chunks += u.chunks;
        used.bytes_received += u.bytes_received;
        used.failed_requests += u.failed_requests;
    }
    Ok(used)
}

/// `todo` cut into requests of at most [`MAX_ASKS`] chunks and about
/// [`BATCH_BYTES`] (a chunk over it goes alone).
fn batched(todo: &[Wanted]) -> Vec<&[Wanted]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, w) in todo.iter().enumerate() {
        let full = i - start == MAX_ASKS || bytes + w.len > BATCH_BYTES;
        if full && i > start {
            out.push(&todo[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += w.len;
    }
    if start < todo.len() {
        out.push(&todo[start..]);
    }
    out
}

/// One request, and the chunks its answer rebuilds.
fn one_batch(
    repo: &Repo,
    source: &dyn DeltaSource,
    batch: &[Wanted],
    data: &Path,
    cache: &Path,
    used: &mut DeltaUse,
) -> Result<()> {
    let asks: Vec<Ask> = batch.iter().map(|w| w.ask).collect();
    used.asked += asks.len() as u64;
    let answer = match source.deltas(&asks) {
        Ok(a) => a,
        Err(_) => {
            used.failed_requests += 1;
            return Ok(());
        }
    };
    used.bytes_received += answer.len() as u64;
    let Ok(entries) = decode_batch(&answer, asks.len()) else {
        used.failed_requests += 1;
        return Ok(());
    };
    for (w, d) in batch.iter().zip(entries) {
        let Some(chunk) = d.and_then(|d| rebuild(repo, w, &d, data)) else {
            continue;
        };
        put_entry(cache, &w.ask.id, &chunk).map_err(|e| Error::io(cache, e))?;
        used.chunks += 1;
    }
    Ok(())
}

/// Chunk `w` from delta `d` and its base as the live folder holds it;
/// `None` unless the result has the chunk's id.
fn rebuild(repo: &Repo, w: &Wanted, d: &Delta, data: &Path) -> Option<Vec<u8>> {
    let file = File::open(data.join(&w.path)).ok()?;
    let mut base = vec![0u8; usize::try_from(w.base_len).ok()?];
    file.read_exact_at(&mut base, w.offset).ok()?;
    let chunk = apply(&base, d).ok()?;
    (chunk.len() as u64 == w.len && repo.sealing().id_of(&chunk) == w.ask.id).then_some(chunk)
}

/// The temporary chunk cache of one apply: removed when dropped, however
/// the apply ends.
pub struct TempCache(pub PathBuf);

impl TempCache {
    /// A new, empty folder at `path` (what a killed run left there is
    /// removed first).
    pub fn create(path: PathBuf) -> std::io::Result<TempCache> {
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir(&path)?;
        Ok(TempCache(path))
    }
}

impl Drop for TempCache {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted_of(len: u64) -> Wanted {
        let id = Id([0; 32]);
        Wanted {
            ask: Ask { id, base: id },
            len,
            path: String::new(),
            offset: 0,
            base_len: 0,
        }
    }

    fn sizes(requests: Vec<&[Wanted]>) -> Vec<usize> {
        requests.iter().map(|r| r.len()).collect()
    }

    #[test]
    fn requests_hold_at_most_max_asks_and_about_batch_bytes() {
        let small: Vec<Wanted> = (0..600).map(|_| wanted_of(1000)).collect();
        assert_eq!(sizes(batched(&small)), vec![256, 256, 88]);
        // A chunk over the byte budget goes alone.
        let big: Vec<Wanted> = [3 << 20, 3 << 20, 3 << 20, 20 << 20, 1]
            .into_iter()
            .map(wanted_of)
            .collect();
        assert_eq!(sizes(batched(&big)), vec![2, 1, 1, 1]);
        assert!(batched(&[]).is_empty());
    }
}
