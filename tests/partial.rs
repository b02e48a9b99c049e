//! Files that cannot be read consistently: fail, or commit PARTIAL with --partial.

mod common;

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

#[test]
fn an_unreadable_entry_fails_the_snapshot_unless_partial() {
    let (t, src, repo, _) = scene();
    write(&src.join("idx/good"), b"fine");
    write(&src.join("other/good"), b"also fine");
    // A name that is not UTF-8 cannot be stored (fifos and sockets, the
    // example before tree encoding 2, now are).
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"bad-\xff-name");
    write(&src.join("idx").join(bad), b"unstorable");
    init(&repo);

    let err = fails(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    assert!(
        err.contains("nothing was committed") && err.contains("idx/bad-"),
        "{err}"
    );
    assert_eq!(json(&["snapshot", "list", s(&repo)])["total"], 0);

    let out = partial_json(&[
        "snapshot",
        "create",
        s(&repo),
        "s1",
        "--source",
        s(&src),
        "--partial",
    ]);
    let snap = &out["snapshot"];
    assert_eq!(snap["state"], "PARTIAL");
    assert_eq!(snap["failures"][0]["path"], "bad-\u{fffd}-name");
    assert_eq!(snap["failures"][0]["index"], "idx");
    let dst = t.path().join("dst");
    ok(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    assert_eq!(fs::read(dst.join("idx/good")).unwrap(), b"fine");
    assert_eq!(fs::read(dst.join("other/good")).unwrap(), b"also fine");
    assert!(!dst.join("idx").join(bad).exists());
    assert_eq!(
        json(&["snapshot", "list", s(&repo)])["snapshots"][0]["state"],
        "PARTIAL"
    );
}

#[test]
fn a_file_that_keeps_changing_while_read_is_never_silently_inconsistent() {
    let (_t, src, repo, _) = scene();
    write(&src.join("idx/steady"), &noise(1 << 20, 1));
    let busy = src.join("idx/busy.log");
    write(&busy, &noise(8 << 20, 2));
    init(&repo);

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, busy) = (stop.clone(), busy.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = fs::OpenOptions::new().append(true).open(&busy).unwrap();
            while !stop.load(Ordering::Relaxed) {
                f.write_all(b"x").unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let failed = run(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let partial = partial_json(&[
        "snapshot",
        "create",
        s(&repo),
        "s2",
        "--source",
        s(&src),
        "--partial",
    ]);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("changed while it was read"));
    let snap = &partial["snapshot"];
    assert_eq!(snap["state"], "PARTIAL");
    assert_eq!(snap["failures"][0]["path"], "busy.log");
    let list = json(&["snapshot", "list", s(&repo)]);
    assert_eq!(list["total"], 1, "the failed snapshot committed nothing");
}

#[test]
fn files_and_indices_without_read_permission_fail_the_snapshot_unless_partial() {
    use std::os::unix::fs::PermissionsExt;
    let (t, src, repo, _) = scene();
    write(&src.join("idx/good"), b"fine");
    write(&src.join("idx/secret"), b"not for you");
    write(&src.join("locked/inside"), b"unlistable");
    init(&repo);
    // Everything open to the unprivileged user but the two entries.
    open_to_all(t.path());
    fs::set_permissions(src.join("idx/secret"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(src.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();

    let create = |name: &str, partial: bool| {
        let mut a = vec!["snapshot", "create", s(&repo), name, "--source", s(&src)];
        if partial {
            a.extend(["--partial", "--json"]);
        }
        run_unprivileged(&a)
    };
    let failed = create("s1", false);
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("nothing was committed") || err.contains("locked"),
        "{err}"
    );
    assert_eq!(json(&["snapshot", "list", s(&repo)])["total"], 0);

    let out = create("s1", true);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a PARTIAL snapshot exits 3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snap: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let snap = &snap["snapshot"];
    assert_eq!(snap["state"], "PARTIAL");
    let failures: Vec<(String, String)> = snap["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["index"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        failures.contains(&("idx".into(), "secret".into())),
        "{failures:?}"
    );
    assert!(
        failures.contains(&("locked".into(), "".into())),
        "{failures:?}"
    );
    let dst = t.path().join("dst");
    ok(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    assert_eq!(fs::read(dst.join("idx/good")).unwrap(), b"fine");
    assert!(!dst.join("idx/secret").exists());
    assert!(!dst.join("locked").exists());
}

/// A file written to once while it is read is read again, and the snapshot
/// holds one whole version of it (here: the final one).
#[test]
fn a_file_that_changes_once_while_read_is_read_again() {
    let (t, src, repo, _) = scene();
    let log = src.join("idx/app.log");
    write(&log, &noise(96 << 20, 4));
    init(&repo);
    let appender = {
        let log = log.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            std::thread::sleep(Duration::from_millis(30));
            let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
            f.write_all(b"one more line\n").unwrap();
        })
    };
    let out = json(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    appender.join().unwrap();
    assert_eq!(out["snapshot"]["state"], "SUCCESS");
    let dst = t.path().join("dst");
    ok(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    assert!(fs::read(dst.join("idx/app.log")).unwrap() == fs::read(&log).unwrap());
}
