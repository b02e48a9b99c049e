//! Storage failures injected with the failing-store wrapper: every failure
//! gives a clear error, leaves the repository valid, and a rerun succeeds.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use snapkeep::core::format::config::RepoConfig;
use snapkeep::core::policy::selection::Selection;
use snapkeep::native::backup::{create_snapshot, SnapshotOptions};
use snapkeep::native::check::{check, ReadData};
use snapkeep::native::repo::Repo;
use snapkeep::native::restore::{restore, RestoreOptions};
use snapkeep::storage::faulty::{Fault, FaultyStore, Op, When};
use snapkeep::storage::local::LocalStore;
use snapkeep::storage::retry::RetryStore;
use snapkeep::storage::{Storage, StorageError};

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// A repository with small packs (so a snapshot writes several) and a
    /// source of a few MiB.
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("repo")).unwrap();
        let mut config = RepoConfig::new("faults".into(), 0);
        config.chunker = snapkeep::core::chunker::ChunkerParams {
            min: 16 << 10,
            avg: 64 << 10,
            max: 256 << 10,
            ..Default::default()
        };
        config.pack_size = 256 << 10;
        Repo::init_in(
            Arc::new(LocalStore::open(&dir.path().join("repo")).unwrap()),
            config,
        )
        .unwrap();
        for i in 0..6u64 {
            write(
                &dir.path().join(format!("src/idx/f{i}")),
                &noise(500_000, i),
            );
        }
        Setup { dir }
    }

    fn store(&self, faults: Vec<Fault>) -> Arc<dyn Storage> {
        self.faulty_store(faults).0
    }

    /// The repository's store with `faults` injected under the retry
    /// wrapper, and the injector, which counts the faults that fired.
    fn faulty_store(&self, faults: Vec<Fault>) -> (Arc<dyn Storage>, Arc<FaultyStore>) {
        let local: Arc<dyn Storage> =
            Arc::new(LocalStore::open(&self.dir.path().join("repo")).unwrap());
        let faulty = Arc::new(FaultyStore::new(local, faults));
        let store = RetryStore::with_policy(faulty.clone(), 4, Duration::from_millis(1));
        (Arc::new(store), faulty)
    }

    fn snapshot(&self, store: Arc<dyn Storage>, name: &str) -> Result<(), String> {
        let repo = Repo::open_in(store).map_err(|e| e.to_string())?;
        let opts = SnapshotOptions {
            name: name.into(),
            source: self.dir.path().join("src"),
            selection: Selection::all(),
            include_global_state: true,
            ..Default::default()
        };
        create_snapshot(&repo, &opts)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// check passes and every listed snapshot restores identical.
    fn assert_valid(&self, expect_snapshots: usize) {
        let repo = Repo::open_in(self.store(vec![])).unwrap();
        let report = check(&repo, ReadData::All, false).unwrap();
        assert!(report.is_ok(), "{:?}", report.findings);
        let root = repo.root().unwrap();
        assert_eq!(root.snapshots.len(), expect_snapshots);
        for s in &root.snapshots {
            let target = self.dir.path().join(format!("restore-{}", s.snapshot));
            restore(
                &repo,
                &RestoreOptions {
                    snapshot: s.snapshot.clone(),
                    target: target.clone(),
                    selection: Selection::all(),
                    ..Default::default()
                },
            )
            .unwrap();
            assert_same_tree(&self.dir.path().join("src/idx"), &target.join("idx"));
        }
    }
}

fn fault(op: Op, prefix: &str, skip: u32, times: u32, when: When, error: StorageError) -> Fault {
    Fault {
        op,
        key_prefix: prefix.into(),
        skip,
        times,
        when,
        error,
    }
}

fn io_error() -> StorageError {
    StorageError::Io {
        key: "injected".into(),
        detail: "injected failure".into(),
    }
}

fn unavailable() -> StorageError {
    StorageError::Unavailable {
        detail: "injected transient failure".into(),
    }
}

#[test]
fn a_server_failing_mid_upload_leaves_the_repository_valid_and_a_rerun_succeeds() {
    let s = Setup::new();
    let (store, faulty) = s.faulty_store(vec![fault(
        Op::Put,
        "packs/",
        2,
        1,
        When::Before,
        io_error(),
    )]);
    let err = s.snapshot(store, "s1").unwrap_err();
    assert!(err.contains("injected failure"), "{err}");
    assert_eq!(faulty.fired(), [1]);
    s.assert_valid(0);
    s.snapshot(s.store(vec![]), "s1").unwrap();
    s.assert_valid(1);
}

#[test]
fn failures_at_each_commit_step_leave_the_repository_valid() {
    for prefix in ["index/", "snapshots/", "index-"] {
        let s = Setup::new();
        let (store, faulty) =
            s.faulty_store(vec![fault(Op::Put, prefix, 0, 1, When::Before, io_error())]);
        let err = s.snapshot(store, "s1").unwrap_err();
        assert!(err.contains("injected failure"), "{prefix}: {err}");
        assert_eq!(faulty.fired(), [1], "{prefix}");
        s.assert_valid(0);
        s.snapshot(s.store(vec![]), "s1").unwrap();
        s.assert_valid(1);
    }
}

#[test]
fn transient_failures_are_retried() {
    let s = Setup::new();
    let faults = vec![
        fault(Op::Put, "packs/", 1, 2, When::Before, unavailable()),
        fault(Op::Get, "index", 0, 1, When::Before, unavailable()),
        fault(Op::Put, "index-", 0, 3, When::Before, unavailable()),
    ];
    let (store, faulty) = s.faulty_store(faults);
    s.snapshot(store, "s1").unwrap();
    assert_eq!(faulty.fired(), [2, 1, 3]);
    s.assert_valid(1);
}

#[test]
fn an_ambiguous_commit_is_recognised_as_our_own() {
    // The root put takes effect but the client sees a dropped connection;
    // the retry finds the object there and must not report failure or
    // commit twice.
    let s = Setup::new();
    let faults = vec![
        fault(Op::Put, "index-", 0, 1, When::After, unavailable()),
        fault(Op::Put, "snapshots/", 0, 1, When::After, unavailable()),
    ];
    let (store, faulty) = s.faulty_store(faults);
    s.snapshot(store, "s1").unwrap();
    assert_eq!(faulty.fired(), [1, 1]);
    s.assert_valid(1);
}

#[test]
fn a_truncated_pack_is_reported_and_never_restored() {
    let s = Setup::new();
    s.snapshot(s.store(vec![]), "s1").unwrap();
    let packs = s.dir.path().join("repo/packs");
    let victim = std::fs::read_dir(&packs)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let repo = Repo::open_in(s.store(vec![])).unwrap();
    let report = check(&repo, ReadData::None, false).unwrap();
    assert!(
        !report.is_ok(),
        "structure check must notice the short pack"
    );
    let target = s.dir.path().join("out");
    let err = restore(
        &repo,
        &RestoreOptions {
            snapshot: "s1".into(),
            target,
            selection: Selection::all(),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("damaged") || err.to_string().contains("outside"),
        "{err}"
    );
}

#[test]
fn a_server_that_truncates_uploads_is_caught_before_commit() {
    // Truncated once: the size check re-uploads and the snapshot lands.
    let s = Setup::new();
    let (store, faulty) = s.faulty_store(vec![fault(
        Op::Put,
        "packs/",
        1,
        1,
        When::Truncated,
        io_error(),
    )]);
    s.snapshot(store, "s1").unwrap();
    assert_eq!(faulty.fired(), [1]);
    s.assert_valid(1);
    // Truncated every time: the snapshot fails before committing anything.
    let s = Setup::new();
    let (store, faulty) = s.faulty_store(vec![fault(
        Op::Put,
        "packs/",
        0,
        100,
        When::Truncated,
        io_error(),
    )]);
    let err = s.snapshot(store, "s1").unwrap_err();
    assert!(err.contains("storage kept"), "{err}");
    // A pack and its one re-upload at least, both cut short (packs in
    // flight on other upload threads may be cut too).
    let fired = faulty.fired()[0];
    assert!(fired >= 2, "fired {fired}");
    s.assert_valid(0);
    s.snapshot(s.store(vec![]), "s1").unwrap();
    s.assert_valid(1);
}
