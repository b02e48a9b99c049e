//! `snapkeep mount` through real FUSE mounts (as root, /dev/fuse): every
//! file, mode, mtime, symlink and hard link of a mounted snapshot matches
//! its source; random reads from many readers at once match byte for
//! byte; the cache stays within its bound with files held open; a corrupt
//! cache entry is fetched again; a mount of an S3 repository (moto); and
//! the pin: delete refuses a mounted snapshot, proceeds after unmount, and
//! a killed mount's pin stops counting once stale.

mod common;

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::mounted::{writable_args, writable_dirs, Mounted};
use common::servers::{create_bucket, moto, s3_env};
use common::{assert_same_tree, fails, is_mounted, noise, ok, ok_env, s, scene, write};

/// A repository with small chunks (many per file) holding snapshot `s1` of
/// `src` with indices `data` and `logs`.
fn repo_with(src: &Path, repo: &str, env: &[(String, String)]) {
    common::init_small_chunks(env, repo);
    ok_env(env, &["snapshot", "create", repo, "s1", "--source", s(src)]);
}

/// Files of every kind the mount must show: empty, small, multi-chunk,
/// nested, odd modes, a symlink, a hard link.
fn generated_tree(src: &Path) {
    let data = src.join("data");
    write(&data.join("empty"), b"");
    write(&data.join("small.txt"), b"hello mount\n");
    write(&data.join("big.bin"), &noise(6 * 1024 * 1024 + 123, 1));
    write(&data.join("a/b/c/deep.log"), &noise(300_000, 2));
    write(&data.join("secret"), &noise(70_000, 3));
    fs::set_permissions(data.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(data.join("a/b"), fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("a/b/c/deep.log", data.join("link")).unwrap();
    fs::hard_link(data.join("small.txt"), data.join("hard.txt")).unwrap();
    write(&src.join("logs/one.log"), &noise(100_000, 4));
}

#[test]
fn a_mounted_snapshot_matches_its_source_for_many_readers_at_once() {
    let (_t, src, repo, _dst) = scene();
    generated_tree(&src);
    repo_with(&src, s(&repo), &[]);
    let cache = _t.path().join("cache");
    let mnt = _t.path().join("mnt");
    let m = Mounted::start(
        &[],
        &[s(&repo), "s1", "--index", "data", "--cache", s(&cache)],
        &mnt,
    );
    assert_same_tree(&src.join("data"), &mnt);
    let (hard, small) = (
        fs::metadata(mnt.join("hard.txt")).unwrap(),
        fs::metadata(mnt.join("small.txt")).unwrap(),
    );
    assert_eq!(hard.ino(), small.ino(), "a hard link shares its inode");
    assert_eq!(small.nlink(), 2);

    // Eight readers at random offsets of the big file at once.
    let source = Arc::new(fs::read(src.join("data/big.bin")).unwrap());
    let readers: Vec<_> = (0..8u64)
        .map(|r| {
            let (source, path) = (source.clone(), mnt.join("big.bin"));
            std::thread::spawn(move || {
                let f = fs::File::open(path).unwrap();
                let mut state = r * 7919 + 1;
                for _ in 0..60 {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let at = (state >> 20) % source.len() as u64;
                    let len = 1 + (state >> 8) % 200_000;
                    let mut buf = vec![0u8; len as usize];
                    let n = f.read_at(&mut buf, at).unwrap();
                    let end = (at as usize + n).min(source.len());
                    assert_eq!(&buf[..n], &source[at as usize..end], "bytes at {at}+{len}");
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    let summary = m.stop();
    assert_eq!(summary["failed_reads"], 0);
    assert!(summary["cache"]["misses"].as_u64().unwrap() > 0);
    assert!(summary["cache"]["hits"].as_u64().unwrap() > 0);
    assert_eq!(
        fs::read_dir(repo.join("pins")).unwrap().count(),
        0,
        "pin removed"
    );

    // Without --index every index is a folder of its own.
    let m = Mounted::start(&[], &[s(&repo), "s1", "--cache", s(&cache)], &mnt);
    let mut names: Vec<String> = fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["data", "logs"]);
    assert_same_tree(&src.join("logs"), &mnt.join("logs"));
    m.stop();
}

#[test]
fn the_cache_stays_bounded_with_files_held_open_and_a_corrupt_entry_is_fetched_again() {
    let (_t, src, repo, _dst) = scene();
    for i in 0..3 {
        write(
            &src.join(format!("data/f{i}")),
            &noise(12 * 1024 * 1024, 10 + i),
        );
    }
    repo_with(&src, s(&repo), &[]);
    let cache = _t.path().join("cache");
    let mnt = _t.path().join("mnt");
    let bound = 4u64 << 20;
    let m = Mounted::start(
        &[],
        &[
            s(&repo),
            "s1",
            "--index",
            "data",
            "--cache",
            s(&cache),
            "--cache-size",
            "4MiB",
        ],
        &mnt,
    );
    // Watch the cache folder while three open files are read whole.
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (done, peak, cache) = (done.clone(), peak.clone(), cache.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(folder_bytes(&cache), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let open: Vec<fs::File> = (0..3)
        .map(|i| fs::File::open(mnt.join(format!("f{i}"))).unwrap())
        .collect();
    for (i, f) in open.iter().enumerate() {
        let want = fs::read(src.join(format!("data/f{i}"))).unwrap();
        let mut got = vec![0u8; want.len()];
        let mut at = 0;
        while at < got.len() {
            at += f.read_at(&mut got[at..], at as u64).unwrap();
        }
        assert!(got == want, "f{i} differs");
    }
    done.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    drop(open);
    // One pack of slack (8 MiB by default) over the bound at most.
    let limit = bound + 8 * 1024 * 1024;
    let peak = peak.load(Ordering::Relaxed);
    assert!(peak <= limit, "cache peaked at {peak} over {limit}");
    assert!(folder_bytes(&cache) <= limit);
    let summary = m.stop();
    assert!(
        summary["cache"]["evictions"].as_u64().unwrap() > 0,
        "{summary}"
    );

    // Flip the first byte of every cached entry (chunk data, not its
    // block sums): the next mount notices, drops them and fetches again.
    let entries = cache_entries(&cache);
    assert!(!entries.is_empty());
    for e in &entries {
        let mut bytes = fs::read(e).unwrap();
        bytes[0] ^= 0xff;
        fs::write(e, bytes).unwrap();
    }
    let m = Mounted::start(
        &[],
        &[
            s(&repo),
            "s1",
            "--index",
            "data",
            "--cache",
            s(&cache),
            "--cache-size",
            "4MiB",
        ],
        &mnt,
    );
    // The cache holds the tail of f2 (read last): read that first, before
    // other reads evict it.
    let want = fs::read(src.join("data/f2")).unwrap();
    let tail = want.len() - (2 << 20);
    let mut got = vec![0u8; 2 << 20];
    let f = fs::File::open(mnt.join("f2")).unwrap();
    f.read_exact_at(&mut got, tail as u64).unwrap();
    assert!(got == want[tail..], "f2's tail differs");
    drop(f);
    for i in 0..3 {
        let (got, want) = (
            fs::read(mnt.join(format!("f{i}"))).unwrap(),
            fs::read(src.join(format!("data/f{i}"))).unwrap(),
        );
        assert!(got == want, "f{i} differs");
    }
    let summary = m.stop();
    assert!(
        summary["cache"]["corrupt"].as_u64().unwrap() > 0,
        "{summary}"
    );
    assert_eq!(summary["failed_reads"], 0);
}

fn cache_entries(cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in fs::read_dir(cache).into_iter().flatten().flatten() {
        for f in fs::read_dir(d.path()).into_iter().flatten().flatten() {
            out.push(f.path());
        }
    }
    out
}

fn folder_bytes(cache: &Path) -> u64 {
    cache_entries(cache)
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn delete_refuses_a_mounted_snapshot_until_unmounted_or_its_pin_goes_stale() {
    let (_t, src, repo, _dst) = scene();
    write(&src.join("data/a"), &noise(50_000, 5));
    repo_with(&src, s(&repo), &[]);
    ok(&["snapshot", "create", s(&repo), "s2", "--source", s(&src)]);
    let cache = _t.path().join("cache");
    let mnt = _t.path().join("mnt");
    let m = Mounted::start(&[], &[s(&repo), "s1", "--cache", s(&cache)], &mnt);
    let err = fails(&["snapshot", "delete", s(&repo), "s1"]);
    assert!(err.contains("snapshot [s1] is in use"), "{err}");
    assert!(
        err.contains(&format!(":{}", fs::canonicalize(&mnt).unwrap().display())),
        "{err}"
    );
    // Retention goes through the same delete; another snapshot is free.
    ok(&["snapshot", "delete", s(&repo), "s2"]);
    m.stop();
    ok(&["snapshot", "create", s(&repo), "s2", "--source", s(&src)]);
    ok(&["snapshot", "delete", s(&repo), "s2"]);

    // A killed mount leaves its pin: it still blocks until stale.
    let m = Mounted::start(&[], &[s(&repo), "s1", "--cache", s(&cache)], &mnt);
    m.kill();
    let err = fails(&["snapshot", "delete", s(&repo), "s1"]);
    assert!(err.contains("in use"), "{err}");
    // Eleven minutes pass without a heartbeat.
    let pin = fs::read_dir(repo.join("pins"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&pin).unwrap()).unwrap();
    let old = v["heartbeat_ms"].as_i64().unwrap() - 11 * 60_000;
    v["heartbeat_ms"] = old.into();
    fs::write(&pin, serde_json::to_vec(&v).unwrap()).unwrap();
    common::set_age(&pin, Duration::from_secs(11 * 60));
    ok(&["repo", "cleanup", s(&repo)]);
    assert!(!pin.exists(), "cleanup removes a stale pin");
    ok(&["snapshot", "delete", s(&repo), "s1"]);
    ok(&["repo", "check", s(&repo)]);
}

#[test]
fn a_snapshot_in_s3_mounts_and_reads_back() {
    let server = moto();
    create_bucket(server.port, "mounts");
    let env = s3_env(server.port);
    let (_t, src, _repo, _dst) = scene();
    write(&src.join("data/big"), &noise(3 * 1024 * 1024, 7));
    write(&src.join("data/small"), b"s3 mount\n");
    let url = "s3://mounts/repo";
    repo_with(&src, url, &env);
    let mnt = _t.path().join("mnt");
    let cache = _t.path().join("cache");
    let m = Mounted::start(
        &env,
        &[url, "s1", "--index", "data", "--cache", s(&cache)],
        &mnt,
    );
    assert_same_tree(&src.join("data"), &mnt);
    let summary = m.stop();
    assert_eq!(summary["failed_reads"], 0);
}

#[test]
fn bad_mounts_fail_with_one_clear_line() {
    let (_t, src, repo, _dst) = scene();
    write(&src.join("data/a"), b"a");
    repo_with(&src, s(&repo), &[]);
    let mnt = _t.path().join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let err = fails(&["mount", s(&repo), "nope", s(&mnt)]);
    assert!(err.contains("snapshot [nope] is missing"), "{err}");
    let err = fails(&["mount", s(&repo), "s1", s(&mnt), "--index", "other"]);
    assert!(
        err.contains("index [other]") && err.contains("it has: data"),
        "{err}"
    );
    let err = fails(&["mount", s(&repo), "s1", s(&_t.path().join("absent"))]);
    assert!(err.contains("absent"), "{err}");
    assert!(!is_mounted(&mnt));
    // A failed mount leaves no pin behind.
    assert_eq!(
        fs::read_dir(repo.join("pins"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

#[test]
fn a_writable_mount_takes_changes_and_a_service_while_the_repository_stays_untouched() {
    writable_mount_takes_changes("blocks");
}

#[test]
fn an_overlayfs_writable_mount_takes_changes_and_a_service_too() {
    writable_mount_takes_changes("overlayfs");
}

fn writable_mount_takes_changes(layer: &str) {
    let (_t, src, repo, dst) = scene();
    let db = src.join("db");
    fs::create_dir_all(&db).unwrap();
    sqlite(
        &db.join("app.db"),
        "create table t(k integer primary key, v text);\
         with recursive n(i) as (select 1 union all select i + 1 from n where i < 50000) \
         insert into t(v) select 'row ' || i from n;",
    );
    write(&db.join("keep.txt"), b"kept\n");
    write(&db.join("gone.txt"), b"to be deleted\n");
    write(&db.join("edit.txt"), b"before\n");
    repo_with(&src, s(&repo), &[]);
    ok(&["snapshot", "create", s(&repo), "s2", "--source", s(&src)]);
    let (mnt, upper, cache) = writable_dirs(_t.path());
    let mut args = writable_args(s(&repo), "s1", Some("db"), s(&cache), s(&upper));
    args.extend(["--writable-layer", layer]);
    let m = Mounted::start(&[], &args, &mnt);
    // The service starts on the backup and writes.
    let out = sqlite(
        &mnt.join("app.db"),
        "insert into t(v) values ('written on the mount'); select count(*) from t;",
    );
    assert_eq!(out.trim(), "50001");
    write(&mnt.join("new.txt"), b"created\n");
    fs::write(mnt.join("edit.txt"), b"after\n").unwrap();
    fs::remove_file(mnt.join("gone.txt")).unwrap();
    assert_eq!(fs::read(mnt.join("keep.txt")).unwrap(), b"kept\n");
    m.stop();

    // Changes carry over to the next writable mount of the same snapshot.
    let m = Mounted::start(&[], &args, &mnt);
    assert_eq!(fs::read(mnt.join("edit.txt")).unwrap(), b"after\n");
    assert!(!mnt.join("gone.txt").exists());
    let out = sqlite(&mnt.join("app.db"), "select v from t where k = 50001;");
    assert_eq!(out.trim(), "written on the mount");
    m.stop();
    // ... but not to another snapshot's.
    let other = writable_args(s(&repo), "s2", Some("db"), s(&cache), s(&upper));
    fs::create_dir_all(&mnt).unwrap();
    let err = fails(&[&["mount"], &other[..], &[s(&mnt)]].concat());
    assert!(err.contains("holds changes over another snapshot"), "{err}");
    // ... nor as the other kind of layer.
    let other_kind = if layer == "blocks" {
        "overlayfs"
    } else {
        "blocks"
    };
    let mut kind = writable_args(s(&repo), "s1", Some("db"), s(&cache), s(&upper));
    kind.extend(["--writable-layer", other_kind]);
    let err = fails(&[&["mount"], &kind[..], &[s(&mnt)]].concat());
    assert!(err.contains(&format!("holds a {layer} layer")), "{err}");

    // The repository never saw any of it.
    ok(&["repo", "check", s(&repo), "--read-data"]);
    ok(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    assert_same_tree(&db, &dst.join("db"));
}

/// Runs `sql` on the SQLite database `db` with Python's sqlite3 module
/// (a real engine, in every Python); prints the last statement's rows.
fn sqlite(db: &Path, sql: &str) -> String {
    let script = "import sqlite3, sys\n\
        c = sqlite3.connect(sys.argv[1])\n\
        stmts = [x for x in sys.argv[2].split(';') if x.strip()]\n\
        for x in stmts[:-1]: c.execute(x)\n\
        rows = c.execute(stmts[-1]).fetchall()\n\
        c.commit()\n\
        print('\\n'.join('|'.join(str(v) for v in r) for r in rows))\n";
    let out = Command::new("python3")
        .args(["-c", script, s(db), sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
