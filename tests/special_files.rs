//! Files that turn into FIFOs or symlinks while a snapshot runs: the
//! snapshot finishes (committed PARTIAL with the file left out, or failed),
//! it never waits for a FIFO writer.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn mkfifo(p: &Path) {
    assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
}

#[test]
fn files_swapped_for_fifos_during_snapshot_create_never_block_it() {
    let (_t, src, repo, _) = scene();
    let names: Vec<String> = (0..64).map(|i| format!("f{i:03}")).collect();
    for n in &names {
        write(&src.join("idx").join(n), n.as_bytes());
    }
    init(&repo);

    // Swaps every file for a FIFO and back, over and over, so walks see
    // regular files that the reads then meet as FIFOs (or symlinks).
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, dir) = (stop.clone(), src.join("idx"));
        let names = names.clone();
        std::thread::spawn(move || {
            let mut round = 0u32;
            while !stop.load(Ordering::Relaxed) && round < 100_000 {
                for n in &names {
                    let p = dir.join(n);
                    let tmp = dir.join(format!(".swap-{n}"));
                    let _ = fs::remove_file(&tmp);
                    match round % 3 {
                        0 => mkfifo(&tmp),
                        1 => std::os::unix::fs::symlink("/dev/zero", &tmp).unwrap(),
                        _ => fs::write(&tmp, n.as_bytes()).unwrap(),
                    }
                    fs::rename(&tmp, &p).unwrap();
                }
                round += 1;
            }
        })
    };

    let mut committed = 0;
    for i in 0..15 {
        let mut child = Command::new(bin())
            .args([
                "snapshot",
                "create",
                s(&repo),
                &format!("s{i}"),
                "--source",
                s(&src),
                "--partial",
                "--quiet",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                stop.store(true, Ordering::Relaxed);
                panic!("snapshot create s{i} still running after 60 s (blocked on a FIFO?)");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // 0: complete, 3: committed as PARTIAL.
        if matches!(status.code(), Some(0 | 3)) {
            committed += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(committed > 0, "no run committed a (partial) snapshot");
    let list = json(&["snapshot", "list", s(&repo)]);
    assert_eq!(list["total"], committed);
}
