//! Snapshot lifecycle management on the node (issue #16): policies kept
//! in the state folder and in their repositories, a scheduler that loops
//! around `core::slm::slots::next_step`, runs that take snapshots through
//! the node's one create path, and retention that deletes through its one
//! delete path.
//!
//! ```text
//!  records.rs    slm.json: policies, results, counters, handled slots, mode
//!  history.rs    slm-history.jsonl: runs, skips, deletions (bounded)
//!  run.rs        run_slot: one run of a policy, start to recorded end
//!  scheduler.rs  the loop: next_step per policy, sleep until the next fire
//!  retention.rs  retention_plan per policy, deletions, counters
//!  follow.rs     policies put or deleted through other nodes
//! ```
//!
//! Every decision (when to fire, what to skip, what retention keeps, the
//! shapes reported) is the core's; this module keeps state and does IO.

pub mod follow;
pub mod history;
pub mod records;
pub mod retention;
pub mod run;
pub mod scheduler;

use std::path::{Path, PathBuf};

use tokio::sync::{Mutex, MutexGuard, Notify};

use crate::core::slm::report::OperationMode;
use crate::native::clock::now_millis;
use crate::node::error::NodeError;
use crate::node::reply::{internal, EsError};
use crate::node::state::write_atomic;

use history::{Entry, History};
use records::{SlmState, SLM_FILE};

/// What the node holds of the lifecycle (`Node::slm`).
#[derive(Debug)]
pub struct Slm {
    folder: PathBuf,
    /// Held while a change is made and written, so `slm.json` always
    /// matches memory and changes apply one at a time.
    state: Mutex<SlmState>,
    history: std::sync::Mutex<History>,
    /// Wakes the scheduler: a policy changed, a run ended, the mode changed.
    pub wake: Notify,
    /// `test.clock_offset_ms`.
    offset_ms: i64,
}

impl Slm {
    pub fn load(folder: &Path, offset_ms: i64) -> Result<Slm, NodeError> {
        Ok(Slm {
            folder: folder.to_path_buf(),
            state: Mutex::new(SlmState::load(folder)?),
            history: std::sync::Mutex::new(History::load(folder)),
            wake: Notify::new(),
            offset_ms,
        })
    }

    /// The lifecycle's clock: the system's, shifted by the test offset.
    pub fn now(&self) -> i64 {
        now_millis() + self.offset_ms
    }

    pub async fn lock(&self) -> MutexGuard<'_, SlmState> {
        self.state.lock().await
    }

    /// Writes `state` to `slm.json` (atomically; off the async threads).
    pub async fn save(&self, state: &SlmState) -> Result<(), EsError> {
        let folder = self.folder.clone();
        let file = state.file();
        tokio::task::spawn_blocking(move || write_atomic(&folder, SLM_FILE, &file))
            .await
            .map_err(|e| internal(e.to_string()))?
            .map_err(|e| internal(e.to_string()))
    }

    /// Saves, reporting a failure rather than returning it: for the
    /// scheduler and the end of runs, which have nobody to answer.
    pub async fn save_or_report(&self, state: &SlmState) {
        if let Err(e) = self.save(state).await {
            eprintln!(
                "snapkeep node: cannot save the lifecycle state: {}",
                e.reason
            );
        }
    }

    pub fn record(&self, entry: Entry) {
        self.history.lock().unwrap().append(entry);
    }

    pub fn history_of(&self, id: &str) -> Vec<Entry> {
        self.history.lock().unwrap().of(id)
    }

    pub fn mode(state: &SlmState) -> OperationMode {
        match (state.stopped, state.active_runs()) {
            (false, _) => OperationMode::Running,
            (true, 0) => OperationMode::Stopped,
            (true, _) => OperationMode::Stopping,
        }
    }
}
