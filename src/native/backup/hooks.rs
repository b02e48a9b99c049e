//! Consistency hooks around each index's read: its `before` hook runs just
//! before the index is walked, its `after` hook as soon as the last of its
//! files is read (each index on its own, while other indices are still
//! being read), and in any case before the snapshot returns, aborted or
//! failed ones included.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::core::format::manifest::Failure;
use crate::core::policy::hooks::{HookExit, HookFailure, Stage};

/// What runs around each index's read (the node's `[[hooks]]`).
pub trait IndexHooks: Send + Sync + std::fmt::Debug {
    /// Runs `index`'s hook for `stage`, if it has one.
    fn run(&self, stage: Stage, index: &str, path: &Path) -> Result<(), HookFailure>;
}

/// An index whose files are being read, and how many are left.
struct Reading {
    name: String,
    jobs: Range<usize>,
    left: AtomicUsize,
}

/// The indices of one snapshot whose `before` hook ran and whose `after`
/// hook is still due. Dropping it runs every due `after` hook, so an error
/// or abort anywhere in the snapshot still closes each bracket.
pub struct Brackets {
    hooks: Option<Arc<dyn IndexHooks>>,
    open: Mutex<BTreeMap<String, PathBuf>>,
    reading: Vec<Reading>,
    failed: Mutex<Vec<Failure>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Brackets {
    pub fn new(hooks: Option<Arc<dyn IndexHooks>>) -> Brackets {
        Brackets {
            hooks,
            open: Mutex::new(BTreeMap::new()),
            reading: Vec::new(),
            failed: Mutex::new(Vec::new()),
        }
    }

    /// Runs `index`'s `before` hook. On failure the index must not be
    /// read: its failure is returned (with its `after` hook's, which runs
    /// at once to undo what a half-done `before` may have done, unless the
    /// `before` hook could not even be started).
    pub fn enter(&self, index: &str, path: &Path) -> Result<(), Vec<Failure>> {
        let Some(hooks) = &self.hooks else {
            return Ok(());
        };
        match hooks.run(Stage::Before, index, path) {
            Ok(()) => {
                lock(&self.open).insert(index.to_string(), path.to_path_buf());
                Ok(())
            }
            Err(before) => {
                let mut failures = vec![before.of_index(index)];
                if !matches!(before.exit, HookExit::Spawn(_)) {
                    if let Err(after) = hooks.run(Stage::After, index, path) {
                        failures.push(after.of_index(index));
                    }
                }
                Err(failures)
            }
        }
    }

    /// Learns which files each entered index reads (`jobs` of the
    /// snapshot's list); an index with none to read is left at once.
    pub fn expect_reads<'a>(&mut self, indices: impl Iterator<Item = (&'a str, Range<usize>)>) {
        for (name, jobs) in indices {
            if !lock(&self.open).contains_key(name) {
                continue;
            }
            if jobs.is_empty() {
                self.leave(name);
            } else {
                self.reading.push(Reading {
                    name: name.to_string(),
                    left: AtomicUsize::new(jobs.len()),
                    jobs,
                });
            }
        }
        self.reading.sort_by_key(|r| r.jobs.start);
    }

    /// Job `job` of the snapshot's list is read for good (or failed, or was
    /// skipped); the last one of an index runs its `after` hook.
    pub fn job_settled(&self, job: usize) {
        let at = self.reading.partition_point(|r| r.jobs.start <= job);
        let Some(r) = at.checked_sub(1).map(|i| &self.reading[i]) else {
            return;
        };
        if r.jobs.contains(&job) && r.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.leave(&r.name);
        }
    }

    /// Runs every `after` hook still due and returns the indices whose
    /// `after` hook failed: their data may be inconsistent.
    pub fn finish(&self) -> Vec<Failure> {
        let due: Vec<String> = lock(&self.open).keys().cloned().collect();
        for name in due {
            self.leave(&name);
        }
        std::mem::take(&mut *lock(&self.failed))
    }

    fn leave(&self, index: &str) {
        let Some(path) = lock(&self.open).remove(index) else {
            return;
        };
        let Some(hooks) = &self.hooks else {
            return;
        };
        if let Err(e) = hooks.run(Stage::After, index, &path) {
            lock(&self.failed).push(e.of_index(index));
        }
    }
}

impl Drop for Brackets {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records each run; fails the stages it is told to.
    #[derive(Debug, Default)]
    struct Recorder {
        runs: Mutex<Vec<String>>,
        fail: Vec<(Stage, &'static str, HookExit)>,
    }

    impl IndexHooks for Recorder {
        fn run(&self, stage: Stage, index: &str, _: &Path) -> Result<(), HookFailure> {
            lock(&self.runs).push(format!("{stage} {index}"));
            match self
                .fail
                .iter()
                .find(|(s, i, _)| *s == stage && *i == index)
            {
                Some((_, _, exit)) => Err(HookFailure {
                    stage,
                    program: "h".into(),
                    exit: exit.clone(),
                    stderr_tail: None,
                }),
                None => Ok(()),
            }
        }
    }

    fn brackets(r: &Arc<Recorder>) -> Brackets {
        Brackets::new(Some(r.clone() as Arc<dyn IndexHooks>))
    }

    fn runs(r: &Recorder) -> Vec<String> {
        lock(&r.runs).clone()
    }

    #[test]
    fn each_index_is_left_after_its_last_read() {
        let r = Arc::new(Recorder::default());
        let mut b = brackets(&r);
        for name in ["a", "b", "c"] {
            b.enter(name, Path::new("/x")).unwrap();
        }
        b.expect_reads([("a", 0..2), ("b", 2..2), ("c", 2..3)].into_iter());
        assert_eq!(runs(&r)[3..], ["after b"], "nothing to read: left at once");
        b.job_settled(2);
        b.job_settled(0);
        assert_eq!(runs(&r)[4..], ["after c"]);
        b.job_settled(1);
        assert_eq!(runs(&r)[5..], ["after a"]);
        assert!(b.finish().is_empty());
        assert_eq!(runs(&r).len(), 6, "each after hook ran once");
    }

    #[test]
    fn due_after_hooks_run_when_the_snapshot_ends_early() {
        let r = Arc::new(Recorder::default());
        {
            let mut b = brackets(&r);
            b.enter("a", Path::new("/x")).unwrap();
            b.enter("b", Path::new("/x")).unwrap();
            b.expect_reads([("a", 0..1), ("b", 1..3)].into_iter());
            b.job_settled(0);
            // An error returns here with b still being read.
        }
        assert_eq!(runs(&r), ["before a", "before b", "after a", "after b"]);
    }

    #[test]
    fn failed_hooks_become_failures_of_their_index() {
        let r = Arc::new(Recorder {
            fail: vec![
                (Stage::Before, "a", HookExit::Code(1)),
                (Stage::Before, "s", HookExit::Spawn("no such file".into())),
                (Stage::After, "b", HookExit::TimedOut { secs: 1 }),
            ],
            ..Default::default()
        });
        let mut b = brackets(&r);
        let a = b.enter("a", Path::new("/x")).unwrap_err();
        assert_eq!(a.len(), 1);
        assert!(a[0].reason.contains("exit code 1"), "{a:?}");
        let s = b.enter("s", Path::new("/x")).unwrap_err();
        assert_eq!(s.len(), 1);
        b.enter("b", Path::new("/x")).unwrap();
        b.expect_reads([("a", 0..1), ("b", 1..2)].into_iter());
        b.job_settled(0);
        b.job_settled(1);
        let failed = b.finish();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].index, "b");
        assert!(failed[0].reason.contains("timed out"));
        assert_eq!(
            runs(&r),
            ["before a", "after a", "before s", "before b", "after b"],
            "a failed before hook is undone at once, one never started is not"
        );
    }
}
