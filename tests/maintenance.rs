//! repo verify, analyze and cleanup.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::servers::{create_bucket, moto, s3_env};
use common::*;

/// Plants objects no snapshot references, as an interrupted run leaves them.
fn plant_orphans(repo: &Path, age: Duration) -> Vec<std::path::PathBuf> {
    let hex = "ab".repeat(32);
    let paths = vec![
        repo.join(format!("packs/ab/{hex}")),
        repo.join(format!("index/{}", "cd".repeat(32))),
        repo.join("snapshots/00000000-dead-beef-0000-000000000000.json"),
    ];
    for p in &paths {
        write(p, &noise(1000, 1));
        set_age(p, age);
    }
    paths
}

#[test]
fn cleanup_removes_old_unreferenced_objects_and_nothing_else() {
    let (t, src, repo, _) = scene();
    write(&src.join("idx/f"), &noise(200_000, 2));
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let orphans = plant_orphans(&repo, Duration::from_secs(2 * 3600));
    let young = repo.join(format!("packs/ef/{}", "ef".repeat(32)));
    write(&young, b"just uploaded by a running snapshot");
    let foreign = repo.join("notes/readme.txt");
    write(&foreign, b"not ours");
    set_age(&foreign, Duration::from_secs(3 * 3600));

    let dry = json(&["repo", "cleanup", s(&repo), "--dry-run"]);
    assert_eq!(dry["objects"], 3, "{dry}");
    assert_eq!(dry["kept_young"], 1, "{dry}");
    // Written after the newest root: the rule that keeps it is named.
    assert_eq!(dry["kept"]["after_newest_root"], 1, "{dry}");
    let text = ok(&["repo", "cleanup", s(&repo), "--dry-run"]);
    assert!(
        text.contains("kept 1 written after the newest root"),
        "{text}"
    );
    assert!(
        orphans.iter().all(|p| p.exists()),
        "dry run deletes nothing"
    );

    let done = json(&["repo", "cleanup", s(&repo)]);
    assert_eq!(done["objects"], 3);
    assert!(orphans.iter().all(|p| !p.exists()));
    assert!(young.exists() && foreign.exists());
    ok(&["repo", "check", s(&repo), "--read-data"]);
    let dst = t.path().join("dst");
    ok(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    assert_same_tree(&src.join("idx"), &dst.join("idx"));
    // Written after the newest root, the young object may belong to a
    // root that was lost: even with no grace it stays ...
    assert_eq!(
        json(&["repo", "cleanup", s(&repo), "--grace", "0s"])["objects"],
        0
    );
    // ... until a newer root is committed.
    ok(&["snapshot", "create", s(&repo), "s2", "--source", s(&src)]);
    assert_eq!(
        json(&["repo", "cleanup", s(&repo), "--grace", "0s"])["objects"],
        1
    );
}

#[test]
fn cleanup_keeps_what_a_running_snapshot_uploaded_until_its_marker_goes_stale() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    // A snapshot that started two hours ago and is still alive.
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let marker = repo.join("inflight/1111.json");
    let started = now_ms - 2 * 3600 * 1000;
    write(
        &marker,
        format!(
            r#"{{"uuid":"1111","snapshot":"long","started_ms":{started},"heartbeat_ms":{now_ms}}}"#
        )
        .as_bytes(),
    );
    let orphans = plant_orphans(&repo, Duration::from_secs(90 * 60));
    let out = json(&["repo", "cleanup", s(&repo), "--grace", "10m"]);
    assert_eq!(out["objects"], 0, "{out}");
    assert!(orphans.iter().all(|p| p.exists()));
    // The same snapshot, killed long ago: its marker no longer protects.
    write(
        &marker,
        format!(
            r#"{{"uuid":"1111","snapshot":"long","started_ms":{started},"heartbeat_ms":{started}}}"#
        )
        .as_bytes(),
    );
    set_age(&marker, Duration::from_secs(2 * 3600));
    let out = json(&["repo", "cleanup", s(&repo), "--grace", "10m"]);
    // The orphans and the dead marker itself.
    assert_eq!(out["objects"], 4, "{out}");
    assert!(!marker.exists());
}

#[test]
fn verify_and_analyze_pass_on_the_filesystem_and_on_s3() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    ok(&["repo", "verify", s(&repo)]);
    let a = json(&["repo", "analyze", s(&repo)]);
    assert_eq!(a["failed"], 0, "{a}");
    assert_eq!(a["probes"].as_array().unwrap().len(), 6);
    // The probes leave no objects behind (empty folders may remain).
    let mut stack = vec![repo.join("verify")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            assert!(p.is_dir(), "probe object left behind: {}", p.display());
            stack.push(p);
        }
    }

    let server = moto();
    create_bucket(server.port, "analyze");
    let env = s3_env(server.port);
    ok_env(&env, &["repo", "init", "s3://analyze/r"]);
    ok_env(&env, &["repo", "verify", "s3://analyze/r"]);
    let a: serde_json::Value = serde_json::from_str(&ok_env(
        &env,
        &["repo", "analyze", "s3://analyze/r", "--json"],
    ))
    .unwrap();
    assert_eq!(a["failed"], 0, "{a}");
}

#[test]
fn a_killed_snapshot_blocks_nobody_and_its_uploads_are_reclaimed_after_the_grace_period() {
    let (t, src, repo, _) = scene();
    for i in 0..6 {
        write(&src.join(format!("big/part{i}")), &noise(40 << 20, 10 + i));
    }
    write(&t.path().join("small/idx/f"), b"small");
    init(&repo);
    let mut child = std::process::Command::new(bin())
        .args([
            "snapshot",
            "create",
            s(&repo),
            "doomed",
            "--source",
            s(&src),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as it has uploaded a pack.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // A finished pack (not just its folder or a temporary file).
    let has_pack = || {
        fs::read_dir(repo.join("packs"))
            .into_iter()
            .flatten()
            .any(|d| {
                fs::read_dir(d.unwrap().path())
                    .into_iter()
                    .flatten()
                    .any(|f| {
                        !f.unwrap()
                            .file_name()
                            .to_string_lossy()
                            .starts_with(".tmp-")
                    })
            })
    };

    while !has_pack() {
        assert!(std::time::Instant::now() < deadline, "no pack was uploaded");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the snapshot finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        repo.join("inflight").read_dir().unwrap().next().is_some(),
        "the killed process left its marker"
    );

    // Nobody is blocked: other snapshots, deletes and checks proceed.
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "after",
        "--source",
        s(&t.path().join("small")),
    ]);
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "after-2",
        "--source",
        s(&t.path().join("small")),
    ]);
    ok(&["snapshot", "delete", s(&repo), "after"]);
    ok(&["repo", "check", s(&repo), "--read-data"]);
    assert_eq!(json(&["snapshot", "list", s(&repo)])["total"], 1);

    // Its uploads survive cleanup while its marker could still be alive...
    let kept = json(&["repo", "cleanup", s(&repo), "--grace", "0s"]);
    assert_eq!(kept["objects"], 0, "{kept}");
    assert!(
        kept["kept"]["live_operation"].as_u64().unwrap() >= 1,
        "{kept}"
    );
    let text = ok(&["repo", "cleanup", s(&repo), "--grace", "0s", "--dry-run"]);
    assert!(text.contains("in-flight marker is live"), "{text}");
    // ...and go once the marker is stale (as it is 10 minutes after a kill).
    for e in fs::read_dir(repo.join("inflight")).unwrap() {
        let p = e.unwrap().path();
        let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        m["heartbeat_ms"] = serde_json::json!(0);
        fs::write(&p, serde_json::to_vec(&m).unwrap()).unwrap();
        set_age(&p, Duration::from_secs(3600));
    }
    let reclaimed = json(&["repo", "cleanup", s(&repo), "--grace", "0s"]);
    assert!(reclaimed["objects"].as_u64().unwrap() >= 1, "{reclaimed}");
    ok(&["repo", "check", s(&repo), "--read-data"]);
    let dst = t.path().join("dst");
    ok(&["restore", s(&repo), "after-2", "--target", s(&dst)]);
    assert_eq!(fs::read(dst.join("idx/f")).unwrap(), b"small");
}

#[test]
fn cleanup_reclaims_a_killed_writers_old_temporary_files_and_nothing_younger() {
    let (_t, src, repo, _) = scene();
    write(&src.join("idx/f"), &noise(200_000, 3));
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    // A pack half-written when its writer was killed two hours ago, and one
    // being written right now.
    let abandoned = repo.join("packs/ab/.tmp-4242-0-17");
    write(&abandoned, &noise(5000, 4));
    set_age(&abandoned, Duration::from_secs(2 * 3600));
    let in_progress = repo.join("packs/ab/.tmp-4243-0-18");
    write(&in_progress, b"still being written");

    // A grace period longer than its age keeps it.
    let kept = json(&["repo", "cleanup", s(&repo), "--grace", "3h"]);
    assert_eq!(kept["objects"], 0, "{kept}");
    let dry = json(&["repo", "cleanup", s(&repo), "--grace", "0s", "--dry-run"]);
    assert_eq!(dry["objects"], 1, "{dry}");
    assert_eq!(dry["bytes"], 5000, "{dry}");
    assert_eq!(dry["keys"][0], "packs/ab/.tmp-4242-0-17", "{dry}");
    assert!(abandoned.exists(), "dry run deletes nothing");
    // Even with no grace, a temporary file younger than ten minutes stays.
    let done = json(&["repo", "cleanup", s(&repo), "--grace", "0s"]);
    assert_eq!(done["objects"], 1, "{done}");
    assert!(!abandoned.exists() && in_progress.exists());
    ok(&["repo", "check", s(&repo), "--read-data"]);
}
