//! `snapkeep mount --daemon` through real FUSE mounts (as root): the
//! command returns once the mount is live and names the background
//! process, which `umount` or SIGTERM ends cleanly (its figures in its
//! log); a mount that fails says why with its exit status, in the
//! foreground.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{fails, is_mounted, json, noise, ok, s, scene, write};

/// Whether process `pid` is gone (reaped, or a zombie nobody reaps).
fn gone(pid: u64) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn wait_gone(pid: u64) {
    let start = Instant::now();
    while !gone(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "pid {pid} lives on"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn daemon(repo: &Path, cache: &Path, mnt: &Path, log: &Path) -> u64 {
    fs::create_dir_all(mnt).unwrap();
    let out = json(&[
        "mount",
        s(repo),
        "s1",
        s(mnt),
        "--index",
        "data",
        "--cache",
        s(cache),
        "--daemon",
        "--log",
        s(log),
    ]);
    // Live as soon as the command returns.
    assert!(is_mounted(mnt), "{out}");
    assert_eq!(out["snapshot"], "s1");
    assert_eq!(out["log"], s(log));
    out["pid"].as_u64().unwrap()
}

#[test]
fn a_daemon_mount_is_live_when_the_command_returns_and_ends_cleanly() {
    let (_t, src, repo, _dst) = scene();
    write(&src.join("data/big.bin"), &noise(1024 * 1024 + 9, 5));
    write(&src.join("data/small.txt"), b"daemon\n");
    common::init_small_chunks(&[], s(&repo));
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let (cache, mnt, log) = (
        _t.path().join("cache"),
        _t.path().join("mnt"),
        _t.path().join("mount.log"),
    );

    // Ended by `umount`.
    let pid = daemon(&repo, &cache, &mnt, &log);
    common::assert_same_tree(&src.join("data"), &mnt);
    // The snapshot is pinned while the background mount lives.
    let err = fails(&["snapshot", "delete", s(&repo), "s1"]);
    assert!(err.contains("in use"), "{err}");
    assert!(Command::new("umount").arg(&mnt).status().unwrap().success());
    wait_gone(pid);
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("\"unmounted\""), "{text}");

    // Ended by SIGTERM.
    let pid = daemon(&repo, &cache, &mnt, &log);
    assert_eq!(fs::read(mnt.join("small.txt")).unwrap(), b"daemon\n");
    let term = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    wait_gone(pid);
    assert!(!is_mounted(&mnt));
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("\"unmounted\"").count(), 2, "{text}");
    // Unpinned: the delete goes through.
    ok(&["snapshot", "delete", s(&repo), "s1"]);
}

#[test]
fn a_daemon_mount_that_fails_says_why_with_its_exit_status() {
    let (_t, src, repo, _dst) = scene();
    write(&src.join("data/x"), b"x");
    common::init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let mnt = _t.path().join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let log = _t.path().join("mount.log");
    let out = Command::new(common::bin())
        .args([
            "mount",
            s(&repo),
            "nope",
            s(&mnt),
            "--daemon",
            "--log",
            s(&log),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "not found: {err}");
    assert!(err.contains("snapshot [nope] is missing"), "{err}");
    assert!(!is_mounted(&mnt));
}
