//! The live status of a running snapshot, read from other threads while the
//! snapshot runs (the node's `_status`). The pipeline only adds to atomics;
//! the index table is set once, after the walk, and read without a lock.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::core::es::status::{Counts, IndexStatus, RunState, ShardStage, SnapshotStatus};
use crate::native::backup::interrupted::Kept;
use crate::native::clock::now_millis;

/// An index as the walk listed it.
#[derive(Debug, Clone)]
pub struct ListedIndex {
    pub name: String,
    /// Every file of the index.
    pub total: Counts,
    /// The files to read (new or changed since the parent snapshot).
    pub incremental: Counts,
    /// Their positions in the snapshot's job list.
    pub jobs: Range<usize>,
}

#[derive(Debug)]
struct Tracked {
    listed: ListedIndex,
    read_files: AtomicU64,
    read_bytes: AtomicU64,
}

#[derive(Debug, Default)]
struct Header {
    snapshot: String,
    uuid: String,
    include_global_state: Option<bool>,
    start_ms: i64,
    end_ms: Option<i64>,
}

/// Shared between the snapshot and its observers (`Arc<SnapshotProgress>`
/// in `SnapshotOptions::status`).
#[derive(Debug, Default)]
pub struct SnapshotProgress {
    header: Mutex<Header>,
    /// [`RunState`] as a number.
    state: AtomicU8,
    /// [`ShardStage`] of every index, as a number.
    stage: AtomicU8,
    indices: OnceLock<Vec<Tracked>>,
    /// What a stopped snapshot kept for its rerun ([`super::interrupted`]).
    kept: OnceLock<Kept>,
}

const STATES: [RunState; 5] = [
    RunState::Init,
    RunState::Started,
    RunState::Success,
    RunState::Failed,
    RunState::Aborted,
];
const STAGES: [ShardStage; 5] = [
    ShardStage::Init,
    ShardStage::Started,
    ShardStage::Finalize,
    ShardStage::Done,
    ShardStage::Failure,
];

fn code<T: PartialEq>(all: &[T], v: T) -> u8 {
    all.iter().position(|x| *x == v).unwrap_or(0) as u8
}

impl SnapshotProgress {
    pub fn new() -> SnapshotProgress {
        SnapshotProgress::default()
    }

    pub(crate) fn begin(&self, snapshot: &str, uuid: &str, global: bool, start_ms: i64) {
        let mut h = self.header.lock().unwrap();
        h.snapshot = snapshot.to_string();
        h.uuid = uuid.to_string();
        h.include_global_state = Some(global);
        h.start_ms = start_ms;
    }

    /// The walk is done: the indices and what each will read.
    pub(crate) fn listed(&self, indices: Vec<ListedIndex>) {
        let tracked = indices
            .into_iter()
            .map(|listed| Tracked {
                listed,
                read_files: AtomicU64::new(0),
                read_bytes: AtomicU64::new(0),
            })
            .collect();
        let _ = self.indices.set(tracked);
        self.set(RunState::Started, ShardStage::Started);
    }

    /// Job `job` (of `size` bytes) has been read.
    pub(crate) fn file_read(&self, job: usize, size: u64) {
        let Some(indices) = self.indices.get() else {
            return;
        };
        // Job ranges follow each other in index order.
        let i = indices.partition_point(|t| t.listed.jobs.end <= job);
        if let Some(t) = indices.get(i).filter(|t| t.listed.jobs.contains(&job)) {
            t.read_files.fetch_add(1, Ordering::Relaxed);
            t.read_bytes.fetch_add(size, Ordering::Relaxed);
        }
    }

    pub(crate) fn set(&self, state: RunState, stage: ShardStage) {
        self.state.store(code(&STATES, state), Ordering::Relaxed);
        self.stage.store(code(&STAGES, stage), Ordering::Relaxed);
        if matches!(
            state,
            RunState::Success | RunState::Failed | RunState::Aborted
        ) {
            self.header.lock().unwrap().end_ms = Some(now_millis());
        }
    }

    /// The snapshot stopped before its commit and kept `kept`.
    pub(crate) fn stopped(&self, kept: Kept) {
        let _ = self.kept.set(kept);
    }

    /// What a stopped snapshot kept for its rerun, once it stopped.
    pub fn kept(&self) -> Option<Kept> {
        self.kept.get().copied()
    }

    /// Whether the snapshot has ended (committed, failed or aborted).
    pub fn is_finished(&self) -> bool {
        self.state.load(Ordering::Relaxed) >= code(&STATES, RunState::Success)
    }

    /// A copy of the status as of now.
    pub fn snapshot(&self) -> SnapshotStatus {
        let h = self.header.lock().unwrap();
        let now = h.end_ms.unwrap_or_else(now_millis);
        let time = now.saturating_sub(h.start_ms).max(0);
        let stage = STAGES[self.stage.load(Ordering::Relaxed) as usize % STAGES.len()];
        let mut indices = BTreeMap::new();
        for t in self.indices.get().map(Vec::as_slice).unwrap_or(&[]) {
            let l = &t.listed;
            let processed = Counts {
                files: t.read_files.load(Ordering::Relaxed),
                bytes: t.read_bytes.load(Ordering::Relaxed),
            };
            indices.insert(
                l.name.clone(),
                IndexStatus {
                    stage,
                    incremental: l.incremental,
                    processed,
                    total: l.total,
                    start_time_in_millis: h.start_ms,
                    time_in_millis: time,
                },
            );
        }
        SnapshotStatus {
            snapshot: h.snapshot.clone(),
            uuid: h.uuid.clone(),
            state: STATES[self.state.load(Ordering::Relaxed) as usize % STATES.len()],
            include_global_state: h.include_global_state,
            start_time_in_millis: h.start_ms,
            time_in_millis: time,
            indices,
        }
    }
}
