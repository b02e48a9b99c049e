//! Files that cannot be read consistently: fail, or commit PARTIAL with --partial.

mod common;

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

#[test]
fn an_unreadable_entry_fails_the_snapshot_unless_partial() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    write(&src.join("idx/good"), b"fine");
    write(&src.join("other/good"), b"also fine");
    fs::create_dir_all(src.join("idx")).unwrap();
    let fifo = src.join("idx/pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    init(&repo);

    let err = fails(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    assert!(
        err.contains("nothing was committed") && err.contains("idx/pipe"),
        "{err}"
    );
    assert_eq!(json(&["snapshot", "list", s(&repo)])["total"], 0);

    let out = json(&[
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
    assert_eq!(snap["failures"][0]["path"], "pipe");
    assert_eq!(snap["failures"][0]["index"], "idx");
    let dst = t.path().join("dst");
    ok(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    assert_eq!(fs::read(dst.join("idx/good")).unwrap(), b"fine");
    assert_eq!(fs::read(dst.join("other/good")).unwrap(), b"also fine");
    assert!(!dst.join("idx/pipe").exists());
    assert_eq!(
        json(&["snapshot", "list", s(&repo)])["snapshots"][0]["state"],
        "PARTIAL"
    );
}

#[test]
fn a_file_that_keeps_changing_while_read_is_never_silently_inconsistent() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
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
    let partial = json(&[
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
