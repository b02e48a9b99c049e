//! The live status of a running restore, read from other threads while it
//! runs (the node's `_recovery` and `_cat/recovery`). The fetch only adds
//! to atomics; the per-file table is set once the plan is known.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::core::es::recovery::{IndexRecovery, Recovered, RecoveryStage, RestoreStatus};
use crate::core::plan::restore::RestorePlan;
use crate::native::clock::now_millis;

/// Files outside every index (the global state).
const NO_INDEX: u32 = u32::MAX;

#[derive(Debug)]
struct Index {
    target: String,
    source: String,
    files: Recovered,
    bytes: Recovered,
    files_recovered: AtomicU64,
    bytes_recovered: AtomicU64,
}

#[derive(Debug)]
struct Tracked {
    indices: Vec<Index>,
    /// Each planned file's index in `indices`, or [`NO_INDEX`].
    index_of: Vec<u32>,
    /// Fetched placements each file still waits for.
    waiting: Vec<AtomicU32>,
}

#[derive(Debug, Default)]
struct Header {
    snapshot: String,
    start_ms: i64,
    stop_ms: Option<i64>,
}

/// Shared between the restore and its observers (`Arc<RestoreProgress>`
/// in `RestoreOptions::status`).
#[derive(Debug, Default)]
pub struct RestoreProgress {
    header: Mutex<Header>,
    stage: AtomicU8,
    tracked: OnceLock<Tracked>,
}

const STAGES: [RecoveryStage; 4] = [
    RecoveryStage::Init,
    RecoveryStage::Index,
    RecoveryStage::Finalize,
    RecoveryStage::Done,
];

impl RestoreProgress {
    pub fn new() -> RestoreProgress {
        RestoreProgress::default()
    }

    pub(crate) fn begin(&self, snapshot: &str) {
        let mut h = self.header.lock().unwrap();
        h.snapshot = snapshot.to_string();
        h.start_ms = now_millis();
    }

    /// The plan is known: what each index holds, and what is reused (all
    /// bytes that are not fetched: files complete in the target, blobs
    /// copied from it, parts an interrupted run wrote).
    pub(crate) fn planned(&self, plan: &RestorePlan) {
        let position = |path: &str| {
            let top = path.split('/').next().unwrap_or("");
            plan.indices
                .iter()
                .position(|(_, t)| t == top)
                .map_or(NO_INDEX, |i| i as u32)
        };
        let index_of: Vec<u32> = plan.files.iter().map(|f| position(&f.path)).collect();
        let mut fetched = vec![(0u32, 0u64); plan.files.len()];
        for b in plan.reads.iter().flat_map(|r| &r.blobs) {
            for p in &b.places {
                let f = &mut fetched[p.file as usize];
                f.0 += 1;
                f.1 += u64::from(b.entry.raw_len);
            }
        }
        let mut indices: Vec<Index> = plan
            .indices
            .iter()
            .map(|(source, target)| Index {
                target: target.clone(),
                source: source.clone(),
                files: Recovered::default(),
                bytes: Recovered::default(),
                files_recovered: AtomicU64::new(0),
                bytes_recovered: AtomicU64::new(0),
            })
            .collect();
        for ((f, &i), &(places, bytes)) in plan.files.iter().zip(&index_of).zip(&fetched) {
            let Some(ix) = indices.get_mut(i as usize) else {
                continue;
            };
            ix.files.total += 1;
            ix.bytes.total += f.size;
            ix.bytes.reused += f.size.saturating_sub(bytes);
            if places == 0 {
                ix.files.reused += 1;
            }
        }
        let waiting = fetched.iter().map(|&(n, _)| AtomicU32::new(n)).collect();
        let _ = self.tracked.set(Tracked {
            indices,
            index_of,
            waiting,
        });
        self.set_stage(RecoveryStage::Index);
    }

    /// `bytes` were fetched and written into planned file `file`.
    pub(crate) fn fetched(&self, file: usize, bytes: u64) {
        let Some(t) = self.tracked.get() else {
            return;
        };
        let Some(ix) = t.indices.get(t.index_of[file] as usize) else {
            return;
        };
        ix.bytes_recovered.fetch_add(bytes, Ordering::Relaxed);
        if t.waiting[file].fetch_sub(1, Ordering::Relaxed) == 1 {
            ix.files_recovered.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn set_stage(&self, stage: RecoveryStage) {
        let code = STAGES.iter().position(|s| *s == stage).unwrap_or(0);
        self.stage.store(code as u8, Ordering::Relaxed);
    }

    /// The restore has ended (done, failed or aborted).
    pub(crate) fn stop(&self) {
        self.header.lock().unwrap().stop_ms = Some(now_millis());
    }

    /// A copy of the status as of now.
    pub fn snapshot(&self) -> RestoreStatus {
        let h = self.header.lock().unwrap();
        let stage = STAGES[self.stage.load(Ordering::Relaxed) as usize % STAGES.len()];
        let mut indices = BTreeMap::new();
        for ix in self.tracked.get().map_or(&[][..], |t| &t.indices) {
            let mut files = ix.files;
            files.recovered = ix.files_recovered.load(Ordering::Relaxed);
            let mut bytes = ix.bytes;
            bytes.recovered = ix.bytes_recovered.load(Ordering::Relaxed);
            let recovery = IndexRecovery {
                source_index: ix.source.clone(),
                stage,
                files,
                bytes,
            };
            indices.insert(ix.target.clone(), recovery);
        }
        RestoreStatus {
            snapshot: h.snapshot.clone(),
            restore_uuid: None,
            start_time_in_millis: h.start_ms,
            stop_time_in_millis: h.stop_ms,
            indices,
        }
    }
}
