//! Chunks rebuilt from deltas before an apply (see `core::ccr::delta`).
//!
//! The apply's restore is planned first, to learn which chunks it would
//! fetch. Each is matched with the chunk of the held checkpoint's version
//! of the same file that lies most over the same offsets (its *base*),
//! the leader is asked for deltas in batches (two requests in flight),
//! and each chunk is rebuilt from its base as the live folder holds it,
//! checked against its id and sent, an answer's chunks at a time, to the
//! restore (its plan updated by `Planned::expect_held`), which writes them
//! as they come while it fetches the rest. A leader asked `whole` sends
//! the chunks no delta saves enough on as stored. What comes neither way
//! (a refused or failed request, a pruned chunk, a base the folder no
//! longer holds as it was) is fetched by the restore as usual: deltas
//! never make an apply fail.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;

use bytes::Bytes;
use serde::Serialize;

use crate::core::ccr::delta::{
    apply, best_base, decode_batch, encode, end_len, ends_rule_out, saves_enough, Answer, Ask,
    Delta, MAX_ANSWER_PAYLOAD, MAX_ASKS,
};
use crate::core::format::blob::BlobEntry;
use crate::core::format::codec::Codec;
use crate::core::format::id::{Id, IdSet};
use crate::core::format::index::RepoIndex;
use crate::core::plan::restore::{RestorePlan, TargetState};
use crate::native::error::Result;
use crate::native::job::Abort;
use crate::native::repo::Repo;
use crate::native::restore::{chunk_spans, HeldChunks, Planned, RestoreOptions};
use crate::native::runtime::block_on;
use crate::repo::reader::Bases;
use crate::repo::restore::{prepare, RestoreChoice};

/// The most plain bytes of new chunks asked for in one request (the answer
/// is at most about three quarters of it).
const BATCH_BYTES: u64 = 8 << 20;
/// Requests in flight at once: the leader reads and compares chunks while
/// the follower rebuilds the answer before.
const IN_FLIGHT: usize = 2;
/// Answers rebuilt and not yet written that the requests may run ahead of
/// the restore by (each at most about [`BATCH_BYTES`] of chunks).
pub const AHEAD: usize = 2;

/// Where chunk deltas come from: the leader node, over HTTP. Asked from
/// [`IN_FLIGHT`] threads at once, always with `whole` (see
/// `core::ccr::delta`).
pub trait DeltaSource: Sync {
    /// The leader's batch answer to `asks` (`core::ccr::delta`'s framing),
    /// or why there is none.
    fn deltas(&self, asks: &[Ask]) -> std::result::Result<Bytes, String>;
}

/// The leader's answers to `asks` from its checkpoint repository `repo`
/// (whose index is `index`), in their order: a delta where one saves
/// enough, else with `whole` the chunk as stored, else nothing. Nothing
/// too for a chunk it does not have (pruned since) and past
/// [`MAX_ANSWER_PAYLOAD`] bytes of payload.
pub fn answer(repo: &Repo, index: &RepoIndex, asks: &[Ask], whole: bool) -> Vec<Answer> {
    let mut budget = MAX_ANSWER_PAYLOAD;
    asks.iter()
        .map(|a| {
            let answer = answer_one(repo, index, a, whole);
            match budget.checked_sub(answer.payload_len()) {
                Some(left) => {
                    budget = left;
                    answer
                }
                None => Answer::None,
            }
        })
        .collect()
}

fn answer_one(repo: &Repo, index: &RepoIndex, ask: &Ask, whole: bool) -> Answer {
    let Ok((entry, stored)) = repo.stored_blob(index, &ask.id) else {
        return Answer::None;
    };
    // Unchecked: the follower checks each chunk it rebuilds or takes.
    // A patch blob decodes over its base, which the follower may not
    // hold: it is answered as a delta or not at all.
    let patch = entry.codec == Codec::Patch;
    let new = if patch {
        repo.read_blob_unchecked(index, &ask.id)
            .ok()
            .map(Cow::Owned)
    } else {
        repo.reader()
            .decode_unchecked(&entry, &stored, &Bases::none())
            .ok()
    };
    let delta = new
        .filter(|new| !base_ends_rule_out(repo, index, &ask.base, new))
        .and_then(|new| {
            let base = repo.read_blob_unchecked(index, &ask.base).ok()?;
            let d = encode(&base, &new);
            saves_enough(&d, new.len()).then_some(d)
        });
    match delta {
        Some(d) => Answer::Delta(d),
        None if whole && !patch => Answer::Stored(stored),
        None => Answer::None,
    }
}

/// Whether the ends of `base` alone show that no delta of `new` from it
/// is worth sending (`core::ccr::delta::ends_rule_out`), read by range
/// where the base is stored raw; a rewritten file's chunk then costs its
/// base's ends, not its whole.
fn base_ends_rule_out(repo: &Repo, index: &RepoIndex, base: &Id, new: &[u8]) -> bool {
    let n = end_len(new.len()) as u64;
    let Some(len) = index.get(base).map(|l| u64::from(l.raw_len)) else {
        return false;
    };
    if n == 0 || len < n {
        return false;
    }
    let read = |range| repo.raw_blob_range(index, base, range).ok().flatten();
    match (read(0..n), read(len - n..len)) {
        (Some(head), Some(tail)) => ends_rule_out(new, &head, &tail),
        _ => false,
    }
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
    /// Chunks rebuilt and found right (the restore writes them instead of
    /// fetching them).
    pub chunks: u64,
    /// Chunks no delta saved enough on, sent whole by the leader and
    /// found right (not fetched again either).
    pub whole: u64,
    /// Bytes of the leader's answers.
    pub bytes_received: u64,
    /// Requests that failed or were refused (their chunks are fetched).
    pub failed_requests: u64,
}

/// A chunk to ask for, and where its base lies in the live folder.
struct Wanted {
    ask: Ask,
    /// The chunk's index entry (how a whole answer is opened).
    entry: BlobEntry,
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
                entry: blob.entry,
                len,
                path,
                offset,
                base_len,
            });
        }
    }
    out
}

/// The chunks to ask for: those `next`, the plan of restore `opts`, fetches
/// that have a base in the held checkpoint.
pub struct Asks(Vec<Wanted>);

impl Asks {
    /// The chunks asked for (each may come rebuilt, whole, or not at all).
    pub fn ids(&self) -> IdSet {
        self.0.iter().map(|w| w.ask.id).collect()
    }
}

/// What to ask the leader for before restore `opts`, whose plan is
/// `next`.
pub fn asks(
    repo: &Repo,
    deltas: &Deltas,
    next: &RestorePlan,
    opts: &RestoreOptions,
) -> Result<Asks> {
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
    Ok(Asks(wanted(next, &held)))
}

/// Asks the leader (`source`) for `asks` and sends the chunks it gives,
/// rebuilt from their bases in the live folder `data` or whole, on `out`
/// a request's worth at a time; stops when nobody receives them.
pub fn get(
    repo: &Repo,
    source: &dyn DeltaSource,
    asks: &Asks,
    data: &Path,
    abort: &Abort,
    out: SyncSender<HeldChunks>,
) -> Result<DeltaUse> {
    let requests = batched(&asks.0);
    let taken = AtomicUsize::new(0);
    let workers = IN_FLIGHT.min(requests.len());
    let outcomes: Vec<Result<DeltaUse>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let out = out.clone();
                let (taken, requests) = (&taken, &requests);
                s.spawn(move || -> Result<DeltaUse> {
                    let mut used = DeltaUse::default();
                    while let Some(b) = requests.get(taken.fetch_add(1, Ordering::Relaxed)) {
                        abort.check("restore")?;
                        let mut chunks = HeldChunks::default();
                        one_batch(repo, source, b, data, &mut chunks, &mut used);
                        if !chunks.is_empty() && out.send(chunks).is_err() {
                            break;
                        }
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
    for outcome in outcomes {
        let u = outcome?;
        used.asked += u.asked;
        used.chunks += u.chunks;
        used.whole += u.whole;
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

/// One request, and the chunks its answer rebuilds, into `chunks`.
fn one_batch(
    repo: &Repo,
    source: &dyn DeltaSource,
    batch: &[Wanted],
    data: &Path,
    chunks: &mut HeldChunks,
    used: &mut DeltaUse,
) {
    let asks: Vec<Ask> = batch.iter().map(|w| w.ask).collect();
    used.asked += asks.len() as u64;
    let answer = match source.deltas(&asks) {
        Ok(a) => a,
        Err(_) => {
            used.failed_requests += 1;
            return;
        }
    };
    used.bytes_received += answer.len() as u64;
    let Ok(entries) = decode_batch(&answer, asks.len()) else {
        used.failed_requests += 1;
        return;
    };
    for (w, answer) in batch.iter().zip(entries) {
        match answer {
            Answer::None => {}
            Answer::Delta(d) => {
                if let Some(chunk) = rebuild(repo, w, &d, data) {
                    chunks.put(w.ask.id, Bytes::from(chunk));
                    used.chunks += 1;
                }
            }
            Answer::Stored(stored) => {
                // A patch blob fails here (no bases) and is read later
                // the usual way; leaders never send one.
                if let Ok(chunk) = repo.decode_checked(&w.entry, &stored, &Bases::none()) {
                    let chunk = match chunk {
                        Cow::Borrowed(plain) => stored.slice_ref(plain),
                        Cow::Owned(plain) => Bytes::from(plain),
                    };
                    chunks.put(w.ask.id, chunk);
                    used.whole += 1;
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted_of(len: u64) -> Wanted {
        let id = Id([0; 32]);
        Wanted {
            ask: Ask { id, base: id },
            entry: BlobEntry {
                id,
                offset: 0,
                stored_len: 0,
                raw_len: 0,
                kind: crate::core::format::blob::BlobKind::Data,
                codec: crate::core::format::codec::Codec::Raw,
            },
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
