//! A mount's chunk cache feeding a restore (real FUSE mounts, as root):
//! chunks a mount read are not fetched again by `restore --cache`, a
//! corrupt or missing cache entry is fetched from the repository, and the
//! restored tree matches its source byte for byte.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::mounted::{writable_args, writable_dirs, Mounted};
use common::{assert_same_tree, json, noise, ok, s, scene, write};
use serde_json::Value;

/// Files over many small chunks: `data` (read through the mount) and
/// `logs` (never read).
fn generated_tree(src: &Path) {
    let data = src.join("data");
    write(&data.join("small.txt"), b"hello cache\n");
    write(&data.join("big.bin"), &noise(3 * 1024 * 1024 + 77, 1));
    write(&data.join("a/b/deep.log"), &noise(400_000, 2));
    std::os::unix::fs::symlink("a/b/deep.log", data.join("link")).unwrap();
    write(&src.join("logs/one.log"), &noise(500_000, 3));
}

/// Snapshot `s1` of `src` in a small-chunk repository, then a mount of
/// its `data` index that reads every file (warming `cache`).
fn warmed(src: &Path, repo: &Path, cache: &Path, mnt: &Path) {
    generated_tree(src);
    common::init_small_chunks(&[], s(repo));
    ok(&["snapshot", "create", s(repo), "s1", "--source", s(src)]);
    let m = Mounted::start(
        &[],
        &[s(repo), "s1", "--index", "data", "--cache", s(cache)],
        mnt,
    );
    assert_same_tree(&src.join("data"), mnt);
    m.stop();
}

/// The cache's entries (chunk files, not their block sums).
/// `restore REPO s1 --target TARGET --json EXTRA...`: its `snapshot` object.
fn restore(env: &[(String, String)], repo: &Path, target: &Path, extra: &[&str]) -> Value {
    let args = [
        &["restore", s(repo), "s1", "--target", s(target), "--json"][..],
        extra,
    ]
    .concat();
    let text = common::ok_env(env, &args);
    serde_json::from_str::<Value>(&text).unwrap()["snapshot"].clone()
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(cache)
        .unwrap()
        .flat_map(|d| fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_none())
        .collect();
    out.sort();
    out
}

#[test]
fn a_restore_takes_the_chunks_a_mount_read_from_its_cache() {
    let (_t, src, repo, dst) = scene();
    let (cache, mnt) = (_t.path().join("cache"), _t.path().join("mnt"));
    warmed(&src, &repo, &cache, &mnt);

    let cold = _t.path().join("cold");
    let from_repo = restore(&[], &repo, &cold, &["--indices", "data", "--no-cache"]);
    let warm = restore(
        &[],
        &repo,
        &dst,
        &["--indices", "data", "--cache", s(&cache)],
    );
    assert_same_tree(&src.join("data"), &dst.join("data"));
    assert_same_tree(&src.join("data"), &cold.join("data"));

    // Every chunk of `data` came from the cache: no pack range was read.
    assert_eq!(warm["plan"]["requests"], 0, "{warm}");
    assert_eq!(warm["plan"]["bytes_to_fetch"], 0, "{warm}");
    let c = &warm["cache"];
    assert_eq!(c["refetched"], 0);
    assert_eq!(c["chunks"], warm["plan"]["blobs_from_cache"]);
    assert!(c["chunks"].as_u64().unwrap() > 40, "{c}");
    assert_eq!(c["bytes"], warm["size_in_bytes"], "{warm}");
    // What the repository sent: only the index, manifest and trees.
    let got = |v: &serde_json::Value| v["requests"]["bytes_received"].as_u64().unwrap();
    assert!(got(&from_repo) > 3 * 1024 * 1024, "{from_repo}");
    assert!(got(&warm) < 512 * 1024, "{warm}");
    assert!(from_repo["cache"].is_null(), "--no-cache uses no cache");

    // `logs` was never read through the mount: fetched, not cached.
    let both = _t.path().join("both");
    let out = restore(&[], &repo, &both, &["--cache", s(&cache)]);
    assert_same_tree(&src, &both);
    assert!(out["plan"]["requests"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(out["cache"]["chunks"], c["chunks"]);
}

#[test]
fn a_corrupt_or_missing_cache_entry_is_fetched_from_the_repository() {
    let (_t, src, repo, dst) = scene();
    let (cache, mnt) = (_t.path().join("cache"), _t.path().join("mnt"));
    warmed(&src, &repo, &cache, &mnt);
    let e = entries(&cache);
    assert!(e.len() > 10);
    // One entry flipped (same size: only its hash tells), one removed
    // after the restore could list it is the same as removed before.
    let mut bytes = fs::read(&e[3]).unwrap();
    bytes[0] ^= 0xff;
    fs::write(&e[3], bytes).unwrap();
    fs::remove_file(&e[7]).unwrap();
    // A stray file in the cache folder is no entry.
    write(&cache.join("zz/not-a-chunk"), b"x");

    let out = restore(
        &[],
        &repo,
        &dst,
        &["--indices", "data", "--cache", s(&cache)],
    );
    assert_same_tree(&src.join("data"), &dst.join("data"));
    // The flipped entry was planned from the cache, failed its check and
    // was fetched; the removed one was never planned from it.
    assert_eq!(out["cache"]["refetched"], 1, "{out}");
    assert_eq!(out["plan"]["requests"].as_u64().unwrap(), 1, "{out}");
}

#[test]
fn restore_refuses_a_cache_folder_that_does_not_exist() {
    let (_t, src, repo, dst) = scene();
    write(&src.join("data/x"), b"x");
    common::init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let missing = _t.path().join("nowhere");
    let err = common::fails(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--cache",
        s(&missing),
    ]);
    assert!(
        err.contains("--cache") && err.contains("no such folder"),
        "{err}"
    );
}

#[test]
fn materialize_gives_the_folder_an_overlayfs_mount_showed() {
    let (_t, src, repo, dst) = scene();
    let db = src.join("db");
    write(&db.join("big.bin"), &noise(2 * 1024 * 1024 + 5, 7));
    write(&db.join("keep.txt"), b"kept\n");
    write(&db.join("gone.txt"), b"to be deleted\n");
    write(&db.join("edit.txt"), b"before\n");
    write(&db.join("sub/a.txt"), b"a\n");
    write(&db.join("sub/deeper/b.txt"), b"b\n");
    write(&db.join("olddir/x.txt"), b"x\n");
    write(&db.join("moved/m.txt"), b"m\n");
    std::os::unix::fs::symlink("keep.txt", db.join("link")).unwrap();
    common::init_small_chunks(&[], s(&repo));
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let (mnt, upper, cache) = writable_dirs(_t.path());
    let mut args = writable_args(s(&repo), "s1", Some("db"), s(&cache), s(&upper));
    args.extend(["--writable-layer", "overlayfs"]);
    let m = Mounted::start(&[], &args, &mnt);
    // A service reads a large file lazily (it lands in the cache) and
    // changes the folder in every way overlayfs records.
    assert_eq!(
        fs::read(mnt.join("big.bin")).unwrap(),
        fs::read(db.join("big.bin")).unwrap()
    );
    write(&mnt.join("new.txt"), b"created\n");
    fs::hard_link(mnt.join("new.txt"), mnt.join("new-link.txt")).unwrap();
    write(&mnt.join("newdir/inner/n.txt"), b"nested\n");
    fs::write(mnt.join("edit.txt"), b"after\n").unwrap();
    fs::remove_file(mnt.join("gone.txt")).unwrap();
    fs::remove_dir_all(mnt.join("olddir")).unwrap();
    // Deleted and made again: an opaque folder, nothing of the old one shows.
    fs::remove_dir_all(mnt.join("sub")).unwrap();
    write(&mnt.join("sub/c.txt"), b"c\n");
    // A folder of the snapshot renamed: the overlay refuses the rename
    // (no redirects), so `mv` copies it and deletes the old one.
    let mv = Command::new("mv")
        .arg(mnt.join("moved"))
        .arg(mnt.join("renamed"))
        .status()
        .unwrap();
    assert!(mv.success());
    fs::remove_file(mnt.join("link")).unwrap();
    std::os::unix::fs::symlink("new.txt", mnt.join("link")).unwrap();
    fs::set_permissions(
        mnt.join("keep.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let shown = common::snapshot_of(&mnt);
    assert!(!shown.contains_key(Path::new("sub/a.txt")));
    // Not while the layer is in use.
    let err = common::fails(&[
        "materialize",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--upper",
        s(&upper),
        "--index",
        "db",
    ]);
    assert!(err.contains("is still mounted at"), "{err}");
    assert!(!dst.exists());
    m.stop();

    let out = json(&[
        "materialize",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--upper",
        s(&upper),
        "--index",
        "db",
        "--cache",
        s(&cache),
    ])["materialized"]
        .clone();
    let got = common::snapshot_of(&dst.join("db"));
    assert_eq!(
        shown.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{out}"
    );
    for (path, entry) in &shown {
        assert!(entry == &got[path], "{} differs", path.display());
    }
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| fs::metadata(dst.join("db").join(p)).unwrap().ino();
    assert_eq!(ino("new.txt"), ino("new-link.txt"), "hard links stay links");
    let layer = &out["layer"];
    assert_eq!(layer["hard_links"], 1, "{out}");
    assert_eq!(layer["deleted"], 3, "gone.txt, olddir and moved: {out}");
    assert_eq!(layer["replaced_dirs"], 1, "sub: {out}");
    // big.bin came from the cache the mount filled.
    let cached = out["restore"]["cache"]["bytes"].as_u64().unwrap();
    assert!(cached >= 2 * 1024 * 1024, "{out}");
    assert_eq!(out["restore"]["cache"]["refetched"], 0);

    // The layer is left as it was: the next writable mount still shows it.
    let m = Mounted::start(&[], &args, &mnt);
    assert_eq!(fs::read(mnt.join("edit.txt")).unwrap(), b"after\n");
    m.stop();
}

#[test]
fn materialize_fills_what_a_block_layer_owes_and_gives_the_folder_the_mount_showed() {
    let (_t, src, repo, dst) = scene();
    let db = src.join("db");
    let big = noise(2 * 1024 * 1024 + 5, 7);
    write(&db.join("big.bin"), &big);
    write(&db.join("unread.bin"), &noise(1024 * 1024 + 3, 8));
    write(&db.join("keep.txt"), b"kept\n");
    write(&db.join("gone.txt"), b"to be deleted\n");
    write(&db.join("edit.txt"), b"before\n");
    write(&db.join("sub/a.txt"), b"a\n");
    write(&db.join("moved/m.txt"), b"m\n");
    std::os::unix::fs::symlink("keep.txt", db.join("link")).unwrap();
    common::init_small_chunks(&[], s(&repo));
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let (mnt, upper, cache) = writable_dirs(_t.path());
    let args = writable_args(s(&repo), "s1", Some("db"), s(&cache), s(&upper));
    let m = Mounted::start(&[], &args, &mnt);
    // One page of big.bin rewritten in place; nothing else of it, and
    // nothing of unread.bin, is read through the mount.
    {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new()
            .write(true)
            .open(mnt.join("big.bin"))
            .unwrap();
        f.write_all_at(&[0xAB; 8192], 1024 * 1024 + 100).unwrap();
    }
    write(&mnt.join("new.txt"), b"created\n");
    fs::hard_link(mnt.join("new.txt"), mnt.join("new-link.txt")).unwrap();
    write(&mnt.join("newdir/inner/n.txt"), b"nested\n");
    fs::write(mnt.join("edit.txt"), b"after\n").unwrap();
    fs::remove_file(mnt.join("gone.txt")).unwrap();
    fs::remove_dir_all(mnt.join("sub")).unwrap();
    write(&mnt.join("sub/c.txt"), b"c\n");
    // A folder renamed: its file still owes its bytes, under its new name.
    fs::rename(mnt.join("moved"), mnt.join("renamed")).unwrap();
    fs::set_permissions(
        mnt.join("keep.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let materialize = [
        "materialize",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--upper",
        s(&upper),
        "--index",
        "db",
        "--cache",
        s(&cache),
    ];
    let err = common::fails(&materialize);
    assert!(err.contains("is still mounted at"), "{err}");
    assert!(!dst.exists());
    m.stop();

    let out = json(&materialize)["materialized"].clone();
    assert!(
        out.get("restore").is_none(),
        "a block layer needs no restore: {out}"
    );
    let layer = &out["layer"];
    let filled = layer["filled_bytes"].as_u64().unwrap();
    // unread.bin whole, big.bin but the block its page fell in, m.txt.
    assert!(
        filled >= 1024 * 1024 + 3 + 2 * 1024 * 1024 - 128 * 1024,
        "{out}"
    );
    assert!(filled <= 1024 * 1024 + 3 + 2 * 1024 * 1024 + 5, "{out}");
    assert_eq!(layer["hard_links"], 1, "{out}");
    let got = dst.join("db");
    let mut expected = big.clone();
    expected[1024 * 1024 + 100..1024 * 1024 + 100 + 8192].fill(0xAB);
    assert!(fs::read(got.join("big.bin")).unwrap() == expected);
    assert!(fs::read(got.join("unread.bin")).unwrap() == fs::read(db.join("unread.bin")).unwrap());
    assert_eq!(fs::read(got.join("renamed/m.txt")).unwrap(), b"m\n");
    assert!(!got.join("gone.txt").exists() && !got.join("sub/a.txt").exists());
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| fs::metadata(got.join(p)).unwrap().ino();
    assert_eq!(ino("new.txt"), ino("new-link.txt"), "hard links stay links");

    // The layer shows the same after the fill, mtimes included, and so
    // does the materialized folder.
    let m = Mounted::start(&[], &args, &mnt);
    let shown = common::snapshot_of(&mnt);
    m.stop();
    let copied = common::snapshot_of(&got);
    assert_eq!(
        shown.keys().collect::<Vec<_>>(),
        copied.keys().collect::<Vec<_>>()
    );
    for (path, entry) in &shown {
        assert!(entry == &copied[path], "{} differs", path.display());
    }
    // A folder that is not empty is replaced only when asked.
    let err = common::fails(&materialize);
    assert!(err.contains("is not empty"), "{err}");
    let again = json(&[&materialize[..], &["--overwrite"]].concat())["materialized"].clone();
    assert_eq!(again["layer"]["filled_bytes"], 0, "{again}");
    let copied = common::snapshot_of(&got);
    assert_eq!(
        shown.keys().collect::<Vec<_>>(),
        copied.keys().collect::<Vec<_>>()
    );
}

#[test]
fn materialize_refuses_a_folder_that_holds_no_writable_layer() {
    let (_t, src, repo, dst) = scene();
    write(&src.join("data/x"), b"x");
    common::init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let empty = _t.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let err = common::fails(&[
        "materialize",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--upper",
        s(&empty),
    ]);
    assert!(err.contains("holds no writable layer"), "{err}");
    assert!(!dst.exists(), "nothing was restored");
}

#[test]
fn materialize_of_a_mount_of_every_index_lays_the_layer_over_the_target() {
    let (_t, src, repo, dst) = scene();
    generated_tree(&src);
    common::init_small_chunks(&[], s(&repo));
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let (mnt, upper, cache) = writable_dirs(_t.path());
    let args = writable_args(s(&repo), "s1", None, s(&cache), s(&upper));
    let m = Mounted::start(&[], &args, &mnt);
    write(&mnt.join("data/a/b/added.txt"), b"added\n");
    fs::remove_dir_all(mnt.join("logs")).unwrap();
    let shown = common::snapshot_of(&mnt);
    m.stop();

    let out = json(&[
        "materialize",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--upper",
        s(&upper),
        "--cache",
        s(&cache),
    ])["materialized"]
        .clone();
    let got = common::snapshot_of(&dst);
    assert_eq!(
        shown.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{out}"
    );
    for (path, entry) in &shown {
        assert!(entry == &got[path], "{} differs", path.display());
    }
    assert!(
        !dst.join("logs").exists(),
        "the index deleted through the mount"
    );
}

#[test]
fn an_encrypted_repository_restores_from_its_mount_cache_by_keyed_ids() {
    let (_t, src, repo, dst) = scene();
    let env = vec![("SNAPKEEP_PASSWORD".to_string(), "cache pass".to_string())];
    write(&src.join("data/big.bin"), &noise(3 * 1024 * 1024 + 1, 9));
    write(&src.join("data/small.txt"), b"sealed\n");
    common::ok_env(&env, &["repo", "init", s(&repo), "--encryption"]);
    common::ok_env(
        &env,
        &["snapshot", "create", s(&repo), "s1", "--source", s(&src)],
    );
    let (cache, mnt) = (_t.path().join("cache"), _t.path().join("mnt"));
    let m = Mounted::start(
        &env,
        &[s(&repo), "s1", "--index", "data", "--cache", s(&cache)],
        &mnt,
    );
    assert_same_tree(&src.join("data"), &mnt);
    m.stop();

    let out = &restore(&env, &repo, &dst, &["--cache", s(&cache)]);
    assert_same_tree(&src.join("data"), &dst.join("data"));
    // Entries are named and checked by the repository's keyed ids: all
    // of them pass.
    assert_eq!(out["plan"]["requests"], 0, "{out}");
    assert_eq!(out["cache"]["refetched"], 0, "{out}");
    assert_eq!(out["cache"]["bytes"], out["size_in_bytes"], "{out}");
}

#[test]
fn restore_uses_the_mounts_default_cache_unless_told_not_to() {
    let (_t, src, repo, dst) = scene();
    generated_tree(&src);
    common::init_small_chunks(&[], s(&repo));
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let home = _t.path().join("xdg-cache");
    let env = vec![("XDG_CACHE_HOME".to_string(), s(&home).to_string())];
    let mnt = _t.path().join("mnt");
    let m = Mounted::start(&env, &[s(&repo), "s1", "--index", "data"], &mnt);
    assert_same_tree(&src.join("data"), &mnt);
    m.stop();
    assert!(home.join("snapkeep/chunks").is_dir());

    let out = restore(&env, &repo, &dst, &[]);
    assert_same_tree(&src, &dst);
    assert!(out["cache"]["chunks"].as_u64().unwrap() > 0, "{out}");
    let other = _t.path().join("other");
    let out = restore(&env, &repo, &other, &["--no-cache"]);
    assert!(out["cache"].is_null(), "{out}");
    assert_eq!(out["plan"]["blobs_from_cache"], serde_json::Value::Null);
}
