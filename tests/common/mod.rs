//! Helpers shared by the integration tests: run the real binary, build and
//! compare directory trees.
#![allow(dead_code)]

pub mod ccr;
pub mod listener;
pub mod mounted;
pub mod node;
mod scene;
pub mod servers;

#[allow(unused_imports)] // not every test target needs a scene
pub use scene::scene;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_snapkeep"))
}

pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("snapkeep runs")
}

/// Runs and requires success; returns stdout.
#[track_caller]
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "snapkeep {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs with --json and parses the output.
#[track_caller]
pub fn json(args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&ok(&a)).expect("valid JSON")
}

/// Runs a snapshot create expected to commit a PARTIAL snapshot, with
/// --json: exit status 3, one warning line, and the snapshot's JSON.
#[track_caller]
pub fn partial_json(args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = run(&a);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "snapkeep {a:?}: {err}");
    assert!(
        err.starts_with("warning: ") && err.contains("PARTIAL"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// Runs and requires failure; returns stderr (checked to be one line).
#[track_caller]
pub fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        !out.status.success(),
        "snapkeep {args:?} should have failed"
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: "), "stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one-line error expected: {err}"
    );
    err
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

pub use snapkeep::core::seeded::noise;

/// `pages` 8 KiB pages of noise (from `seed`) whose headers check out as
/// PostgreSQL heap pages, so `auto` chunking cuts them in page groups.
pub fn pg_relation(pages: usize, seed: u64) -> Vec<u8> {
    let mut file = noise(pages * 8192, seed);
    for page in file.chunks_mut(8192) {
        // pd_lower 40, pd_upper 7936, pd_special 8192, 8 KiB layout 4.
        page[12..20].copy_from_slice(&[40, 0, 0, 31, 0, 32, 4, 32]);
    }
    file
}

/// What a restore must reproduce of one entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    File {
        mode: u32,
        mtime: i64,
        data: Vec<u8>,
    },
    Dir {
        mode: u32,
        mtime: i64,
    },
    Link {
        target: PathBuf,
        mtime: i64,
    },
}

/// A comparable picture of a directory tree (paths relative to `root`).
pub fn snapshot_of(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let mtime = m.mtime() * 1_000_000_000 + m.mtime_nsec();
            let entry = if m.file_type().is_symlink() {
                Entry::Link {
                    target: fs::read_link(&p).unwrap(),
                    mtime,
                }
            } else if m.is_dir() {
                stack.push(p.clone());
                Entry::Dir {
                    mode: m.permissions().mode() & 0o7777,
                    mtime,
                }
            } else {
                Entry::File {
                    mode: m.permissions().mode() & 0o7777,
                    mtime,
                    data: fs::read(&p).unwrap(),
                }
            };
            out.insert(rel, entry);
        }
    }
    out
}

#[track_caller]
pub fn assert_same_tree(a: &Path, b: &Path) {
    let (x, y) = (snapshot_of(a), snapshot_of(b));
    assert_eq!(
        x.keys().collect::<Vec<_>>(),
        y.keys().collect::<Vec<_>>(),
        "entry lists differ"
    );
    for (k, v) in &x {
        let brief = |e: &Entry| match e {
            Entry::File { mode, mtime, data } => format!("file {mode:o} {mtime} {}B", data.len()),
            other => format!("{other:?}"),
        };
        assert!(
            v == &y[k],
            "{} differs: {} vs {}",
            k.display(),
            brief(v),
            brief(&y[k])
        );
    }
}

/// Backdates a file's mtime by `age`.
pub fn set_age(path: &Path, age: std::time::Duration) {
    let t = filetime::FileTime::from_system_time(std::time::SystemTime::now() - age);
    filetime::set_file_mtime(path, t).unwrap();
}

/// Every finished pack object of a local repository.
pub fn pack_files(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in fs::read_dir(repo.join("packs")).into_iter().flatten() {
        for f in fs::read_dir(d.unwrap().path()).into_iter().flatten() {
            let p = f.unwrap().path();
            if !p
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".tmp-")
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Runs snapkeep as an unprivileged user (root reads everything, so a
/// permission test needs one); as the current user when that is not root.
pub fn run_unprivileged(args: &[&str]) -> std::process::Output {
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    let mut cmd = if is_root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bin());
        c
    } else {
        std::process::Command::new(bin())
    };
    cmd.args(args).output().unwrap()
}

/// Opens a tree to every user: folders 0777, files 0666.
pub fn open_to_all(root: &Path) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        if m.file_type().is_symlink() {
            continue;
        }
        let mode = if m.is_dir() { 0o777 } else { 0o666 };
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        if m.is_dir() {
            stack.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
}

pub fn init(repo: &Path) {
    ok(&["repo", "init", s(repo)]);
}

/// Runs with extra environment variables; requires success; returns stdout.
#[track_caller]
/// Whether something is mounted at `at` (as /proc/self/mounts names it).
pub fn is_mounted(at: &Path) -> bool {
    let at = fs::canonicalize(at).unwrap_or_else(|_| at.to_path_buf());
    fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(1) == at.to_str())
}

/// `repo init` of a repository with small chunks (16/64/256 KiB, FastCDC),
/// so that a few MiB make many chunks.
pub fn init_small_chunks(env: &[(String, String)], repo: &str) {
    ok_env(
        env,
        &[
            "repo",
            "init",
            repo,
            "--chunking",
            "cdc",
            "--chunk-min",
            "16KiB",
            "--chunk-avg",
            "64KiB",
            "--chunk-max",
            "256KiB",
        ],
    );
}

pub fn ok_env(env: &[(String, String)], args: &[&str]) -> String {
    let out = run_env(env, args);
    assert!(
        out.status.success(),
        "snapkeep {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn run_env(env: &[(String, String)], args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("snapkeep runs")
}

/// Runs with extra environment; requires failure with a one-line error.
#[track_caller]
pub fn fails_env(env: &[(String, String)], args: &[&str]) -> String {
    let out = run_env(env, args);
    assert!(
        !out.status.success(),
        "snapkeep {args:?} should have failed"
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: "), "stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one-line error expected: {err}"
    );
    err
}

/// The whole cycle against a repository URL (used for every backend):
/// init, two snapshots, list, diff, restore byte-identical, check, delete.
pub fn end_to_end(env: &[(String, String)], url: &str, tmp: &Path) {
    end_to_end_init(env, url, tmp, &[]);
}

/// [`end_to_end`] with more `repo init` options (`--encryption`).
pub fn end_to_end_init(env: &[(String, String)], url: &str, tmp: &Path, init: &[&str]) {
    let src = tmp.join("src");
    write(&src.join("logs/a.log"), &b"log line\n".repeat(5000));
    write(&src.join("logs/empty"), b"");
    write(&src.join("data/blob.bin"), &noise(3 << 20, 3));
    write(&src.join("settings.json"), b"{}");
    let mut init_args = vec!["repo", "init", url];
    init_args.extend_from_slice(init);
    ok_env(env, &init_args);
    ok_env(
        env,
        &["snapshot", "create", url, "one", "--source", s(&src)],
    );
    write(&src.join("logs/b.log"), b"second");
    ok_env(
        env,
        &["snapshot", "create", url, "two", "--source", s(&src)],
    );
    let list: serde_json::Value =
        serde_json::from_str(&ok_env(env, &["snapshot", "list", url, "--json"])).unwrap();
    assert_eq!(list["total"], 2);
    let diff: serde_json::Value = serde_json::from_str(&ok_env(
        env,
        &["snapshot", "diff", url, "one", "two", "--json"],
    ))
    .unwrap();
    assert_eq!(diff["added"], 1);
    let dst = tmp.join("dst");
    ok_env(
        env,
        &[
            "restore",
            url,
            "two",
            "--target",
            s(&dst),
            "--include-global-state",
        ],
    );
    assert_same_tree(&src, &dst);
    ok_env(env, &["repo", "check", url, "--read-data"]);
    ok_env(env, &["snapshot", "delete", url, "one"]);
    ok_env(env, &["repo", "check", url, "--read-data"]);
    let dst2 = tmp.join("dst2");
    ok_env(
        env,
        &[
            "restore",
            url,
            "two",
            "--target",
            s(&dst2),
            "--include-global-state",
        ],
    );
    assert_same_tree(&src, &dst2);
}
