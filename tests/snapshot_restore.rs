//! Snapshot and restore through the real binary.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

/// A data directory with every kind of entry restore must reproduce.
fn rich_source(root: &Path) {
    write(&root.join("logs/a.log"), b"line one\nline two\n");
    write(&root.join("logs/empty"), b"");
    write(
        &root.join("logs/deep/er/and/deeper/still/file.bin"),
        &noise(300_000, 1),
    );
    write(&root.join("logs/ünïcödé 名前.txt"), "snow ☃".as_bytes());
    write(&root.join("metrics/big.bin"), &noise(3 << 20, 2));
    fs::set_permissions(root.join("logs/a.log"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(
        root.join("metrics/big.bin"),
        fs::Permissions::from_mode(0o751),
    )
    .unwrap();
    std::os::unix::fs::symlink("a.log", root.join("logs/link-to-a")).unwrap();
    std::os::unix::fs::symlink("../../nowhere", root.join("logs/dangling")).unwrap();
    fs::create_dir_all(root.join("logs/empty-dir")).unwrap();
    fs::set_permissions(root.join("logs/deep"), fs::Permissions::from_mode(0o700)).unwrap();
    write(&root.join("settings.json"), b"{\"global\":true}");
    write(&root.join("_state/manifest"), b"global state folder");
}

#[test]
fn restore_reproduces_files_links_modes_and_mtimes() {
    let (_t, src, repo, dst) = scene();
    rich_source(&src);
    init(&repo);
    let created = json(&[
        "snapshot",
        "create",
        s(&repo),
        "snap-1",
        "--source",
        s(&src),
    ]);
    let snap = &created["snapshot"];
    assert_eq!(snap["state"], "SUCCESS");
    assert_eq!(snap["indices"], serde_json::json!(["logs", "metrics"]));
    assert_eq!(snap["include_global_state"], true);

    ok(&[
        "restore",
        s(&repo),
        "snap-1",
        "--target",
        s(&dst),
        "--include-global-state",
    ]);
    assert_same_tree(&src, &dst);
}

#[test]
fn global_state_is_restored_only_when_asked() {
    let (_t, src, repo, dst) = scene();
    rich_source(&src);
    init(&repo);
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "snap-1",
        "--source",
        s(&src),
    ]);
    ok(&["restore", s(&repo), "snap-1", "--target", s(&dst)]);
    assert!(dst.join("logs/a.log").exists());
    assert!(!dst.join("settings.json").exists());
    assert!(!dst.join("_state").exists());
    assert_same_tree(&src.join("logs"), &dst.join("logs"));

    // A snapshot without global state has nothing to restore there.
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "no-global",
        "--source",
        s(&src),
        "--no-global-state",
    ]);
    let got = json(&["snapshot", "get", s(&repo), "no-global"]);
    assert_eq!(got["snapshots"][0]["include_global_state"], false);
}

/// A follower node's stage is a linked copy of an index beside it: a
/// snapshot of the data folder is not to take it for global state, and a
/// restore of global state over such a folder is not to remove it.
#[test]
fn a_follower_nodes_work_folders_are_not_global_state() {
    let (_t, src, repo, dst) = scene();
    write(&src.join("logs/a.log"), b"live");
    write(&src.join("settings.json"), b"{}");
    write(&src.join(".ccr-next-logs/logs/a.log"), b"staged");
    write(&src.join(".ccr-old-logs-1-0/a.log"), b"old");
    write(&src.join(".hidden/kept"), b"global");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let paths = ok(&["snapshot", "ls", s(&repo), "s1"]);
    assert!(paths.contains("kept"), "{paths}");
    assert!(!paths.contains(".ccr-"), "{paths}");

    write(&dst.join(".ccr-next-logs/logs/a.log"), b"the stage here");
    write(&dst.join("stale.json"), b"{}");
    ok(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--include-global-state",
        "--overwrite",
    ]);
    assert!(!dst.join("stale.json").exists(), "global state is replaced");
    assert_eq!(fs::read(dst.join(".hidden/kept")).unwrap(), b"global");
    assert_eq!(
        fs::read(dst.join(".ccr-next-logs/logs/a.log")).unwrap(),
        b"the stage here"
    );
    assert!(!dst.join(".ccr-old-logs-1-0").exists());
}

#[test]
fn indices_select_with_wildcards_exclusions_and_extra_paths() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo, extra) = (
        t.path().join("src"),
        t.path().join("repo"),
        t.path().join("elsewhere"),
    );
    for name in ["logs-1", "logs-2", "logs-old", "users"] {
        write(&src.join(name).join("f"), name.as_bytes());
    }
    write(&extra.join("x"), b"outside");
    init(&repo);
    let out = json(&[
        "snapshot",
        "create",
        s(&repo),
        "sel",
        "--source",
        s(&src),
        "--indices",
        "logs-*,-logs-old",
        "--index",
        &format!("archive={}", s(&extra)),
        "--no-global-state",
    ]);
    assert_eq!(
        out["snapshot"]["indices"],
        serde_json::json!(["archive", "logs-1", "logs-2"])
    );

    let dst = t.path().join("dst");
    let restored = json(&[
        "restore",
        s(&repo),
        "sel",
        "--target",
        s(&dst),
        "--indices",
        "logs-*",
        "--rename-pattern",
        "logs-(.+)",
        "--rename-replacement",
        "restored-$1",
    ]);
    assert_eq!(
        restored["snapshot"]["indices"],
        serde_json::json!(["restored-1", "restored-2"])
    );
    assert_eq!(fs::read(dst.join("restored-1/f")).unwrap(), b"logs-1");
    assert!(!dst.join("archive").exists());
    ok(&[
        "restore",
        s(&repo),
        "sel",
        "--target",
        s(&dst),
        "--indices",
        "archive",
    ]);
    assert_eq!(fs::read(dst.join("archive/x")).unwrap(), b"outside");
}

#[test]
fn unchanged_resnapshot_reads_no_file_and_stores_no_data() {
    let (t, src, repo, _) = scene();
    rich_source(&src);
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "one", "--source", s(&src)]);
    let before = json(&["repo", "stats", s(&repo)]);
    let again = json(&["snapshot", "create", s(&repo), "two", "--source", s(&src)]);
    let snap = &again["snapshot"];
    assert_eq!(snap["stats"]["new_bytes"], 0);
    assert_eq!(snap["stats"]["new_stored_bytes"], 0);
    assert_eq!(snap["storage"]["packs_written"], 0);
    for (_, idx) in snap["index_details"].as_object().unwrap() {
        assert_eq!(idx["files_read"], 0);
    }
    let after = json(&["repo", "stats", s(&repo)]);
    assert_eq!(before["blobs"], after["blobs"]);
    assert_eq!(before["packs"], after["packs"]);

    // Proof that contents were not read: a same-size edit with the mtime put
    // back is invisible to the next snapshot (as in every size+mtime tool).
    let f = src.join("logs/a.log");
    let mtime = fs::metadata(&f).unwrap().modified().unwrap();
    fs::write(&f, b"LINE ONE\nLINE TWO\n").unwrap();
    fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    ok(&["snapshot", "create", s(&repo), "three", "--source", s(&src)]);
    let dst = t.path().join("dst");
    ok(&[
        "restore",
        s(&repo),
        "three",
        "--target",
        s(&dst),
        "--indices",
        "logs",
    ]);
    assert_eq!(
        fs::read(dst.join("logs/a.log")).unwrap(),
        b"line one\nline two\n"
    );
}

/// The operating system's word that an unchanged re-snapshot opens no
/// file: with every file (global state included) unreadable to the user
/// taking the snapshot, it still succeeds and reuses everything.
#[test]
fn an_unchanged_resnapshot_opens_no_file_at_all() {
    use std::os::unix::fs::PermissionsExt;
    let (t, src, repo, _) = scene();
    rich_source(&src);
    init(&repo);
    open_to_all(t.path());
    let first = run_unprivileged(&["snapshot", "create", s(&repo), "one", "--source", s(&src)]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let mut files = 0;
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                let mtime = m.modified().unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(0o000)).unwrap();
                filetime::set_file_mtime(&p, filetime::FileTime::from_system_time(mtime)).unwrap();
                files += 1;
            }
        }
    }
    assert!(files >= 4);
    let again = run_unprivileged(&[
        "snapshot",
        "create",
        s(&repo),
        "two",
        "--source",
        s(&src),
        "--json",
    ]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let snap: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(snap["snapshot"]["state"], "SUCCESS");
    assert_eq!(snap["snapshot"]["stats"]["new_bytes"], 0);
}

/// Same size and mtime but another inode (a file replaced by a copy) is a
/// change: the file is read again.
#[test]
fn a_new_inode_alone_makes_a_file_read_again() {
    let (_t, src, repo, _) = scene();
    rich_source(&src);
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "one", "--source", s(&src)]);
    let f = src.join("logs/a.log");
    let m = fs::metadata(&f).unwrap();
    let copy = src.join("logs/.a.log.copy");
    fs::copy(&f, &copy).unwrap();
    filetime::set_file_mtime(&copy, filetime::FileTime::from_last_modification_time(&m)).unwrap();
    fs::rename(&copy, &f).unwrap();
    let out = json(&["snapshot", "create", s(&repo), "two", "--source", s(&src)]);
    assert_eq!(out["snapshot"]["index_details"]["logs"]["files_read"], 1);
    assert_eq!(
        out["snapshot"]["stats"]["new_bytes"], 0,
        "same content, deduplicated"
    );
}

#[test]
fn changed_files_are_read_again_and_only_they() {
    let (t, src, repo, _) = scene();
    rich_source(&src);
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "one", "--source", s(&src)]);
    write(&src.join("logs/a.log"), b"rewritten with another size");
    write(&src.join("metrics/new.txt"), b"new file");
    let out = json(&["snapshot", "create", s(&repo), "two", "--source", s(&src)]);
    let d = &out["snapshot"]["index_details"];
    assert_eq!(d["logs"]["files_read"], 1);
    assert_eq!(d["metrics"]["files_read"], 1);
    let dst = t.path().join("dst");
    ok(&[
        "restore",
        s(&repo),
        "two",
        "--target",
        s(&dst),
        "--include-global-state",
    ]);
    assert_same_tree(&src, &dst);
    let dst1 = t.path().join("dst1");
    ok(&["restore", s(&repo), "one", "--target", s(&dst1)]);
    assert_eq!(
        fs::read(dst1.join("logs/a.log")).unwrap(),
        b"line one\nline two\n"
    );
}

#[test]
fn an_insertion_in_a_64_mib_file_stores_under_5_percent_again() {
    let (t, src, repo, _) = scene();
    let big = noise(64 << 20, 7);
    write(&src.join("db/data.bin"), &big);
    init(&repo);
    let first = json(&["snapshot", "create", s(&repo), "one", "--source", s(&src)]);
    assert!(first["snapshot"]["stats"]["new_bytes"].as_u64().unwrap() >= 64 << 20);
    let mut edited = big.clone();
    edited.splice(32 << 20..32 << 20, noise(100, 8));
    write(&src.join("db/data.bin"), &edited);
    let second = json(&["snapshot", "create", s(&repo), "two", "--source", s(&src)]);
    let stored = second["snapshot"]["stats"]["new_stored_bytes"]
        .as_u64()
        .unwrap();
    assert!(stored < (64 << 20) / 20, "stored {stored} bytes again");
    let dst = t.path().join("dst");
    ok(&["restore", s(&repo), "two", "--target", s(&dst)]);
    assert!(fs::read(dst.join("db/data.bin")).unwrap() == edited);
}

#[test]
fn identical_data_across_indices_is_stored_once() {
    let (_t, src, repo, _) = scene();
    let data = noise(5 << 20, 9);
    write(&src.join("a/copy"), &data);
    write(&src.join("b/copy"), &data);
    write(&src.join("b/again"), &data);
    init(&repo);
    let out = json(&["snapshot", "create", s(&repo), "one", "--source", s(&src)]);
    let new = out["snapshot"]["stats"]["new_bytes"].as_u64().unwrap();
    assert_eq!(new, 5 << 20, "three copies stored as one");
}

#[test]
fn file_urls_work_like_paths() {
    let (_t, src, repo, _) = scene();
    write(&src.join("i/f"), b"x");
    let url = format!("file://{}", s(&repo));
    ok(&["repo", "init", &url]);
    ok(&["snapshot", "create", &url, "one", "--source", s(&src)]);
    let list = json(&["snapshot", "list", s(&repo)]);
    assert_eq!(list["snapshots"][0]["snapshot"], "one");
}

#[test]
fn an_incremental_snapshot_costs_a_handful_of_requests_not_one_per_file() {
    let (_t, src, repo, _) = scene();
    for d in 0..40 {
        for f in 0..25 {
            write(
                &src.join(format!("idx/dir{d}/f{f}.txt")),
                format!("file {d}/{f}").as_bytes(),
            );
        }
    }
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "one", "--source", s(&src)]);
    write(&src.join("idx/dir7/f3.txt"), b"changed contents, new size");
    let out = json(&["snapshot", "create", s(&repo), "two", "--source", s(&src)]);
    let req = &out["snapshot"]["storage"]["requests"];
    let total: u64 = ["gets", "puts", "lists", "deletes", "heads"]
        .iter()
        .map(|k| req[k].as_u64().unwrap())
        .sum();
    // 1000 files in 41 folders; the change needs: root lookup, index, the
    // parent's manifest and tree pack, then the in-flight marker, data pack,
    // tree pack (each size-checked), index file, manifest, root and hint, and
    // the marker's removal.
    assert!(total <= 24, "{total} requests: {req}");
    assert_eq!(req["puts"], 7, "{req}");
    assert_eq!(out["snapshot"]["index_details"]["idx"]["files_read"], 1);
    // Stats read the root, the index and the manifests, and write nothing.
    let stats = json(&["repo", "stats", s(&repo)]);
    let req = &stats["requests"];
    assert_eq!(req["puts"], 0, "{req}");
    assert_eq!(req["deletes"], 0, "{req}");
    assert!(req["gets"].as_u64().unwrap() >= 3, "{req}");
    assert_eq!(stats["snapshots"], 2, "{stats}");
}

/// On a terminal, create and restore draw a progress bar (bytes, rate,
/// ETA); without one they stay quiet.
#[test]
fn progress_bars_show_on_a_terminal_only() {
    let (t, src, repo, _) = scene();
    write(&src.join("idx/big"), &noise(24 << 20, 8));
    init(&repo);
    // `script` runs the command on a pseudo-terminal and records it.
    let on_tty = |cmd: String| {
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let bin = bin();
    let shown = on_tty(format!(
        "{} snapshot create {} s1 --source {}",
        bin.display(),
        s(&repo),
        s(&src)
    ));
    assert!(
        shown.contains("snapshot [") && shown.contains("24.00 MiB/24.00 MiB"),
        "{shown}"
    );
    assert!(shown.contains("eta"), "{shown}");
    let shown = on_tty(format!(
        "{} restore {} s1 --target {}",
        bin.display(),
        s(&repo),
        s(&t.path().join("dst"))
    ));
    assert!(
        shown.contains("restore [") && shown.contains("MiB/s"),
        "{shown}"
    );
    let quiet = run(&["snapshot", "create", s(&repo), "s2", "--source", s(&src)]);
    assert!(quiet.status.success());
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
}

/// `--overwrite` says what it deletes: the refusal points at it, the dry
/// run and the summary name the paths the snapshot does not have.
#[test]
fn overwrite_names_what_it_deletes() {
    let (_t, src, repo, dst) = scene();
    write(&src.join("a/f1"), b"1");
    write(&src.join("a/f2"), b"2");
    init(&repo);
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "s1",
        "--source",
        s(&src),
        "-q",
    ]);
    ok(&["restore", s(&repo), "s1", "--target", s(&dst), "-q"]);
    write(&dst.join("a/extra"), b"not in the snapshot");

    let err = fails(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    assert!(err.contains("--overwrite"), "{err}");
    let dry = ok(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--overwrite",
        "--dry-run",
    ]);
    assert!(
        dry.contains("would delete 1 path(s) the snapshot does not have: a/extra"),
        "{dry}"
    );
    let plan = json(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--overwrite",
        "--dry-run",
    ]);
    assert_eq!(plan["deletes"], serde_json::json!(["a/extra"]), "{plan}");
    assert!(dst.join("a/extra").exists(), "a dry run deletes nothing");

    let done = ok(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--overwrite",
    ]);
    assert!(
        done.contains("deleted 1 path(s) the snapshot does not have (--overwrite): a/extra"),
        "{done}"
    );
    assert!(!dst.join("a/extra").exists());
    assert_same_tree(&src, &dst);
}

/// Files are moved into place as soon as they are complete, while others
/// are still fetched. A file that cannot be moved (its folder is immutable
/// here, which needs root) stops the restore with that file's error, no
/// file stands half-written under its name, and a rerun, once the folder
/// takes files again, finishes the restore.
#[test]
fn a_file_that_cannot_be_moved_into_place_stops_the_restore_and_a_rerun_finishes() {
    assert!(
        rustix::process::geteuid().is_root(),
        "an immutable folder needs root"
    );
    let t = tempfile::tempdir().unwrap();
    let (src, repo, dst) = (
        t.path().join("src"),
        t.path().join("repo"),
        t.path().join("dst"),
    );
    for i in 0..200u64 {
        write(
            &src.join(format!("logs/a/f{i:03}")),
            &noise(3000 + i as usize, i),
        );
    }
    write(&src.join("logs/b/x"), b"the file that cannot go in");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    fs::create_dir_all(dst.join("logs/b")).unwrap();
    let chattr = |flag: &str| {
        let done = std::process::Command::new("chattr")
            .args([flag, s(&dst.join("logs/b"))])
            .status()
            .unwrap();
        assert!(done.success(), "chattr {flag}");
    };
    chattr("+i");
    let restore = [
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--overwrite",
    ];
    let err = fails(&restore);
    chattr("-i");
    assert!(err.contains("logs/b/x"), "{err}");
    for entry in fs::read_dir(dst.join("logs/a")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.strip_prefix(&dst).unwrap();
        assert_eq!(fs::read(&path).unwrap(), fs::read(src.join(name)).unwrap());
    }
    let staged = |dst: &Path| {
        fs::read_dir(dst)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with(".snapkeep-restore-")
            })
            .count()
    };
    assert_eq!(
        staged(&dst),
        1,
        "the run's staging folder is kept for a rerun"
    );

    ok(&restore);
    assert_same_tree(&src, &dst);
    assert_eq!(staged(&dst), 0);
}
