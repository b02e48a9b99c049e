//! Restore never writes outside its target: links planted in the target (or
//! restored there from the snapshot itself) are replaced or refused, never
//! followed, whatever restore is doing when it meets them: creating
//! folders, writing or renaming temporaries, setting modes, resuming an
//! interrupted run, or overwriting. The tests run as whoever runs the suite
//! (root in CI), so a followed link would really change the victim.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use common::*;

struct Scene {
    _t: tempfile::TempDir,
    src: PathBuf,
    repo: PathBuf,
    dst: PathBuf,
    outside: PathBuf,
}

/// A source, a repository, a target, and an outside folder holding a
/// victim file and a victim folder that no restore may change.
fn scene() -> Scene {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().to_path_buf();
    let outside = root.join("outside");
    write(&outside.join("victim"), b"do not touch");
    fs::set_permissions(outside.join("victim"), fs::Permissions::from_mode(0o640)).unwrap();
    write(&outside.join("dir/inner"), b"inner");
    Scene {
        _t: t,
        src: root.join("src"),
        repo: root.join("repo"),
        dst: root.join("dst"),
        outside,
    }
}

impl Scene {
    fn victim(&self) -> PathBuf {
        self.outside.join("victim")
    }

    fn restore(&self, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["restore", s(&self.repo), "s1", "--target", s(&self.dst)];
        args.extend_from_slice(extra);
        run(&args)
    }
}

/// Runs `attack` and asserts nothing outside the target changed.
#[track_caller]
fn untouched(sc: &Scene, attack: impl FnOnce()) {
    let before = snapshot_of(&sc.outside);
    attack();
    assert_eq!(
        before,
        snapshot_of(&sc.outside),
        "the outside folder changed"
    );
}

fn no_staging_left(dst: &Path) {
    let left: Vec<String> = fs::read_dir(dst)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".snapkeep-restore-"))
        .collect();
    assert!(left.is_empty(), "staging folders left: {left:?}");
}

#[test]
fn links_in_the_snapshot_named_like_restore_files_are_restored_as_links() {
    let sc = scene();
    write(&sc.src.join("idx/evil"), b"payload");
    // Names the restore of earlier versions used for its own files.
    symlink(sc.victim(), sc.src.join("idx/.evil.snapkeep-partial")).unwrap();
    symlink(sc.victim(), sc.src.join(".snapkeep-restore.json")).unwrap();
    init(&sc.repo);
    ok(&[
        "snapshot",
        "create",
        s(&sc.repo),
        "s1",
        "--source",
        s(&sc.src),
    ]);
    untouched(&sc, || {
        assert!(sc.restore(&["--include-global-state"]).status.success());
        assert!(sc
            .restore(&["--include-global-state", "--overwrite"])
            .status
            .success());
    });
    let evil = sc.dst.join("idx/evil");
    assert!(fs::symlink_metadata(&evil).unwrap().is_file());
    assert_eq!(fs::read(&evil).unwrap(), b"payload");
    assert_same_tree(&sc.src, &sc.dst);
}

#[test]
fn links_planted_in_the_target_are_replaced_not_followed() {
    let sc = scene();
    write(&sc.src.join("idx/a"), &noise(300_000, 1));
    write(&sc.src.join("idx/sub/b"), &noise(3 << 20, 2));
    write(&sc.src.join("idx/sub/c"), b"small");
    write(&sc.src.join("settings.json"), b"{}");
    fs::set_permissions(sc.src.join("idx/a"), fs::Permissions::from_mode(0o600)).unwrap();
    init(&sc.repo);
    ok(&[
        "snapshot",
        "create",
        s(&sc.repo),
        "s1",
        "--source",
        s(&sc.src),
    ]);

    // Every place restore creates, writes, renames or sets modes on.
    fs::create_dir_all(sc.dst.join("idx")).unwrap();
    symlink(sc.victim(), sc.dst.join("idx/a")).unwrap();
    symlink(sc.outside.join("dir"), sc.dst.join("idx/sub")).unwrap();
    symlink(sc.victim(), sc.dst.join("settings.json")).unwrap();
    symlink(sc.victim(), sc.dst.join(".snapkeep-restore.json")).unwrap();
    symlink(sc.victim(), sc.dst.join("idx/.a.snapkeep-partial")).unwrap();
    symlink(
        sc.outside.join("dir"),
        sc.dst.join(".snapkeep-restore-0000"),
    )
    .unwrap();
    untouched(&sc, || {
        let out = sc.restore(&["--include-global-state", "--overwrite"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let a = fs::symlink_metadata(sc.dst.join("idx/a")).unwrap();
    assert!(a.is_file() && a.permissions().mode() & 0o7777 == 0o600);
    assert!(fs::symlink_metadata(sc.dst.join("idx/sub"))
        .unwrap()
        .is_dir());
    assert!(fs::symlink_metadata(sc.dst.join("settings.json"))
        .unwrap()
        .is_file());
    assert_same_tree(&sc.src.join("idx"), &sc.dst.join("idx"));
    no_staging_left(&sc.dst);
}

#[test]
fn an_index_folder_that_is_a_link_is_never_written_through() {
    let sc = scene();
    write(&sc.src.join("idx/a"), b"a");
    init(&sc.repo);
    ok(&[
        "snapshot",
        "create",
        s(&sc.repo),
        "s1",
        "--source",
        s(&sc.src),
    ]);
    fs::create_dir_all(&sc.dst).unwrap();
    symlink(sc.outside.join("dir"), sc.dst.join("idx")).unwrap();
    untouched(&sc, || {
        // Without --overwrite the occupied index is a conflict ...
        assert!(!sc.restore(&[]).status.success());
        // ... with it, the link is replaced by the restored folder.
        assert!(sc.restore(&["--overwrite"]).status.success());
    });
    assert!(fs::symlink_metadata(sc.dst.join("idx")).unwrap().is_dir());
    assert_eq!(fs::read(sc.dst.join("idx/a")).unwrap(), b"a");
}

/// Throttled restore, killed once it has written `at_least` bytes.
fn kill_part_way(sc: &Scene, extra: &[&str], at_least: u64) {
    let mut child = std::process::Command::new(bin())
        .args(["restore", s(&sc.repo), "s1", "--target", s(&sc.dst)])
        .args(extra)
        .args(["--max-restore-bytes-per-sec", "8MiB", "--concurrency", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while du(&sc.dst) < at_least {
        assert!(std::time::Instant::now() < deadline, "no progress");
        assert!(child.try_wait().unwrap().is_none(), "finished too early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn du(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

#[test]
fn a_resumed_restore_replaces_links_planted_among_its_temporaries() {
    let sc = scene();
    for i in 0..6 {
        write(&sc.src.join(format!("idx/f{i}")), &noise(6 << 20, 40 + i));
    }
    init(&sc.repo);
    ok(&[
        "snapshot",
        "create",
        s(&sc.repo),
        "s1",
        "--source",
        s(&sc.src),
    ]);
    kill_part_way(&sc, &[], 8 << 20);
    // Replace every temporary and the marker of the interrupted run by
    // links out of the target.
    let staging: Vec<PathBuf> = fs::read_dir(&sc.dst)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".snapkeep-restore-")
        })
        .collect();
    assert_eq!(staging.len(), 1, "one staging folder per run");
    let mut planted = 0;
    for e in fs::read_dir(&staging[0]).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap() != "marker.json" {
            fs::remove_file(&p).unwrap();
            symlink(sc.victim(), &p).unwrap();
            planted += 1;
        }
    }
    assert!(planted > 0, "the kill left no temporary to attack");
    untouched(&sc, || {
        let out = sc.restore(&[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    assert_same_tree(&sc.src.join("idx"), &sc.dst.join("idx"));
    no_staging_left(&sc.dst);
}

#[test]
fn files_named_like_restore_files_are_restored_byte_for_byte() {
    let sc = scene();
    let names = [
        "idx/.a.snapkeep-partial",
        "idx/a",
        "idx/.snapkeep-restore.json",
        "idx/.snapkeep-restore-0123456789abcdef/marker.json",
        ".snapkeep-restore.json",
        ".snapkeep-restore-0123456789abcdef/marker.json",
        ".snapkeep-restore-0123456789abcdef/x",
    ];
    for (i, n) in names.iter().enumerate() {
        write(&sc.src.join(n), &noise(1000 + i * 7, i as u64));
    }
    init(&sc.repo);
    ok(&[
        "snapshot",
        "create",
        s(&sc.repo),
        "s1",
        "--source",
        s(&sc.src),
    ]);
    assert!(sc.restore(&["--include-global-state"]).status.success());
    assert_same_tree(&sc.src, &sc.dst);
    // Again over itself, and after an interrupted run of another restore.
    assert!(sc
        .restore(&["--include-global-state", "--overwrite"])
        .status
        .success());
    assert_same_tree(&sc.src, &sc.dst);
}

#[test]
fn a_repository_inside_the_source_is_left_out_and_never_restored_over() {
    let sc = scene();
    write(&sc.src.join("idx/a"), b"data");
    write(&sc.src.join("top.conf"), b"global");
    let inner = sc.src.join("backups");
    init(&inner);
    let dotted = sc.src.join(".repo");
    init(&dotted);
    for repo in [&inner, &dotted] {
        let out = run(&[
            "snapshot",
            "create",
            s(repo),
            "s1",
            "--source",
            s(&sc.src),
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("left out"), "{stderr}");
        let got = json(&["snapshot", "get", s(repo), "s1"]);
        let text = got.to_string();
        assert!(text.contains("\"idx\""), "{text}");
        assert!(
            !text.contains("\"backups\""),
            "the repository was snapshotted: {text}"
        );
    }
    // The global state of the dotted repository's snapshot lacks it too.
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    ok(&[
        "restore",
        s(&dotted),
        "s1",
        "--target",
        s(&out),
        "--include-global-state",
    ]);
    assert!(out.join("top.conf").exists() && !out.join(".repo").exists());

    // Restoring over the source, which holds the repository, is refused
    // and changes nothing.
    let before = snapshot_of(&sc.src);
    for repo in [&inner, &dotted] {
        let err = fails(&[
            "restore",
            s(repo),
            "s1",
            "--target",
            s(&sc.src),
            "--overwrite",
        ]);
        assert!(err.contains("contains the repository"), "{err}");
    }
    assert_eq!(before, snapshot_of(&sc.src));
    // A repository is never a source, and nothing inside one is.
    for source in [inner.clone(), inner.join("packs")] {
        let err = fails(&[
            "snapshot",
            "create",
            s(&inner),
            "s9",
            "--source",
            s(&source),
        ]);
        assert!(err.contains("repository"), "{err}");
    }
    let err = fails(&[
        "snapshot",
        "create",
        s(&dotted),
        "s9",
        "--source",
        s(&inner),
    ]);
    assert!(err.contains("is a snapkeep repository"), "{err}");
}

#[test]
fn restore_targets_in_or_over_a_repository_are_refused() {
    let sc = scene();
    write(&sc.src.join("packs/a"), b"data");
    init(&sc.repo);
    ok(&[
        "snapshot",
        "create",
        s(&sc.repo),
        "s1",
        "--source",
        s(&sc.src),
    ]);
    let other = sc.outside.join("other-repo");
    init(&other);
    let before = snapshot_of(&sc.repo);
    let cases = [
        (sc.repo.clone(), "is the repository"),
        (sc.repo.join("sub"), "inside the repository"),
        (other.clone(), "is a snapkeep repository"),
    ];
    for (target, why) in &cases {
        let err = fails(&[
            "restore",
            s(&sc.repo),
            "s1",
            "--target",
            s(target),
            "--overwrite",
        ]);
        assert!(err.contains(why), "{}: {err}", target.display());
        let err = fails(&[
            "restore",
            s(&sc.repo),
            "s1",
            "--target",
            s(target),
            "--dry-run",
        ]);
        assert!(err.contains(why), "{}: {err}", target.display());
    }
    assert_eq!(before, snapshot_of(&sc.repo));
    // An index folder that is a repository is refused as well.
    let err = fails(&[
        "restore",
        s(&sc.repo),
        "s1",
        "--target",
        s(&sc.outside),
        "--rename-pattern",
        "packs",
        "--rename-replacement",
        "other-repo",
        "--overwrite",
    ]);
    assert!(err.contains("other-repo is a snapkeep repository"), "{err}");
    ok(&["repo", "check", s(&other)]);
}
