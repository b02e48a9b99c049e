//! What `snapshot create` takes, through the real binary: `--exclude`,
//! `--exclude-file`, `--one-file-system`, a top-level folder that is not a
//! valid index name, and a repository inside the source.

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// A source with things worth leaving out.
fn source(src: &Path) {
    write(&src.join("logs-1/a.log"), b"keep a");
    write(&src.join("logs-1/b.tmp"), b"drop: *.tmp");
    write(&src.join("logs-1/cache/x"), b"drop: cache/");
    write(&src.join("logs-1/sub/cache"), b"keep: a file named cache");
    write(&src.join("logs-1/sub/c.tmp"), b"drop: *.tmp at depth");
    write(&src.join("logs-2/tmp/y"), b"drop: /logs-2/tmp");
    write(&src.join("logs-2/keep/tmp/z"), b"keep: anchored pattern");
    write(&src.join("MyIndex/m"), b"drop: /MyIndex");
    write(&src.join("settings.json"), b"keep: global state");
    write(&src.join("scratch.tmp"), b"drop: global *.tmp");
}

/// Restores every index and the global state of `snap` into a fresh
/// folder and returns the files there, relative.
fn restored_files(repo: &Path, snap: &str, target: &Path) -> Vec<String> {
    ok(&[
        "restore",
        s(repo),
        snap,
        "--target",
        s(target),
        "--include-global-state",
    ]);
    let mut files: Vec<String> = snapshot_of(target)
        .into_iter()
        .filter(|(_, e)| matches!(e, Entry::File { .. }))
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

const KEPT: [&str; 5] = [
    "logs-1/a.log",
    "logs-1/sub/cache",
    "logs-2/keep/tmp/z",
    "logs-2/marker",
    "settings.json",
];

#[test]
fn exclude_patterns_and_exclude_files_leave_out_what_they_match() {
    let t = tempfile::tempdir().unwrap();
    let (repo, src) = (t.path().join("repo"), t.path().join("src"));
    source(&src);
    write(&src.join("logs-2/marker"), b"keep");
    init(&repo);
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "by-flags",
        "--source",
        s(&src),
        "--exclude",
        "*.tmp",
        "--exclude",
        "cache/",
        "--exclude",
        "/logs-2/tmp",
        "--exclude",
        "/MyIndex",
    ]);
    let files = restored_files(&repo, "by-flags", &t.path().join("r1"));
    assert_eq!(files, KEPT);

    let list = t.path().join("excludes.txt");
    fs::write(
        &list,
        "# what cron leaves out\n*.tmp\n\ncache/\n/logs-2/tmp\n",
    )
    .unwrap();
    let snap = json(&[
        "snapshot",
        "create",
        s(&repo),
        "by-file",
        "--source",
        s(&src),
        "--exclude-file",
        s(&list),
        "--exclude",
        "/MyIndex",
    ]);
    assert_eq!(
        snap["snapshot"]["indices"],
        serde_json::json!(["logs-1", "logs-2"])
    );
    let files = restored_files(&repo, "by-file", &t.path().join("r2"));
    assert_eq!(files, KEPT);
}

#[test]
fn a_folder_that_is_no_valid_index_name_is_refused_with_the_way_out() {
    let t = tempfile::tempdir().unwrap();
    let (repo, src) = (t.path().join("repo"), t.path().join("src"));
    source(&src);
    init(&repo);
    let out = run(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("MyIndex") && err.contains("--exclude '/MyIndex'"),
        "{err}"
    );
    // A selection that leaves it out needs no exclude.
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "s2",
        "--source",
        s(&src),
        "--indices",
        "logs-*",
    ]);
}

#[test]
fn bad_patterns_are_usage_errors_naming_the_pattern() {
    let t = tempfile::tempdir().unwrap();
    let (repo, src) = (t.path().join("repo"), t.path().join("src"));
    write(&src.join("logs-1/a"), b"a");
    init(&repo);
    for (pattern, says) in [("!keep.log", "negation"), ("a[b", "not a valid glob")] {
        let out = run(&[
            "snapshot",
            "create",
            s(&repo),
            "s1",
            "--source",
            s(&src),
            "--exclude",
            pattern,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(pattern) && err.contains(says), "{err}");
    }
    let out = run(&[
        "snapshot",
        "create",
        s(&repo),
        "s1",
        "--source",
        s(&src),
        "--exclude-file",
        s(&t.path().join("missing.txt")),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_repository_inside_the_source_is_left_out_with_a_note() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let repo = src.join("backups");
    write(&src.join("logs-1/a"), b"a");
    init(&repo);
    let out = run(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("note:") && err.contains("backups") && err.contains("left out"),
        "{err}"
    );
    let snap = json(&["snapshot", "get", s(&repo), "s1"]);
    let text = snap.to_string();
    assert!(
        text.contains("logs-1") && !text.contains("\"backups\""),
        "{text}"
    );
}

/// A tmpfs mounted inside an index: `--one-file-system` keeps the mount
/// point as an empty folder. Needs root and a working `mount`; skipped
/// (with a line saying so) where there is none.
#[test]
fn one_file_system_keeps_a_mount_point_empty() {
    let t = tempfile::tempdir().unwrap();
    let (repo, src) = (t.path().join("repo"), t.path().join("src"));
    write(&src.join("logs-1/a"), b"a");
    let mnt = src.join("logs-1/mnt");
    fs::create_dir_all(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs", s(&mnt)])
        .status()
        .is_ok_and(|st| st.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mnt);
    write(&mnt.join("other-fs"), b"on the tmpfs");
    init(&repo);
    for (name, flag) in [("crossing", None), ("one-fs", Some("--one-file-system"))] {
        let mut args = vec!["snapshot", "create", s(&repo), name, "--source", s(&src)];
        args.extend(flag);
        ok(&args);
    }
    let crossing = restored_files(&repo, "crossing", &t.path().join("r1"));
    assert_eq!(crossing, ["logs-1/a", "logs-1/mnt/other-fs"]);
    let target = t.path().join("r2");
    let one_fs = restored_files(&repo, "one-fs", &target);
    assert_eq!(one_fs, ["logs-1/a"]);
    assert!(
        target.join("logs-1/mnt").is_dir(),
        "the mount point is kept"
    );
}
