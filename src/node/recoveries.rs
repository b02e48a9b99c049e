//! The restores this node ran or resumed since it started, for
//! `_recovery` and `_cat/recovery`. A run is registered when its restore
//! is accepted (or resumed at start) and reads its live status from the
//! native restore's [`RestoreProgress`] while it runs; each index shows
//! its latest restore only (ES keeps the latest recovery per shard).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::core::es::recovery::{IndexRecovery, RecoveryStage, RestoreStatus};
use crate::native::job::Abort;
use crate::native::restore::status::RestoreProgress;

/// One restore: what it writes, its live status and its abort token.
#[derive(Debug)]
pub struct Run {
    pub repository: String,
    pub snapshot: String,
    pub restore_uuid: String,
    pub start_ms: i64,
    /// (index in the snapshot, index it is restored as).
    pub indices: Vec<(String, String)>,
    pub progress: Arc<RestoreProgress>,
    pub abort: Abort,
    /// When the node saw it end (its thread answered, or it never ran).
    stop_ms: Option<i64>,
    failed: bool,
    /// The targets still shown: a later restore of an index, or its
    /// deletion, takes it away from this run.
    shown: BTreeSet<String>,
}

impl Run {
    pub fn new(
        repository: &str,
        snapshot: &str,
        restore_uuid: &str,
        start_ms: i64,
        indices: Vec<(String, String)>,
    ) -> Run {
        Run {
            repository: repository.to_string(),
            snapshot: snapshot.to_string(),
            restore_uuid: restore_uuid.to_string(),
            start_ms,
            shown: indices.iter().map(|(_, t)| t.clone()).collect(),
            indices,
            progress: Arc::new(RestoreProgress::new()),
            abort: Abort::new(),
            stop_ms: None,
            failed: false,
        }
    }

    /// The status as ES shows it: the live counts once the restore has
    /// planned, stage `INDEX` with zero counts before; `FAILED` after a
    /// failure.
    pub fn status(&self) -> RestoreStatus {
        let live = self.progress.snapshot();
        let mut indices = BTreeMap::new();
        for (source, target) in self.indices.iter().filter(|(_, t)| self.shown.contains(t)) {
            let mut index = live
                .indices
                .get(target)
                .cloned()
                .unwrap_or_else(|| IndexRecovery {
                    source_index: source.clone(),
                    stage: RecoveryStage::Index,
                    files: Default::default(),
                    bytes: Default::default(),
                });
            if index.stage == RecoveryStage::Init {
                index.stage = RecoveryStage::Index;
            }
            if self.failed {
                index.stage = RecoveryStage::Failed;
            }
            indices.insert(target.clone(), index);
        }
        RestoreStatus {
            snapshot: self.snapshot.clone(),
            restore_uuid: Some(self.restore_uuid.clone()),
            start_time_in_millis: self.start_ms,
            stop_time_in_millis: live.stop_time_in_millis.or(self.stop_ms),
            indices,
        }
    }

    pub fn ended(&self) -> bool {
        self.stop_ms.is_some()
    }
}

#[derive(Debug, Default)]
pub struct Recoveries(Mutex<Vec<Run>>);

impl Recoveries {
    fn all(&self) -> std::sync::MutexGuard<'_, Vec<Run>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `run`; its indices leave earlier runs.
    pub fn begin(&self, run: Run) {
        let mut all = self.all();
        for earlier in all.iter_mut() {
            earlier.shown.retain(|i| !run.shown.contains(i));
        }
        all.retain(|r| !r.shown.is_empty() || !r.ended());
        all.push(run);
    }

    /// Marks the run of `restore_uuid` ended.
    pub fn finish(&self, restore_uuid: &str, now_ms: i64, failed: bool) {
        let mut all = self.all();
        for r in all.iter_mut().filter(|r| r.restore_uuid == restore_uuid) {
            r.stop_ms = Some(now_ms);
            r.failed = failed;
        }
    }

    /// Every run's repository and status, oldest first.
    pub fn statuses(&self) -> Vec<(String, RestoreStatus, bool)> {
        self.all()
            .iter()
            .map(|r| (r.repository.clone(), r.status(), r.ended()))
            .collect()
    }

    /// Forgets a deleted index's record.
    pub fn forget(&self, index: &str) {
        let mut all = self.all();
        for r in all.iter_mut() {
            r.shown.remove(index);
        }
    }

    /// Whether a restore is writing (or about to write) `index` now.
    pub fn running(&self, index: &str) -> bool {
        self.all()
            .iter()
            .any(|r| !r.ended() && r.indices.iter().any(|(_, t)| t == index))
    }

    /// Whether a restore from `repository` is running now.
    pub fn uses(&self, repository: &str) -> bool {
        self.all()
            .iter()
            .any(|r| !r.ended() && r.repository == repository)
    }

    /// Asks every running restore to stop (the node is stopping; their
    /// records stay, so the next start resumes them).
    pub fn abort_all(&self) {
        for r in self.all().iter().filter(|r| !r.ended()) {
            r.abort.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(uuid: &str, targets: &[&str]) -> Run {
        let indices = targets
            .iter()
            .map(|t| (format!("src-{t}"), t.to_string()))
            .collect();
        Run::new("repo", "snap", uuid, 1_000, indices)
    }

    #[test]
    fn a_run_shows_index_before_planning_and_failed_after_failing() {
        let all = Recoveries::default();
        all.begin(run("a", &["x", "y"]));
        assert!(all.running("x") && all.running("y") && !all.running("z"));
        let (_, status, ended) = &all.statuses()[0];
        assert!(!ended);
        assert_eq!(status.indices["x"].stage, RecoveryStage::Index);
        assert_eq!(status.indices["x"].source_index, "src-x");
        assert_eq!(status.restore_uuid.as_deref(), Some("a"));
        all.finish("a", 2_000, true);
        assert!(!all.running("x"));
        let (_, status, ended) = &all.statuses()[0];
        assert!(ended);
        assert_eq!(status.indices["y"].stage, RecoveryStage::Failed);
        assert_eq!(status.stop_time_in_millis, Some(2_000));
    }

    #[test]
    fn a_later_restore_or_a_delete_takes_an_index_from_earlier_runs() {
        let all = Recoveries::default();
        all.begin(run("a", &["x", "y"]));
        all.finish("a", 2_000, false);
        all.begin(run("b", &["y"]));
        let shown: Vec<Vec<String>> = all
            .statuses()
            .iter()
            .map(|(_, s, _)| s.indices.keys().cloned().collect())
            .collect();
        assert_eq!(shown, vec![vec!["x".to_string()], vec!["y".to_string()]]);
        all.forget("x");
        assert_eq!(all.statuses()[0].1.indices.len(), 0);
        all.begin(run("c", &["q"]));
        assert_eq!(all.statuses().len(), 2, "an ended run showing nothing goes");
    }

    #[test]
    fn abort_all_reaches_running_restores_only() {
        let all = Recoveries::default();
        let (a, b) = (run("a", &["x"]), run("b", &["y"]));
        let (abort_a, abort_b) = (a.abort.clone(), b.abort.clone());
        all.begin(a);
        all.begin(b);
        all.finish("b", 5, false);
        all.abort_all();
        assert!(abort_a.is_aborted());
        assert!(!abort_b.is_aborted());
    }
}
