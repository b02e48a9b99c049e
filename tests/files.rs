//! File-level commands through the real binary: `snapshot ls`, `snapshot
//! dump`, `restore --include`, and `snapshot copy` between repositories
//! (local folders and S3 on moto).

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use common::servers::{create_bucket, moto, s3_env};
use common::*;

const MIB: usize = 1 << 20;

/// `logs/a.log` (small), `logs/sub/big.bin` (3 MiB of noise, many chunks),
/// `logs/sub/link -> ../a.log`, `logs/empty/`, `metrics/m.json`, and global
/// state `settings.json`.
fn data(src: &Path) {
    write(&src.join("logs/a.log"), b"hello log\n");
    write(&src.join("logs/sub/big.bin"), &noise(3 * MIB, 7));
    symlink("../a.log", src.join("logs/sub/link")).unwrap();
    fs::create_dir_all(src.join("logs/empty")).unwrap();
    write(&src.join("metrics/m.json"), b"{\"m\":1}");
    write(&src.join("settings.json"), b"{\"s\":1}");
}

/// Runs and requires exit status `code` with one error line; returns it.
#[track_caller]
fn fails_with(code: i32, args: &[&str]) -> String {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "snapkeep {args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

#[test]
fn ls_lists_a_snapshot_recursively_in_text_and_json() {
    let (_t, src, repo, _) = scene();
    data(&src);
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);

    let all = ok(&["snapshot", "ls", s(&repo), "s1"]);
    let paths: Vec<&str> = all
        .lines()
        .map(|l| l.split_whitespace().nth(3).unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "logs",
            "logs/a.log",
            "logs/empty",
            "logs/sub",
            "logs/sub/big.bin",
            "logs/sub/link",
            "metrics",
            "metrics/m.json",
            "settings.json"
        ],
        "{all}"
    );
    let big = all
        .lines()
        .find(|l| l.ends_with("logs/sub/big.bin"))
        .unwrap();
    assert!(
        big.starts_with("-rw-r--r--") && big.contains(&format!(" {} ", 3 * MIB)),
        "{big}"
    );
    let link = all.lines().find(|l| l.contains("logs/sub/link")).unwrap();
    assert!(
        link.starts_with('l') && link.ends_with("logs/sub/link -> ../a.log"),
        "{link}"
    );
    assert!(all.lines().next().unwrap().starts_with('d'));

    // A folder and what is below it, named from the top or within --index.
    let sub = ok(&["snapshot", "ls", s(&repo), "s1", "logs/sub"]);
    assert_eq!(sub.lines().count(), 3, "{sub}");
    assert_eq!(
        sub,
        ok(&["snapshot", "ls", s(&repo), "s1", "sub", "--index", "logs"])
    );

    let v = json(&["snapshot", "ls", s(&repo), "s1", "logs/sub/big.bin"]);
    assert_eq!(v["snapshot"], "s1");
    assert_eq!(v["path"], "logs/sub/big.bin");
    let e = &v["entries"].as_array().unwrap()[0];
    assert_eq!(
        (e["type"].as_str(), e["size"].as_u64()),
        (Some("file"), Some(3 * MIB as u64))
    );
    assert_eq!(e["mode"], 0o644);
    assert!(e["mtime"].as_str().unwrap().ends_with('Z'));
    let v = json(&["snapshot", "ls", s(&repo), "s1"]);
    assert_eq!(v["entries"].as_array().unwrap().len(), 9);
    assert_eq!(v["entries"][5]["target"], "../a.log");

    // What is not there: status 4 and one line naming it.
    let err = fails_with(4, &["snapshot", "ls", s(&repo), "s1", "logs/nope"]);
    assert!(err.contains("logs/nope") && err.contains("[s1]"), "{err}");
    fails_with(
        4,
        &["snapshot", "ls", s(&repo), "s1", "x", "--index", "nope"],
    );
    fails_with(4, &["snapshot", "ls", s(&repo), "gone"]);
    fails_with(2, &["snapshot", "ls", s(&repo), "s1", "logs/../x"]);
}

#[test]
fn dump_streams_a_file_checks_its_chunks_and_tars_a_folder() {
    let (t, src, repo, _) = scene();
    data(&src);
    ok(&["repo", "init", s(&repo), "--compression", "none"]);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);

    let out = run(&["snapshot", "dump", s(&repo), "s1", "logs/sub/big.bin"]);
    assert!(out.status.success());
    assert!(out.stdout == fs::read(src.join("logs/sub/big.bin")).unwrap());
    let out = run(&[
        "snapshot",
        "dump",
        s(&repo),
        "s1",
        "--index",
        "logs",
        "a.log",
    ]);
    assert_eq!(out.stdout, b"hello log\n");
    let out = run(&["snapshot", "dump", s(&repo), "s1", "settings.json"]);
    assert_eq!(out.stdout, b"{\"s\":1}");

    // A folder is a tar stream that unpacks to the same files.
    let tar_file = t.path().join("logs.tar");
    let out = run(&["snapshot", "dump", s(&repo), "s1", "logs"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::write(&tar_file, &out.stdout).unwrap();
    let unpacked = t.path().join("unpacked");
    fs::create_dir_all(&unpacked).unwrap();
    let tar = Command::new("tar")
        .args(["-xf", s(&tar_file), "-C", s(&unpacked)])
        .status()
        .unwrap();
    assert!(tar.success());
    for f in ["a.log", "sub/big.bin"] {
        assert!(
            fs::read(unpacked.join("logs").join(f)).unwrap()
                == fs::read(src.join("logs").join(f)).unwrap()
        );
    }
    assert_eq!(
        fs::read_link(unpacked.join("logs/sub/link")).unwrap(),
        Path::new("../a.log")
    );
    assert!(unpacked.join("logs/empty").is_dir());

    fails_with(4, &["snapshot", "dump", s(&repo), "s1", "logs/sub/nope"]);
    let err = fails_with(2, &["snapshot", "dump", s(&repo), "s1", "logs/sub/link"]);
    assert!(err.contains("not a regular file"), "{err}");

    // A flipped byte in the file's data fails the dump: no unchecked byte
    // reaches stdout for that chunk.
    let biggest = pack_files(&repo)
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&biggest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&biggest, bytes).unwrap();
    let out = run(&["snapshot", "dump", s(&repo), "s1", "logs/sub/big.bin"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("SHA-256"), "{err}");
    assert!(out.stdout.len() < 3 * MIB);
}

#[test]
fn restore_include_restores_only_the_matching_paths() {
    let (_t, src, repo, dst) = scene();
    data(&src);
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);

    let v = json(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--include",
        "logs/**/*.bin",
        "--include",
        "metrics",
        "--include-global-state",
    ]);
    assert_eq!(v["snapshot"]["files"], 2, "{v}");
    assert_eq!(v["snapshot"]["global_state"], false);
    let mut got: Vec<String> = snapshot_of(&dst)
        .keys()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "logs",
            "logs/sub",
            "logs/sub/big.bin",
            "metrics",
            "metrics/m.json"
        ]
    );
    assert!(
        fs::read(dst.join("logs/sub/big.bin")).unwrap()
            == fs::read(src.join("logs/sub/big.bin")).unwrap()
    );

    // Renamed indices are matched by their name in the snapshot.
    let renamed = dst.with_file_name("renamed");
    ok(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&renamed),
        "--include",
        "logs/a.log",
        "--rename-pattern",
        "logs",
        "--rename-replacement",
        "old-logs",
    ]);
    assert_eq!(
        fs::read(renamed.join("old-logs/a.log")).unwrap(),
        b"hello log\n"
    );
    assert!(!renamed.join("metrics").exists() && !renamed.join("old-logs/sub").exists());

    // A subset over a live folder with --overwrite removes only what the
    // globs cover.
    fs::write(dst.join("logs/sub/stale"), b"x").unwrap();
    fs::write(dst.join("metrics/keep.json"), b"x").unwrap();
    ok(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--include",
        "logs/sub",
        "--overwrite",
    ]);
    assert!(!dst.join("logs/sub/stale").exists());
    assert!(dst.join("metrics/keep.json").exists());
    assert!(dst.join("logs/sub/link").is_symlink());

    let err = fails_with(
        4,
        &[
            "restore",
            s(&repo),
            "s1",
            "--target",
            s(&dst.with_file_name("n")),
            "--include",
            "logs/nope*",
        ],
    );
    assert!(err.contains("--include logs/nope*"), "{err}");
    fails_with(
        2,
        &[
            "restore",
            s(&repo),
            "s1",
            "--target",
            s(&dst),
            "--include",
            "logs/[x",
        ],
    );
}

/// For `s1`, `src/idx/f0..f3` of 1 MiB noise each and `idx/text`, 1 MiB
/// of log lines that compress well (5 MiB of distinct chunks); `s2` adds
/// a 1 MiB `new`.
fn two_snapshots(src: &Path, repo: &str, env: &[(String, String)]) {
    for i in 0..4 {
        write(&src.join(format!("idx/f{i}")), &noise(MIB, 100 + i as u64));
    }
    let mut text = Vec::with_capacity(MIB);
    let mut n = 0u64;
    while text.len() < MIB {
        text.extend_from_slice(
            format!("{n:012} GET /api/items/{} 200\n", n * 7919 % 100_003).as_bytes(),
        );
        n += 1;
    }
    text.truncate(MIB);
    write(&src.join("idx/text"), &text);
    ok_env(env, &["snapshot", "create", repo, "s1", "--source", s(src)]);
    write(&src.join("idx/new"), &noise(MIB, 200));
    ok_env(env, &["snapshot", "create", repo, "s2", "--source", s(src)]);
}

/// Copies `name` with --json and returns its one snapshot record.
#[track_caller]
fn copy(env: &[(String, String)], from: &str, to: &str, name: &str) -> serde_json::Value {
    let out = ok_env(env, &["snapshot", "copy", from, to, name, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["snapshots"][0].clone()
}

#[test]
fn copy_moves_only_what_the_destination_lacks() {
    let (t, src, repo, dst) = scene();
    let other = t.path().join("other");
    let none: Vec<(String, String)> = Vec::new();
    init(&repo);
    two_snapshots(&src, s(&repo), &none);
    ok(&[
        "repo",
        "init",
        s(&other),
        "--compression",
        "none",
        "--copy-chunker-params-from",
        s(&repo),
    ]);

    let first = copy(&none, s(&repo), s(&other), "s1");
    assert_eq!(first["status"], "copied");
    assert_eq!(first["data_bytes_moved"], 5 * MIB as u64, "{first}");
    // The sibling shares four files: only the new one moves.
    let second = copy(&none, s(&repo), s(&other), "s2");
    assert_eq!(second["data_bytes_moved"], MIB as u64, "{second}");
    assert!(second["blobs_present"].as_u64().unwrap() >= 4);
    assert!(
        second["bytes_uploaded"].as_u64().unwrap() < MIB as u64 + 64 * 1024,
        "{second}"
    );
    // Each repository's own compression: the log lines are compressed in
    // the source, stored plain in the destination.
    let packed = |r: &Path| {
        json(&["repo", "stats", s(r)])["pack_bytes"]
            .as_u64()
            .unwrap()
    };
    // (6 MiB of data in both, of which 1 MiB is the log lines.)
    assert!(
        packed(&repo) < 5 * MIB as u64 + MIB as u64 / 2,
        "{}",
        packed(&repo)
    );
    assert!(packed(&other) >= 6 * MIB as u64, "{}", packed(&other));

    // Again: skipped, nothing moves; text says so.
    let again = ok(&["snapshot", "copy", s(&repo), s(&other), "s*"]);
    assert_eq!(again.lines().count(), 2, "{again}");
    assert!(
        again.contains("skipped [s1]") && again.contains("skipped [s2]"),
        "{again}"
    );

    // The copy is the same snapshot and restores byte for byte.
    let (a, b) = (
        json(&["snapshot", "get", s(&repo), "s2"]),
        json(&["snapshot", "get", s(&other), "s2"]),
    );
    assert_eq!(a["snapshots"][0]["uuid"], b["snapshots"][0]["uuid"]);
    ok(&["repo", "check", s(&other), "--read-data"]);
    ok(&["restore", s(&other), "s2", "--target", s(&dst)]);
    assert_same_tree(&src.join("idx"), &dst.join("idx"));

    // Refusals: another snapshot of the name, other chunker parameters, a
    // missing name.
    let third = t.path().join("third");
    init(&third);
    write(&t.path().join("elsewhere/idx/x"), b"x");
    ok(&[
        "snapshot",
        "create",
        s(&third),
        "s1",
        "--source",
        s(&t.path().join("elsewhere")),
    ]);
    let err = fails_with(2, &["snapshot", "copy", s(&repo), s(&third), "s1", "s2"]);
    assert!(err.contains("different snapshot named [s1]"), "{err}");
    assert!(
        json(&["snapshot", "list", s(&third)])["snapshots"]
            .as_array()
            .unwrap()
            .len()
            == 1
    );
    let odd = t.path().join("odd");
    ok(&[
        "repo",
        "init",
        s(&odd),
        "--chunk-avg",
        "1MiB",
        "--chunk-max",
        "4MiB",
    ]);
    let err = fails_with(2, &["snapshot", "copy", s(&repo), s(&odd), "s1"]);
    assert!(err.contains("--copy-chunker-params-from"), "{err}");
    fails_with(4, &["snapshot", "copy", s(&repo), s(&other), "nope"]);
}

#[test]
fn copy_between_a_local_and_an_s3_repository() {
    let server = moto();
    create_bucket(server.port, "offsite");
    let env = s3_env(server.port);
    let (t, src, repo, dst) = scene();
    init(&repo);
    two_snapshots(&src, s(&repo), &env);
    let remote = "s3://offsite/copy";
    ok_env(&env, &["repo", "init", remote]);

    let first = copy(&env, s(&repo), remote, "s1");
    assert_eq!(first["data_bytes_moved"], 5 * MIB as u64, "{first}");
    let second = copy(&env, s(&repo), remote, "s2");
    assert_eq!(second["data_bytes_moved"], MIB as u64, "{second}");
    ok_env(&env, &["repo", "check", remote, "--read-data"]);

    // And back from S3 into a fresh local repository, then restored.
    let back = t.path().join("back");
    ok_env(&env, &["repo", "init", s(&back)]);
    let v: serde_json::Value = serde_json::from_str(&ok_env(
        &env,
        &["snapshot", "copy", remote, s(&back), "s1,s2", "--json"],
    ))
    .unwrap();
    assert_eq!(v["copied"], 2);
    assert_eq!(v["data_bytes_moved"], 6 * MIB as u64, "{v}");
    ok(&["restore", s(&back), "s2", "--target", s(&dst)]);
    assert_same_tree(&src.join("idx"), &dst.join("idx"));
}

/// Bytes allocated to files below `dir` (staging folders included).
fn allocated(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

#[test]
fn a_killed_subset_restore_resumes_the_same_subset() {
    let (_t, src, repo, dst) = scene();
    let size = 4 * MIB;
    for i in 0..8 {
        write(
            &src.join(format!("idx/keep/f{i}")),
            &noise(size, 300 + i as u64),
        );
    }
    write(&src.join("idx/other/x"), &noise(size, 399));
    let total = 8 * size as u64;
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let args = [
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--include",
        "idx/keep/*",
    ];

    let mut child = Command::new(bin())
        .args(args)
        .args(["--max-restore-bytes-per-sec", "12MiB", "--concurrency", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while allocated(&dst) < total / 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "restore made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // The same command again continues where it stopped.
    let v = json(&args);
    let in_place = v["snapshot"]["plan"]["bytes_in_place"].as_u64().unwrap();
    assert!(
        in_place >= total / 4,
        "the rerun kept what was written: {v}"
    );
    assert_eq!(v["snapshot"]["files"], 8);
    assert_same_tree(&src.join("idx/keep"), &dst.join("idx/keep"));
    assert!(!dst.join("idx/other").exists());
    let staging = fs::read_dir(&dst)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".snapkeep-restore-")
        })
        .count();
    assert_eq!(staging, 0);
}

/// `snapshot ls R S | head`: the reader stops early and the command ends
/// quietly (killed by SIGPIPE, as `ls` would be), not with a panic.
#[test]
fn output_cut_short_by_its_reader_ends_quietly() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;

    let (_t, src, repo, _) = scene();
    for i in 0..3000 {
        write(
            &src.join("idx")
                .join(format!("a-rather-long-file-name-{i:05}")),
            b"x",
        );
    }
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
    for json in [false, true] {
        let mut args = vec!["snapshot", "ls", s(&repo), "s1"];
        if json {
            args.push("--json");
        }
        let mut child = Command::new(bin())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 100];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        const SIGPIPE: i32 = 13;
        assert!(
            out.status.success() || out.status.signal() == Some(SIGPIPE),
            "{:?}: {err}",
            out.status
        );
    }
}
