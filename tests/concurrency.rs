//! Several processes writing into one repository at once.

mod common;

use std::process::Command;

use common::*;

#[test]
fn concurrent_creates_from_separate_processes_all_land() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    let shared = noise(1 << 20, 99);
    let sources: Vec<_> = (0..6)
        .map(|i| {
            let src = t.path().join(format!("src{i}"));
            write(&src.join("idx/own"), &noise(300_000, i));
            write(&src.join("idx/shared"), &shared);
            src
        })
        .collect();
    // A repository that already holds snapshots, so writers also dedup
    // against committed data.
    for (i, src) in sources.iter().take(2).enumerate() {
        ok(&[
            "snapshot",
            "create",
            s(&repo),
            &format!("seq{i}"),
            "--source",
            s(src),
        ]);
    }
    // Six processes at once: every root commit but one per generation loses
    // the create-only race and must rebase.
    let mut procs: Vec<_> = sources
        .iter()
        .enumerate()
        .map(|(i, src)| {
            Command::new(bin())
                .args([
                    "snapshot",
                    "create",
                    s(&repo),
                    &format!("p{i}"),
                    "--source",
                    s(src),
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in procs.iter_mut() {
        assert!(p.wait().unwrap().success());
    }
    let list = json(&["snapshot", "list", s(&repo)]);
    assert_eq!(list["total"], 8);
    ok(&["repo", "check", s(&repo), "--read-data"]);
    for (i, src) in sources.iter().enumerate() {
        let dst = t.path().join(format!("dst{i}"));
        ok(&["restore", s(&repo), &format!("p{i}"), "--target", s(&dst)]);
        assert_same_tree(&src.join("idx"), &dst.join("idx"));
    }
}

/// A snapshot that deduplicated against data which a delete then dropped
/// from the newest root keeps that data: the delete leaves it to cleanup,
/// and cleanup keeps what the running snapshot's base root references, even
/// when the data is old and cleanup has no grace period.
#[test]
fn cleanup_keeps_data_a_paused_snapshot_reuses_after_a_delete_dropped_it() {
    let t = tempfile::tempdir().unwrap();
    let (old_src, new_src, repo) = (
        t.path().join("old"),
        t.path().join("new"),
        t.path().join("repo"),
    );
    let shared = noise(4 << 20, 7);
    write(&old_src.join("idx/shared"), &shared);
    write(&new_src.join("idx/shared"), &shared);
    for i in 0..4 {
        write(
            &new_src.join(format!("big/part{i}")),
            &noise(40 << 20, 70 + i),
        );
    }
    init(&repo);
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "old",
        "--source",
        s(&old_src),
    ]);
    let old_packs = pack_files(&repo);
    for p in &old_packs {
        set_age(p, std::time::Duration::from_secs(3 * 3600));
    }

    let mut child = Command::new(bin())
        .args([
            "snapshot",
            "create",
            s(&repo),
            "new",
            "--source",
            s(&new_src),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Pause it once it has read the index and uploaded a pack of its own.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while pack_files(&repo).len() == old_packs.len() {
        assert!(std::time::Instant::now() < deadline, "no pack was uploaded");
        assert!(child.try_wait().unwrap().is_none(), "finished too early");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success())
    };
    signal("-STOP");
    let deleted = json(&["snapshot", "delete", s(&repo), "old"]);
    assert_eq!(deleted["deferred_to_cleanup"], true, "{deleted}");
    let cleaned = json(&["repo", "cleanup", s(&repo), "--grace", "0s"]);
    signal("-CONT");
    for p in &old_packs {
        assert!(p.exists(), "cleanup removed {} ({cleaned})", p.display());
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(&["repo", "check", s(&repo), "--read-data"]);
    let dst = t.path().join("dst");
    ok(&["restore", s(&repo), "new", "--target", s(&dst)]);
    assert_same_tree(&new_src.join("idx"), &dst.join("idx"));
    assert_same_tree(&new_src.join("big"), &dst.join("big"));
    // Once nothing runs, the dropped data is garbage like any other.
    let reclaimed = json(&["repo", "cleanup", s(&repo), "--grace", "0s"]);
    ok(&["repo", "check", s(&repo), "--read-data"]);
    assert!(reclaimed["objects"].as_u64().unwrap() >= 1, "{reclaimed}");
}

/// Creates and deletes from separate processes at the same time. In every
/// round one writer re-snapshots exactly the data of the snapshot being
/// deleted, so its deduplicated blobs are garbage to the deleter unless the
/// commit protocol notices. Every operation must land or fail cleanly, and
/// afterwards the repository checks clean and every remaining snapshot
/// restores byte-identical.
fn race_creates_and_deletes(
    env: &[(String, String)],
    repo: &str,
    tmp: &std::path::Path,
    rounds: u64,
) {
    ok_env(env, &["repo", "init", repo]);
    let src = |k: u64| {
        let p = tmp.join(format!("src{k}"));
        if !p.exists() {
            write(&p.join("idx/shared"), &noise(1 << 20, 1));
            write(&p.join("idx/own"), &noise(6 << 20, 100 + k));
        }
        p
    };
    let spawn = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // name -> source round of every snapshot that exists.
    let mut live: Vec<(String, u64)> = Vec::new();
    ok_env(
        env,
        &["snapshot", "create", repo, "a0", "--source", s(&src(0))],
    );
    live.push(("a0".into(), 0));
    let mut clean_failures = 0;
    for k in 1..=rounds {
        let (new_src, old_src) = (src(k), src(k - 1));
        let (a, b) = (format!("a{k}"), format!("b{k}"));
        let victim = format!("a{}", k - 1);
        let procs = [
            spawn(&["snapshot", "create", repo, &a, "--source", s(&new_src)]),
            spawn(&["snapshot", "create", repo, &b, "--source", s(&old_src)]),
            spawn(&["snapshot", "delete", repo, &victim]),
            spawn(&["repo", "cleanup", repo, "--grace", "0s"]),
        ];
        let outcomes: Vec<_> = procs
            .into_iter()
            .map(|p| p.wait_with_output().unwrap())
            .collect();
        for (i, out) in outcomes.iter().enumerate() {
            let err = String::from_utf8_lossy(&out.stderr);
            match (i, out.status.success()) {
                (0, true) => live.push((a.clone(), k)),
                (1, true) => live.push((b.clone(), k - 1)),
                (2, true) => live.retain(|(n, _)| *n != victim),
                (2, false)
                    if err.contains("is missing") && !live.iter().any(|(n, _)| *n == victim) => {}
                (3, true) => {}
                (3, false) => panic!("cleanup failed: {err}"),
                (_, false) => {
                    // The one acceptable failure: a create whose reused data
                    // a concurrent delete removed; a rerun would succeed.
                    let role = ["create (new data)", "create (old data)", "delete"][i];
                    assert!(
                        err.contains("run the snapshot again"),
                        "unexpected failure of the {role} in round {k}: {err}"
                    );
                    clean_failures += 1;
                }
                _ => unreachable!(),
            }
        }
    }
    // Deletes leave packs alone while snapshots run, and a create whose base
    // was rewritten indexes the packs it reuses again: nobody should lose.
    assert_eq!(
        clean_failures, 0,
        "{repo}: creates refused after racing a delete"
    );
    ok_env(env, &["repo", "check", repo, "--read-data"]);
    // With nothing running, cleanup takes only garbage.
    ok_env(env, &["repo", "cleanup", repo, "--grace", "0s"]);
    ok_env(env, &["repo", "check", repo, "--read-data"]);
    let list: serde_json::Value =
        serde_json::from_str(&ok_env(env, &["snapshot", "list", repo, "--json"])).unwrap();
    assert_eq!(
        list["total"].as_u64().unwrap() as usize,
        live.len(),
        "{list}"
    );
    for (name, k) in &live {
        let dst = tmp.join(format!("dst-{name}"));
        ok_env(env, &["restore", repo, name, "--target", s(&dst)]);
        assert_same_tree(&src(*k).join("idx"), &dst.join("idx"));
    }
}

#[test]
fn creates_racing_deletes_never_leave_a_broken_repository() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    race_creates_and_deletes(&[], s(&repo), t.path(), 20);
}

#[test]
fn creates_racing_deletes_on_s3_never_leave_a_broken_repository() {
    let server = common::servers::moto();
    common::servers::create_bucket(server.port, "stress");
    let t = tempfile::tempdir().unwrap();
    race_creates_and_deletes(
        &common::servers::s3_env(server.port),
        "s3://stress/repo",
        t.path(),
        20,
    );
}

/// A writer that opened the repository long ago, while cleanup has since
/// removed old root generations, must commit on top of the newest root, not
/// into a removed generation's key where its commit would be invisible.
#[test]
fn a_long_open_writer_never_commits_into_a_removed_generation() {
    use snapkeep::core::format::root::{RepoSettings, RootChange};
    use snapkeep::native::location::Location;
    use snapkeep::native::repo::Repo;

    let (_t, src, repo, _) = scene();
    write(&src.join("idx/f"), b"data");
    init(&repo);
    let create = |n: u32| {
        ok(&[
            "snapshot",
            "create",
            s(&repo),
            &format!("s{n}"),
            "--source",
            s(&src),
        ])
    };
    (1..=5).for_each(|n| {
        create(n);
    });
    let early = Repo::open(&Location::parse(s(&repo)).unwrap()).unwrap();
    assert_eq!(early.cached_generation(), 5);
    (6..=9).for_each(|n| {
        create(n);
    });
    // Age every root an hour, keeping their order: cleanup keeps anything
    // written after the newest root, so an older generation must never end
    // up a millisecond younger than index-9.
    for generation in 1..=9u64 {
        let age = std::time::Duration::from_secs(3600 + 10 * (10 - generation));
        set_age(&repo.join(format!("index-{generation}")), age);
    }
    ok(&["repo", "cleanup", s(&repo), "--grace", "0s"]);
    assert!(!repo.join("index-6").exists(), "cleanup keeps old roots");
    assert!(repo.join("index-9").exists());

    let settings = RepoSettings {
        max_restore_bytes_per_sec: Some(1 << 30),
        ..Default::default()
    };
    let committed = early.commit(&RootChange::Settings(settings)).unwrap();
    assert_eq!(committed.generation, 10);
    assert_eq!(committed.snapshots.len(), 9);
    let list = json(&["snapshot", "list", s(&repo)]);
    assert_eq!(list["total"], 9);
}
