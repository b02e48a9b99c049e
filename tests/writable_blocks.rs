//! `mount --writable` with the block layer (real FUSE mounts, as root):
//! a change to a large file copies the blocks it touches, not the file;
//! renames, truncates and hard links of the snapshot's files keep their
//! bytes; the layer's own bookkeeping is out of the users' reach; and a
//! killed mount loses nothing it was told to keep.

mod common;

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use common::mounted::{writable_args, writable_dirs, Mounted};
use common::{noise, ok, s, scene, write};

const MIB: usize = 1024 * 1024;

/// Bytes the layer's file at `rel` takes on disk.
fn allocated(upper: &Path, rel: &str) -> u64 {
    fs::metadata(upper.join("tree").join(rel)).unwrap().blocks() * 512
}

fn xattr(args: &[&str]) -> (bool, String) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import os, sys\n\
             op, path = sys.argv[1], sys.argv[2]\n\
             try:\n\
             \x20   if op == 'list': print(os.listxattr(path))\n\
             \x20   elif op == 'get': print(os.getxattr(path, sys.argv[3]))\n\
             \x20   else: os.setxattr(path, sys.argv[3], b'x')\n\
             except OSError as e:\n\
             \x20   print(e); sys.exit(1)\n",
        )
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_page_rewritten_in_a_large_file_copies_one_block_and_survives_a_killed_mount() {
    let (_t, src, repo, _dst) = scene();
    let big = noise(16 * MIB + 3, 11);
    write(&src.join("db/table"), &big);
    write(&src.join("db/small.txt"), b"small\n");
    common::init_small_chunks(&[], s(&repo));
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let (mnt, upper, cache) = writable_dirs(_t.path());
    let args = writable_args(s(&repo), "s1", Some("db"), s(&cache), s(&upper));
    let m = Mounted::start(&[], &args, &mnt);
    assert_eq!(allocated(&upper, "table"), 0, "nothing copied at mount");

    // A service opens the file for writing and rewrites one 8 KiB page.
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(mnt.join("table"))
        .unwrap();
    assert_eq!(allocated(&upper, "table"), 0, "nothing copied on open");
    f.write_all_at(&[7; 8192], 5 * MIB as u64 + 4096).unwrap();
    f.sync_all().unwrap();
    let copied = allocated(&upper, "table");
    assert!(copied > 0 && copied <= 128 * 1024, "{copied} bytes copied");
    let mut expected = big.clone();
    expected[5 * MIB + 4096..5 * MIB + 4096 + 8192].fill(7);
    let mut page = vec![0; 3 * 8192];
    f.read_exact_at(&mut page, 5 * MIB as u64 - 4096).unwrap();
    assert!(page == expected[5 * MIB - 4096..5 * MIB + 5 * 4096]);
    drop(f);
    // A second mount of the same layer is refused while this one lives.
    let other = _t.path().join("mnt2");
    fs::create_dir_all(&other).unwrap();
    let err = common::fails(&[&["mount"], &args[..], &[s(&other)]].concat());
    assert!(err.contains("is in use by the mount at"), "{err}");

    // Killed, not unmounted: what was synced is there at the next mount,
    // and the rest of the file still comes from the snapshot.
    m.kill();
    let _ = Command::new("umount")
        .arg("-l")
        .arg(&mnt)
        .stderr(std::process::Stdio::null())
        .status();
    let m = Mounted::start(&[], &args, &mnt);
    assert!(fs::read(mnt.join("table")).unwrap() == expected);
    assert_eq!(fs::read(mnt.join("small.txt")).unwrap(), b"small\n");
    m.stop();
    ok(&["repo", "check", s(&repo), "--read-data"]);
}

/// A file deep enough that its path and a bitmap of 64 KiB blocks would
/// not fit the extended attribute (ext4 keeps an inode's attributes in one
/// 4 KiB block) mounts with larger blocks instead of failing the mount.
#[test]
fn a_large_file_at_a_very_long_path_mounts_writable() {
    let (_t, src, repo, _dst) = scene();
    let deep: Vec<String> = (0..15)
        .map(|n| format!("{n:02}{}", "d".repeat(248)))
        .collect();
    let rel = format!("{}/big", deep.join("/"));
    let file = src.join("db").join(&rel);
    write(&file, b"");
    let size = 256 * MIB as u64;
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(size)
        .unwrap();
    let marks = [
        (0, b"first".as_slice()),
        (size / 2, b"middle"),
        (size - 4, b"last"),
    ];
    for (at, bytes) in marks {
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .write_all_at(bytes, at)
            .unwrap();
    }
    common::init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let (mnt, upper, cache) = writable_dirs(_t.path());
    let args = writable_args(s(&repo), "s1", Some("db"), s(&cache), s(&upper));
    let m = Mounted::start(&[], &args, &mnt);
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(mnt.join(&rel))
        .unwrap();
    assert_eq!(f.metadata().unwrap().len(), size);
    f.write_all_at(b"changed", size / 4).unwrap();
    f.sync_all().unwrap();
    drop(f);
    m.stop();

    let m = Mounted::start(&[], &args, &mnt);
    let f = fs::File::open(mnt.join(&rel)).unwrap();
    let read = |at: u64, len: usize| {
        let mut buf = vec![0; len];
        f.read_exact_at(&mut buf, at).unwrap();
        buf
    };
    for (at, bytes) in marks {
        assert_eq!(read(at, bytes.len()), bytes, "at {at}");
    }
    assert_eq!(read(size / 4 - 3, 13), b"\0\0\0changed\0\0\0");
    // Blocks of 4 MiB (64 for the file) were filled, not the whole file:
    // the write's, the one before it (the read back starts 3 bytes
    // earlier), and the three marks' (and the file system's extent
    // blocks).
    let copied = allocated(&upper, &rel);
    let blocks = 5 * 4 * MIB as u64;
    assert!(
        (blocks..blocks + 64 * 1024).contains(&copied),
        "{copied} bytes copied"
    );
    drop(f);
    m.stop();
}

#[test]
fn renames_truncates_and_links_of_snapshot_files_keep_their_bytes() {
    let (_t, src, repo, _dst) = scene();
    let a = noise(3 * MIB + 17, 21);
    let b = noise(2 * MIB, 22);
    write(&src.join("db/a.bin"), &a);
    write(&src.join("db/dir/b.bin"), &b);
    write(&src.join("db/c.bin"), &noise(MIB, 23));
    common::init_small_chunks(&[], s(&repo));
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let (mnt, upper, cache) = writable_dirs(_t.path());
    let args = writable_args(s(&repo), "s1", Some("db"), s(&cache), s(&upper));
    let m = Mounted::start(&[], &args, &mnt);

    // Renamed before any byte was read: read back from its new name.
    fs::rename(mnt.join("dir"), mnt.join("moved")).unwrap();
    fs::rename(mnt.join("a.bin"), mnt.join("moved/a.bin")).unwrap();
    // Cut inside a block, then grown: the snapshot's bytes past the cut
    // never come back.
    let f = fs::OpenOptions::new()
        .write(true)
        .open(mnt.join("moved/b.bin"))
        .unwrap();
    f.set_len(MIB as u64 + 1000).unwrap();
    f.set_len(2 * MIB as u64).unwrap();
    drop(f);
    let mut b_expected = b.clone();
    b_expected[MIB + 1000..].fill(0);
    // A hard link to a snapshot file: a write through one name shows
    // through the other.
    fs::hard_link(mnt.join("c.bin"), mnt.join("c-link.bin")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(mnt.join("c-link.bin"))
        .unwrap()
        .write_all_at(b"linked", 10)
        .unwrap();
    // Truncated on open.
    fs::write(mnt.join("moved/a.bin"), b"").unwrap();
    fs::write(mnt.join("moved/a.bin"), &a[..100]).unwrap();
    m.stop();

    let m = Mounted::start(&[], &args, &mnt);
    assert_eq!(fs::read(mnt.join("moved/a.bin")).unwrap(), &a[..100]);
    assert!(fs::read(mnt.join("moved/b.bin")).unwrap() == b_expected);
    let c = fs::read(mnt.join("c.bin")).unwrap();
    assert_eq!(&c[10..16], b"linked");
    assert!(c == fs::read(mnt.join("c-link.bin")).unwrap());
    assert_eq!(fs::metadata(mnt.join("c.bin")).unwrap().nlink(), 2);
    assert!(!mnt.join("dir").exists() && !mnt.join("a.bin").exists());
    m.stop();
}

#[test]
fn the_layers_own_attributes_are_out_of_reach_and_filling_keeps_mtimes() {
    let (_t, src, repo, _dst) = scene();
    write(&src.join("db/file"), &noise(MIB, 31));
    write(&src.join("db/victim"), b"not yours\n");
    common::init_small_chunks(&[], s(&repo));
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let (mnt, upper, cache) = writable_dirs(_t.path());
    let args = writable_args(s(&repo), "s1", Some("db"), s(&cache), s(&upper));
    let m = Mounted::start(&[], &args, &mnt);
    let file = mnt.join("file");
    let (listed, names) = xattr(&["list", s(&file)]);
    assert!(listed && !names.contains("snapkeep"), "{names}");
    assert!(!xattr(&["get", s(&file), "user.snapkeep.fill"]).0);
    // A user's file must not be pointed at another file's bytes.
    write(&mnt.join("mine"), b"");
    assert!(!xattr(&["set", s(&mnt.join("mine")), "user.snapkeep.fill"]).0);
    // Other attributes work as on any folder.
    assert!(xattr(&["set", s(&mnt.join("mine")), "user.note"]).0);
    assert!(xattr(&["get", s(&mnt.join("mine")), "user.note"])
        .1
        .contains('x'));

    // Reading fills blocks, and is not a change.
    let before = fs::metadata(&file).unwrap().mtime();
    assert!(fs::read(&file).unwrap() == fs::read(src.join("db/file")).unwrap());
    m.stop();
    let m = Mounted::start(&[], &args, &mnt);
    assert_eq!(fs::metadata(&file).unwrap().mtime(), before);
    assert_eq!(
        fs::metadata(&file).unwrap().mtime(),
        fs::metadata(src.join("db/file")).unwrap().mtime()
    );
    m.stop();
}

#[test]
fn writers_and_readers_at_once_never_see_the_snapshot_overwrite_a_write() {
    let (_t, src, repo, _dst) = scene();
    let size = 8 * MIB;
    let base = noise(size, 41);
    write(&src.join("db/shared"), &base);
    common::init_small_chunks(&[], s(&repo));
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let (mnt, upper, cache) = writable_dirs(_t.path());
    let args = writable_args(s(&repo), "s1", Some("db"), s(&cache), s(&upper));
    let m = Mounted::start(&[], &args, &mnt);
    let path = mnt.join("shared");
    const PAGE: usize = 8192;
    let pages = size / PAGE;
    // Writer w owns the pages p with p % 4 == w, and writes half of them,
    // in an order of its own, while readers check the pages nobody writes.
    let owned = |w: usize| (0..pages).filter(move |p| p % 4 == w && p % 8 < 4);
    std::thread::scope(|scope| {
        for w in 0..4 {
            let path = &path;
            scope.spawn(move || {
                let f = fs::OpenOptions::new().write(true).open(path).unwrap();
                let mut mine: Vec<usize> = owned(w).collect();
                mine.reverse();
                let turn = w * 7 % mine.len();
                mine.rotate_left(turn);
                for p in mine {
                    f.write_all_at(&[w as u8 + 1; PAGE], (p * PAGE) as u64)
                        .unwrap();
                }
            });
        }
        for r in 0..2 {
            let (path, base) = (&path, &base);
            scope.spawn(move || {
                let f = fs::File::open(path).unwrap();
                let mut page = vec![0; PAGE];
                for i in 0..pages {
                    let p = (i * 37 + r * 11) % pages;
                    if p % 8 >= 4 {
                        f.read_exact_at(&mut page, (p * PAGE) as u64).unwrap();
                        assert!(page == base[p * PAGE..(p + 1) * PAGE], "page {p}");
                    }
                }
            });
        }
    });
    let mut expected = base.clone();
    for w in 0..4 {
        for p in owned(w) {
            expected[p * PAGE..(p + 1) * PAGE].fill(w as u8 + 1);
        }
    }
    assert!(fs::read(&path).unwrap() == expected);
    m.stop();
    let m = Mounted::start(&[], &args, &mnt);
    assert!(fs::read(&path).unwrap() == expected, "after a remount");
    m.stop();
}

#[test]
fn prewarm_fills_the_whole_layer_in_the_background_while_the_mount_serves() {
    let (_t, src, repo, dst) = scene();
    let big = noise(12 * MIB + 5, 51);
    write(&src.join("db/big"), &big);
    write(&src.join("db/sub/small"), b"small\n");
    common::init_small_chunks(&[], s(&repo));
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let (mnt, upper, cache) = writable_dirs(_t.path());
    let mut args = writable_args(s(&repo), "s1", Some("db"), s(&cache), s(&upper));
    args.push("--prewarm");
    let m = Mounted::start(&[], &args, &mnt);
    // The service writes while the layer fills.
    fs::OpenOptions::new()
        .write(true)
        .open(mnt.join("big"))
        .unwrap()
        .write_all_at(b"mine", 3 * MIB as u64 + 1)
        .unwrap();
    let owes = |rel: &str| {
        xattr(&[
            "get",
            s(&upper.join("tree").join(rel)),
            "user.snapkeep.fill",
        ])
        .0
    };
    let start = std::time::Instant::now();
    while owes("big") || owes("sub/small") {
        assert!(start.elapsed().as_secs() < 60, "prewarm did not finish");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    m.stop();
    let mut expected = big.clone();
    expected[3 * MIB + 1..3 * MIB + 5].copy_from_slice(b"mine");
    // The layer is a complete local folder: its files read without the
    // repository.
    let away = _t.path().join("repo-away");
    fs::rename(&repo, &away).unwrap();
    assert!(fs::read(upper.join("tree/big")).unwrap() == expected);
    assert_eq!(fs::read(upper.join("tree/sub/small")).unwrap(), b"small\n");
    fs::rename(&away, &repo).unwrap();
    let out = common::json(&[
        "materialize",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--upper",
        s(&upper),
        "--index",
        "db",
        "--no-cache",
    ]);
    assert_eq!(out["materialized"]["layer"]["filled_bytes"], 0, "{out}");
    assert!(fs::read(dst.join("db/big")).unwrap() == expected);
}
