//! Ctrl-C during `snapshot create`, through the real binary: the command
//! says it stopped, removes its in-flight marker, keeps what it uploaded,
//! and a rerun of the same command uploads only what is still missing.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const MIB: u64 = 1 << 20;

/// Stored bytes of every pack in `repo`.
fn pack_bytes(repo: &Path) -> u64 {
    pack_files(repo)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

fn create_args<'a>(repo: &'a Path, src: &'a Path) -> Vec<&'a str> {
    vec![
        "snapshot",
        "create",
        s(repo),
        "nightly",
        "--source",
        s(src),
        // Slow enough to stop half-way: 48 MiB at 8 MiB/s.
        "--max-snapshot-bytes-per-sec",
        "8MiB",
    ]
}

/// `bytes_uploaded` of a `--json` create.
fn uploaded(args: &[&str]) -> u64 {
    json(args)["snapshot"]["storage"]["bytes_uploaded"]
        .as_u64()
        .unwrap()
}

#[test]
fn ctrl_c_keeps_the_uploads_and_a_rerun_uploads_only_the_rest() {
    let t = tempfile::tempdir().unwrap();
    let (repo, src) = (t.path().join("repo"), t.path().join("src"));
    for i in 0..6u64 {
        write(
            &src.join(format!("logs-{}/part-{i}", i % 2)),
            &noise(8 * MIB as usize, i + 1),
        );
    }
    // What one uninterrupted snapshot uploads, in a repository of its own.
    let fresh = t.path().join("fresh");
    init(&fresh);
    let full = uploaded(&create_args(&fresh, &src)[..6]);

    init(&repo);
    let child = Command::new(bin())
        .args(create_args(&repo, &src))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stop once the first pack is stored: the uploads already in flight
    // (a pack per upload thread) still land, and 48 MiB at 8 MiB/s leaves
    // more than those behind.
    let started = Instant::now();
    while pack_files(&repo).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "no packs");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("SIGINT received: stopping the snapshot"),
        "{err}"
    );
    assert!(
        err.contains("stopped: snapshot [nightly] was not taken")
            && err.contains("running the same command again uploads only the rest"),
        "{err}"
    );
    assert!(err.contains("error: snapshot aborted"), "{err}");
    let markers = std::fs::read_dir(repo.join("inflight"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(markers, 0, "the in-flight marker is removed");
    let list = json(&["snapshot", "list", s(&repo)]);
    assert_eq!(list["snapshots"].as_array().unwrap().len(), 0, "{list}");
    let kept = pack_bytes(&repo);
    assert!(kept >= 4 * MIB && kept < full, "kept {kept} of {full}");

    // The rerun uploads what is missing, not what the first run stored.
    let rest = uploaded(&create_args(&repo, &src));
    eprintln!("full snapshot {full} B; stopped run kept {kept} B; rerun uploaded {rest} B");
    assert!(
        rest + kept <= full + MIB,
        "rerun uploaded {rest} B although {kept} B of {full} B were kept"
    );
    assert_eq!(pack_bytes(&repo), kept + rest);
    let check = ok(&["repo", "check", s(&repo), "--read-data"]);
    assert!(check.contains("no problems found"), "{check}");
    let target = t.path().join("restored");
    ok(&["restore", s(&repo), "nightly", "--target", s(&target)]);
    assert_same_tree(&src, &target);
}

/// Packs a stopped run kept and no snapshot ever used are reclaimed by the
/// next delete's GC (the kept index file is listed, not pinned).
#[test]
fn kept_uploads_no_snapshot_uses_go_with_the_next_delete() {
    let t = tempfile::tempdir().unwrap();
    let (repo, src) = (t.path().join("repo"), t.path().join("src"));
    for i in 0..6u64 {
        write(
            &src.join(format!("logs-0/part-{i}")),
            &noise(8 * MIB as usize, i + 100),
        );
    }
    write(&t.path().join("small/logs-0/a"), b"small");
    init(&repo);
    let mut child = Command::new(bin())
        .args(create_args(&repo, &src))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while pack_files(&repo).len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(60), "no packs");
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(!child.wait().unwrap().success());
    assert!(pack_bytes(&repo) > 0);
    // Other data is snapshotted and deleted; the GC drops the kept packs.
    let small = t.path().join("small");
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "other",
        "--source",
        s(&small),
    ]);
    ok(&["snapshot", "delete", s(&repo), "other"]);
    assert_eq!(pack_bytes(&repo), 0, "{:?}", pack_files(&repo));
    let check = ok(&["repo", "check", s(&repo)]);
    assert!(check.contains("no problems found"), "{check}");
}

/// A restore killed half-way and run again says it resumes and how far
/// the first run got; its `--json` progress events carry elapsed time and
/// percent besides the byte counts they always had.
#[test]
fn a_resumed_restore_says_how_far_the_first_run_got() {
    let t = tempfile::tempdir().unwrap();
    let (repo, src) = (t.path().join("repo"), t.path().join("src"));
    for i in 0..6u64 {
        write(
            &src.join(format!("logs-0/big-{i}")),
            &noise(8 * MIB as usize, i + 7),
        );
    }
    for i in 0..20u64 {
        write(
            &src.join(format!("logs-0/small-{i}")),
            &noise(100_000, i + 70),
        );
    }
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let target = t.path().join("target");
    let mut first = Command::new(bin())
        .args([
            "restore",
            s(&repo),
            "s1",
            "--target",
            s(&target),
            "--max-restore-bytes-per-sec",
            "8MiB",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    first.kill().unwrap();
    first.wait().unwrap();

    let out = Command::new(bin())
        .args(["restore", s(&repo), "s1", "--target", s(&target), "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let events: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let resuming = events
        .iter()
        .find(|e| e["event"] == "resuming")
        .unwrap_or_else(|| panic!("no resuming event: {err}"));
    assert_eq!(resuming["files_total"], 26, "{resuming}");
    assert!(
        resuming["bytes_in_place"].as_u64().unwrap() > 0,
        "{resuming}"
    );
    let done = events.iter().find(|e| e["event"] == "done").unwrap();
    assert_eq!(done["percent"], 100.0, "{done}");
    assert!(done["elapsed_secs"].as_f64().is_some(), "{done}");
    assert!(done["bytes_done"].as_u64().is_some(), "{done}");
    assert_same_tree(&src, &target);
}
