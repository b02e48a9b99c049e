//! Repository settings: read-only mode and transfer rate limits.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use snapkeep::storage::guard::ThrottledStore;
use snapkeep::storage::memory::MemoryStore;
use snapkeep::storage::{PutMode, Storage};

#[test]
fn a_readonly_repository_refuses_every_write_and_still_reads() {
    let (t, src, repo, _) = scene();
    write(&src.join("idx/f"), &noise(100_000, 1));
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let set = json(&["repo", "settings", s(&repo), "--readonly", "true"]);
    assert_eq!(set["settings"]["readonly"], true);

    for args in [
        vec!["snapshot", "create", s(&repo), "s2", "--source", s(&src)],
        vec!["snapshot", "delete", s(&repo), "s1"],
        vec!["repo", "verify", s(&repo)],
        vec!["repo", "analyze", s(&repo)],
        vec!["repo", "cleanup", s(&repo)],
    ] {
        let err = fails(&args);
        assert!(err.contains("read-only"), "{args:?}: {err}");
    }
    // Reads work and nothing changed.
    ok(&["repo", "cleanup", s(&repo), "--dry-run"]);
    assert_eq!(json(&["snapshot", "list", s(&repo)])["total"], 1);
    ok(&["repo", "check", s(&repo), "--read-data"]);
    let dst = t.path().join("dst");
    ok(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    assert!(
        !repo.join("inflight").exists()
            || std::fs::read_dir(repo.join("inflight"))
                .unwrap()
                .next()
                .is_none()
    );

    json(&["repo", "settings", s(&repo), "--readonly", "false"]);
    ok(&["snapshot", "create", s(&repo), "s2", "--source", s(&src)]);
    assert_eq!(json(&["snapshot", "list", s(&repo)])["total"], 2);
}

fn rate(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / took.as_secs_f64()
}

#[test]
fn throttled_transfers_stay_within_ten_percent_of_the_limit() {
    let limit = 10u64 << 20;
    let inner: Arc<dyn Storage> = Arc::new(MemoryStore::new());
    let store = ThrottledStore::new(inner, Some(limit), Some(limit));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let chunk = Bytes::from(noise(1 << 20, 2));
    let total = 20u64 << 20;
    rt.block_on(async {
        let started = Instant::now();
        for i in 0..20 {
            store
                .put(&format!("k{i}"), chunk.clone(), PutMode::Overwrite)
                .await
                .unwrap();
        }
        let up = rate(total, started.elapsed());
        let started = Instant::now();
        for i in 0..20 {
            store.get(&format!("k{i}"), None).await.unwrap();
        }
        let down = rate(total, started.elapsed());
        for r in [up, down] {
            let ratio = r / limit as f64;
            assert!(
                (0.9..=1.1).contains(&ratio),
                "achieved {:.2} of the limit",
                ratio
            );
        }
    });
}

#[test]
fn snapshot_and_restore_honour_flags_and_stored_limits() {
    let (t, src, repo, _) = scene();
    write(&src.join("idx/data.bin"), &noise(20 << 20, 3));
    init(&repo);
    let limit = 8u64 << 20;
    // Whole-command wall time includes process start and reading the
    // source, so the floor is looser than the limiter's own test above.
    let within = |achieved: f64| (0.75..=1.1).contains(&(achieved / limit as f64));
    let started = Instant::now();
    let out = json(&[
        "snapshot",
        "create",
        s(&repo),
        "s1",
        "--source",
        s(&src),
        "--max-snapshot-bytes-per-sec",
        "8MiB",
    ]);
    let uploaded = out["snapshot"]["storage"]["bytes_uploaded"]
        .as_u64()
        .unwrap();
    let achieved = rate(uploaded, started.elapsed());
    assert!(
        within(achieved),
        "uploaded at {achieved:.0} B/s with a {limit} B/s limit"
    );

    // A limit stored in the repository applies without a flag.
    json(&[
        "repo",
        "settings",
        s(&repo),
        "--max-restore-bytes-per-sec",
        "8MiB",
    ]);
    let started = Instant::now();
    let dst = t.path().join("dst");
    ok(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    let achieved = rate(20 << 20, started.elapsed());
    assert!(
        within(achieved),
        "restored at {achieved:.0} B/s with a {limit} B/s limit"
    );
    assert_same_tree(&src.join("idx"), &dst.join("idx"));
    let shown = json(&["repo", "settings", s(&repo)]);
    assert_eq!(shown["settings"]["max_restore_bytes_per_sec"], limit);
}
