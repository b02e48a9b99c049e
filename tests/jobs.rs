//! Snapshots and restores run on a thread of their own, as the node runs
//! them: live status while they run and after, and aborts that leave the
//! repository consistent (a snapshot) or resumable (a restore).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use snapkeep::core::es::recovery::RecoveryStage;
use snapkeep::core::es::status::{Counts, RunState, ShardStage, SnapshotStatus};
use snapkeep::core::format::config::RepoConfig;
use snapkeep::core::policy::selection::Selection;
use snapkeep::error::Error;
use snapkeep::native::backup::status::SnapshotProgress;
use snapkeep::native::backup::{create_snapshot, SnapshotOptions};
use snapkeep::native::inflight;
use snapkeep::native::location::Location;
use snapkeep::native::repo::Repo;
use snapkeep::native::restore::status::RestoreProgress;
use snapkeep::native::restore::{restore, RestoreOptions, STAGING_PREFIX};

fn open(repo: &Path) -> Repo {
    Repo::open(&Location::Local(repo.to_path_buf())).unwrap()
}

fn init_repo(repo: &Path) -> Repo {
    Repo::init(
        &Location::Local(repo.to_path_buf()),
        RepoConfig::new("jobs".into(), 0),
    )
    .unwrap()
}

fn snapshot_opts(name: &str, src: &Path) -> SnapshotOptions {
    SnapshotOptions {
        name: name.into(),
        source: src.to_path_buf(),
        selection: Selection::all(),
        status: Some(Arc::new(SnapshotProgress::new())),
        ..Default::default()
    }
}

fn restore_opts(name: &str, dst: &Path) -> RestoreOptions {
    RestoreOptions {
        snapshot: name.into(),
        target: dst.to_path_buf(),
        selection: Selection::all(),
        status: Some(Arc::new(RestoreProgress::new())),
        ..Default::default()
    }
}

/// `files` files of `size` bytes of noise in index `index`.
fn noise_files(src: &Path, index: &str, files: u64, size: usize) {
    for i in 0..files {
        write(
            &src.join(format!("{index}/f{i:03}.bin")),
            &noise(size, i + 7),
        );
    }
}

fn totals(s: &SnapshotStatus) -> (Counts, Counts, Counts) {
    let mut t = (Counts::default(), Counts::default(), Counts::default());
    for i in s.indices.values() {
        t.0.files += i.incremental.files;
        t.0.bytes += i.incremental.bytes;
        t.1.files += i.processed.files;
        t.1.bytes += i.processed.bytes;
        t.2.files += i.total.files;
        t.2.bytes += i.total.bytes;
    }
    t
}

#[test]
fn status_reaches_its_totals_and_counts_only_changed_files_as_incremental() {
    let (_t, src, repo_dir, _dst) = scene();
    write(&src.join("logs/a.log"), b"first line\n");
    write(&src.join("logs/b.log"), &noise(100_000, 1));
    write(&src.join("metrics/m.bin"), &noise(300_000, 2));
    let repo = init_repo(&repo_dir);

    let first = snapshot_opts("one", &src);
    let out = create_snapshot(&repo, &first).unwrap();
    let live = first.status.as_ref().unwrap().snapshot();
    assert_eq!(live.state, RunState::Success);
    assert_eq!(live.snapshot, "one");
    assert_eq!(live.uuid, out.manifest.uuid);
    let (inc, processed, total) = totals(&live);
    assert_eq!(total.files, 3);
    assert_eq!(total.bytes, 11 + 100_000 + 300_000);
    assert_eq!(
        processed, total,
        "processed reaches total (all incremental)"
    );
    assert_eq!(inc, total, "a first snapshot reads everything");
    assert!(live.indices.values().all(|i| i.stage == ShardStage::Done));
    // The finished snapshot's status (from its manifest) has the same totals.
    let finished = SnapshotStatus::finished(&out.manifest).to_json("r");
    assert_eq!(finished["stats"]["total"]["size_in_bytes"], total.bytes);

    write(&src.join("logs/b.log"), &noise(123_456, 3));
    let second = snapshot_opts("two", &src);
    create_snapshot(&repo, &second).unwrap();
    let live = second.status.as_ref().unwrap().snapshot();
    let logs = &live.indices["logs"];
    assert_eq!(
        logs.incremental,
        Counts {
            files: 1,
            bytes: 123_456
        },
        "only the changed file is incremental"
    );
    assert_eq!(
        logs.processed, logs.incremental,
        "processed reaches incremental"
    );
    assert_eq!(live.indices["metrics"].incremental, Counts::default());
    assert_eq!(totals(&live).2.files, 3);
}

/// Polls `until` every 10 ms for at most `limit`.
fn wait_for(limit: Duration, mut until: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if until() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn an_aborted_snapshot_commits_nothing_and_cleanup_reclaims_its_uploads() {
    let (_t, src, repo_dir, _dst) = scene();
    noise_files(&src, "big", 24, 12 << 20);
    init_repo(&repo_dir);
    let opts = snapshot_opts("doomed", &src);
    let (status, abort) = (opts.status.clone().unwrap(), opts.abort.clone());
    let repo = open(&repo_dir);
    let running = thread::spawn(move || create_snapshot(&repo, &opts));

    let midway = wait_for(Duration::from_secs(60), || {
        let s = status.snapshot();
        let (_, processed, total) = totals(&s);
        s.state == RunState::Started && processed.bytes > 0 && processed.bytes < total.bytes
    });
    assert!(
        midway,
        "the snapshot was seen running: {:?}",
        status.snapshot()
    );
    let seen = status.snapshot();
    assert_eq!(seen.indices["big"].stage, ShardStage::Started);
    assert_eq!(seen.indices["big"].total.files, 24);
    let asked = Instant::now();
    abort.abort();
    let out = running.join().unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "stopped in {:?}",
        asked.elapsed()
    );
    assert!(
        matches!(out, Err(Error::Aborted(_))),
        "{:?}",
        out.map(|_| ())
    );
    assert_eq!(status.snapshot().state, RunState::Aborted);
    let markers = inflight::scan(&open(&repo_dir), i64::MAX / 2).unwrap();
    assert!(
        markers.live.is_empty() && markers.stale.is_empty(),
        "the in-flight marker is finished"
    );

    let list = json(&["snapshot", "list", s(&repo_dir)]);
    assert_eq!(list["total"], 0, "{list}");
    ok(&["repo", "check", s(&repo_dir)]);
    assert!(!pack_files(&repo_dir).is_empty(), "some data was uploaded");
    let cleaned = json(&["repo", "cleanup", s(&repo_dir), "--grace", "0s"]);
    assert!(cleaned["objects"].as_u64().unwrap() >= 1, "{cleaned}");
    assert!(
        pack_files(&repo_dir).is_empty(),
        "cleanup reclaimed every pack"
    );
    ok(&["repo", "check", s(&repo_dir), "--read-data"]);
}

fn staging_folders(dst: &Path) -> usize {
    std::fs::read_dir(dst)
        .map(|d| {
            d.filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with(STAGING_PREFIX)
            })
            .count()
        })
        .unwrap_or(0)
}

#[test]
fn an_aborted_restore_leaves_staging_that_a_second_restore_resumes() {
    let (_t, src, repo_dir, dst) = scene();
    noise_files(&src, "data", 12, 8 << 20);
    let repo = init_repo(&repo_dir);
    create_snapshot(&repo, &snapshot_opts("s", &src)).unwrap();

    // Downloads throttled so the restore is still running when aborted.
    let slow = open(&repo_dir).with_limits(None, Some(24 << 20));
    let opts = restore_opts("s", &dst);
    let (status, abort) = (opts.status.clone().unwrap(), opts.abort.clone());
    let running = thread::spawn(move || restore(&slow, &opts));
    let midway = wait_for(Duration::from_secs(60), || {
        let r = status.snapshot();
        r.indices
            .get("data")
            .is_some_and(|i| i.bytes.recovered > 0 && i.bytes.recovered < i.bytes.total)
    });
    assert!(
        midway,
        "the restore was seen running: {:?}",
        status.snapshot()
    );
    assert_eq!(
        status.snapshot().indices["data"].stage,
        RecoveryStage::Index
    );
    abort.abort();
    let out = running.join().unwrap();
    assert!(
        matches!(out, Err(Error::Aborted(_))),
        "{:?}",
        out.map(|_| ())
    );
    assert_eq!(staging_folders(&dst), 1, "the staging folder is kept");

    let again = restore_opts("s", &dst);
    restore(&repo, &again).unwrap();
    assert_same_tree(&src, &dst);
    assert_eq!(staging_folders(&dst), 0);
    let done = again.status.as_ref().unwrap().snapshot();
    let data = &done.indices["data"];
    assert_eq!(data.stage, RecoveryStage::Done);
    assert!(
        data.bytes.reused > 0,
        "the interrupted run's work is reused"
    );
    assert_eq!(data.bytes.reused + data.bytes.recovered, data.bytes.total);
}

#[test]
fn restore_status_counts_files_already_in_the_target_as_reused() {
    let (_t, src, repo_dir, dst) = scene();
    noise_files(&src, "data", 6, 200_000);
    let repo = init_repo(&repo_dir);
    create_snapshot(&repo, &snapshot_opts("s", &src)).unwrap();
    restore(&repo, &restore_opts("s", &dst)).unwrap();
    write(&dst.join("data/f002.bin"), &noise(200_000, 99));

    let mut over = restore_opts("s", &dst);
    over.overwrite = true;
    restore(&repo, &over).unwrap();
    assert_same_tree(&src, &dst);
    let r = over.status.as_ref().unwrap().snapshot();
    let data = &r.indices["data"];
    assert_eq!(data.stage, RecoveryStage::Done);
    assert_eq!((data.files.total, data.files.reused), (6, 5));
    assert_eq!(data.files.recovered, 1);
    assert_eq!(data.bytes.total, 6 * 200_000);
    assert_eq!(data.bytes.reused, 5 * 200_000);
    assert_eq!(data.bytes.recovered, 200_000);
    let node = snapkeep::core::es::recovery::TargetNode { id: "i", name: "n" };
    let shard = r.shard_json("repo", "data", node, 0).unwrap();
    assert_eq!(shard["index"]["size"]["percent"], "100.0%");
    assert!(r.stop_time_in_millis.is_some());
}

/// Records each hook run; its first `before` aborts the snapshot.
#[derive(Debug)]
struct AbortingHooks {
    abort: snapkeep::native::job::Abort,
    runs: std::sync::Mutex<Vec<String>>,
}

impl snapkeep::native::backup::hooks::IndexHooks for AbortingHooks {
    fn run(
        &self,
        stage: snapkeep::core::policy::hooks::Stage,
        index: &str,
        _: &Path,
    ) -> Result<(), snapkeep::core::policy::hooks::HookFailure> {
        self.runs.lock().unwrap().push(format!("{stage} {index}"));
        self.abort.abort();
        Ok(())
    }
}

#[test]
fn an_aborted_snapshot_still_runs_each_due_after_hook() {
    let dir = tempfile::tempdir().unwrap();
    let (src, repo_dir) = (dir.path().join("src"), dir.path().join("repo"));
    noise_files(&src, "a", 3, 1000);
    noise_files(&src, "b", 3, 1000);
    let repo = init_repo(&repo_dir);
    let hooks = Arc::new(AbortingHooks {
        abort: snapkeep::native::job::Abort::new(),
        runs: Default::default(),
    });
    let opts = SnapshotOptions {
        abort: hooks.abort.clone(),
        hooks: Some(hooks.clone()),
        ..snapshot_opts("s", &src)
    };
    let out = create_snapshot(&repo, &opts);
    assert!(matches!(out, Err(Error::Aborted(_))), "{out:?}");
    let mut runs = hooks.runs.lock().unwrap().clone();
    runs.sort();
    assert_eq!(runs, ["after a", "after b", "before a", "before b"]);
    assert!(open(&repo_dir)
        .root_and_index()
        .unwrap()
        .0
        .snapshots
        .is_empty());
}
