//! The snapshots the node is taking now, from the moment a create is
//! accepted until its thread returns: what `_status`, `_current` and
//! listings show of them (their live [`SnapshotProgress`]), and what stops
//! them ([`Abort`], by DELETE or by shutdown).
//!
//! A snapshot's thread holds its [`Registration`]; dropping it (after
//! `create_snapshot` returned, or on a panic) takes the snapshot off the
//! list and wakes everyone waiting for its end, so the list never names a
//! snapshot that no thread works on.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::core::es::errors::EsError;
use crate::core::es::snapshot_info::Running;
use crate::core::es::status::{RunState, SnapshotStatus};
use crate::native::backup::status::SnapshotProgress;
use crate::native::backup::SnapshotOptions;
use crate::native::clock::now_millis;
use crate::native::error::Error;
use crate::native::job::Abort;

/// ES's placeholder for an id not known yet (the snapshot's thread picks
/// the uuid as it starts).
const UUID_NA: &str = "_na_";

/// How a running snapshot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Its root generation is written: it is a stored snapshot now.
    Committed,
    /// Stopped by its abort token before committing.
    Aborted,
    /// Failed (or its thread panicked) before committing.
    Failed,
}

/// One snapshot being taken.
#[derive(Debug)]
pub struct RunningSnapshot {
    pub repository: String,
    pub snapshot: String,
    /// When the create was accepted.
    pub start_time_in_millis: i64,
    pub include_global_state: bool,
    pub metadata: BTreeMap<String, String>,
    pub progress: Arc<SnapshotProgress>,
    pub abort: Abort,
    ended: watch::Sender<Option<Ending>>,
}

impl RunningSnapshot {
    /// The live status; before the snapshot's thread has started it, the
    /// accepted request's name and start (state `INIT`, no indices yet).
    pub fn status(&self) -> SnapshotStatus {
        let mut s = self.progress.snapshot();
        if s.snapshot.is_empty() {
            s.snapshot = self.snapshot.clone();
            s.uuid = UUID_NA.to_string();
            s.state = RunState::Init;
            s.include_global_state = Some(self.include_global_state);
            s.start_time_in_millis = self.start_time_in_millis;
            s.time_in_millis = (now_millis() - self.start_time_in_millis).max(0);
        }
        s
    }

    /// What `SnapshotInfo::in_progress` reports (indices once the walk
    /// has listed them).
    pub fn info(&self) -> Running {
        let s = self.status();
        Running {
            snapshot: s.snapshot,
            uuid: s.uuid,
            start_time_in_millis: s.start_time_in_millis,
            indices: s.indices.into_keys().collect(),
            include_global_state: self.include_global_state,
            metadata: self.metadata.clone(),
        }
    }

    /// Waits until the snapshot's thread has returned.
    pub async fn ended(&self) -> Ending {
        let mut rx = self.ended.subscribe();
        let ending = rx.wait_for(Option::is_some).await.map(|e| *e);
        // The sender lives in `self`: waiting cannot fail while we hold it.
        ending.ok().flatten().unwrap_or(Ending::Failed)
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<Arc<RunningSnapshot>>,
    /// Set at shutdown: no new snapshot starts.
    closed: bool,
}

/// The node's running snapshots (`Node::running`).
#[derive(Debug, Default)]
pub struct RunningSnapshots {
    inner: Arc<Mutex<Inner>>,
}

impl RunningSnapshots {
    /// Lists a snapshot that is about to start and gives `opts` the
    /// status and abort token the list reads and uses. A snapshot of the
    /// same name running in the same repository is ES's 400
    /// `snapshot_name_already_in_use_exception` (`... is already
    /// in-progress`); a stopping node refuses with 503.
    pub fn register(
        &self,
        repository: &str,
        opts: &mut SnapshotOptions,
    ) -> Result<Registration, EsError> {
        let mut inner = self.inner.lock().unwrap();
        if inner.closed {
            return Err(EsError::concurrent_snapshot_execution(
                repository,
                &opts.name,
                "the node is stopping",
            ));
        }
        let taken = inner
            .entries
            .iter()
            .any(|e| e.repository == repository && e.snapshot == opts.name);
        if taken {
            return Err(EsError::snapshot_name_already_in_use(
                repository, &opts.name, true,
            ));
        }
        let progress = Arc::new(SnapshotProgress::new());
        opts.status = Some(progress.clone());
        opts.abort = Abort::new();
        let entry = Arc::new(RunningSnapshot {
            repository: repository.to_string(),
            snapshot: opts.name.clone(),
            start_time_in_millis: now_millis(),
            include_global_state: opts.include_global_state,
            metadata: opts.metadata.clone(),
            progress,
            abort: opts.abort.clone(),
            ended: watch::Sender::new(None),
        });
        inner.entries.push(entry.clone());
        Ok(Registration {
            list: self.inner.clone(),
            entry,
            ending: Ending::Failed,
        })
    }

    /// The running snapshots of `repository` (every repository: `None`),
    /// in the order they were accepted.
    pub fn of(&self, repository: Option<&str>) -> Vec<Arc<RunningSnapshot>> {
        let inner = self.inner.lock().unwrap();
        inner
            .entries
            .iter()
            .filter(|e| repository.is_none_or(|r| e.repository == r))
            .cloned()
            .collect()
    }

    /// Whether the node is stopping (no new snapshot starts).
    pub fn is_closed(&self) -> bool {
        self.inner.lock().unwrap().closed
    }

    /// Shutdown: refuses new snapshots, aborts the running ones and waits
    /// up to `grace` for their threads to return. False if some are still
    /// running then.
    pub async fn abort_all(&self, grace: Duration) -> bool {
        let running = {
            let mut inner = self.inner.lock().unwrap();
            inner.closed = true;
            inner.entries.clone()
        };
        for r in &running {
            r.abort.abort();
        }
        let all_ended = futures::future::join_all(running.iter().map(|r| r.ended()));
        tokio::time::timeout(grace, all_ended).await.is_ok()
    }
}

/// Held by a snapshot's thread; see the module doc.
#[derive(Debug)]
pub struct Registration {
    list: Arc<Mutex<Inner>>,
    entry: Arc<RunningSnapshot>,
    ending: Ending,
}

impl Registration {
    /// Records how the snapshot ended; the registration is dropped next.
    pub fn finish<T>(mut self, outcome: &Result<T, Error>) {
        self.ending = match outcome {
            Ok(_) => Ending::Committed,
            Err(Error::Aborted(_)) => Ending::Aborted,
            Err(_) => Ending::Failed,
        };
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.list.lock().unwrap_or_else(|p| p.into_inner());
        inner.entries.retain(|e| !Arc::ptr_eq(e, &self.entry));
        drop(inner);
        self.entry.ended.send_replace(Some(self.ending));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(name: &str) -> SnapshotOptions {
        SnapshotOptions {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_name_runs_once_per_repository_and_is_listed_until_its_thread_returns() {
        let list = RunningSnapshots::default();
        let mut first = opts("s");
        let reg = list.register("r", &mut first).unwrap();
        assert!(first.status.is_some());
        let again = list.register("r", &mut opts("s")).unwrap_err();
        assert_eq!(again.kind, "snapshot_name_already_in_use_exception");
        assert!(
            again.reason.ends_with("is already in-progress"),
            "{}",
            again.reason
        );
        let other_repo = list.register("r2", &mut opts("s")).unwrap();
        assert_eq!(list.of(Some("r")).len(), 1);
        assert_eq!(list.of(None).len(), 2);
        let entry = list.of(Some("r"))[0].clone();
        assert_eq!(entry.status().snapshot, "s");
        assert_eq!(entry.status().uuid, UUID_NA);
        first.abort.abort();
        assert!(
            entry.abort.is_aborted(),
            "the list holds the snapshot's token"
        );
        reg.finish::<()>(&Err(Error::Aborted("snapshot")));
        assert!(list.of(Some("r")).is_empty());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(entry.ended()), Ending::Aborted);
        drop(other_repo);
        assert!(list.of(None).is_empty());
    }

    #[test]
    fn shutdown_aborts_every_snapshot_and_refuses_new_ones() {
        let list = RunningSnapshots::default();
        let mut o = opts("s");
        let reg = list.register("r", &mut o).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let worker = std::thread::spawn(move || {
            while !o.abort.is_aborted() {
                std::thread::sleep(Duration::from_millis(5));
            }
            reg.finish::<()>(&Err(Error::Aborted("snapshot")));
        });
        assert!(rt.block_on(list.abort_all(Duration::from_secs(20))));
        worker.join().unwrap();
        let refused = list.register("r", &mut opts("t")).unwrap_err();
        assert_eq!(refused.status, 503);
    }
}
