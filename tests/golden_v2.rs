//! A repository whose trees use tree encoding 2 (owners, extended
//! attributes and ACLs, hard links, a fifo, a device, a sparse file) lives
//! in tests/data/golden-v2. Every later version must still list, check and
//! restore it byte for byte, with everything encoding 2 records.
//! Regenerate (as root, only when deliberately changing the encoding) with:
//!   cargo test --test golden_v2 -- --ignored regenerate_golden_v2_repository

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-v2")
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn sh(cmd: &str, args: &[&str]) {
    assert!(Command::new(cmd).args(args).status().unwrap().success());
}

fn source(dir: &Path) {
    let db = dir.join("db");
    let text: String = (0..400).map(|i| format!("row {i} of a table\n")).collect();
    write(&db.join("base"), text.as_bytes());
    fs::create_dir_all(db.join("sub")).unwrap();
    fs::hard_link(db.join("base"), db.join("hard")).unwrap();
    fs::hard_link(db.join("base"), db.join("sub/hard2")).unwrap();
    write(&db.join("owned"), b"by 1234");
    write(&db.join("nobody"), b"by nobody");
    std::os::unix::fs::lchown(db.join("owned"), Some(1234), Some(1234)).unwrap();
    std::os::unix::fs::lchown(db.join("nobody"), Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::lchown(db.join("sub"), Some(1234), Some(5678)).unwrap();
    write(&db.join("attrs"), b"with attributes");
    let flags = rustix::fs::XattrFlags::empty();
    rustix::fs::setxattr(db.join("attrs"), "user.golden", b"v2\0\xff", flags).unwrap();
    sh("setfacl", &["-m", "u:1234:rw", s(&db.join("attrs"))]);
    sh("mkfifo", &["-m", "0640", s(&db.join("pipe"))]);
    sh("mknod", &["-m", "0600", s(&db.join("null")), "c", "1", "3"]);
    {
        use std::os::unix::fs::FileExt;
        let f = fs::File::create(db.join("sparse")).unwrap();
        f.set_len(1 << 20).unwrap();
        f.write_all_at(b"start", 0).unwrap();
        f.write_all_at(b"end", (1 << 20) - 3).unwrap();
    }
    std::os::unix::fs::symlink("base", db.join("current")).unwrap();
    fs::set_permissions(db.join("owned"), fs::Permissions::from_mode(0o640)).unwrap();
    write(&dir.join("cluster.json"), b"{\"cluster\":\"golden-v2\"}");
}

fn xattrs(p: &Path) -> BTreeMap<String, String> {
    let mut names = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(p, &mut names[..]).unwrap_or(0);
    names[..n]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| {
            let name = String::from_utf8(n.to_vec()).unwrap();
            let mut v = vec![0u8; 65536];
            let len = rustix::fs::lgetxattr(p, name.as_str(), &mut v[..]).unwrap();
            (name, hex::encode(&v[..len]))
        })
        .collect()
}

/// path -> what restore must produce, hard links named by the first path
/// of their inode. Fifos and devices are described, never opened.
fn describe(root: &Path) -> BTreeMap<String, Value> {
    let mut paths = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            paths.push(p);
        }
    }
    paths.sort();
    let mut first_of: HashMap<u64, String> = HashMap::new();
    let mut out = BTreeMap::new();
    for p in paths {
        let m = fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
        let ft = m.file_type();
        let mut v = json!({"mode": m.mode() & 0o7777, "uid": m.uid(), "gid": m.gid()});
        if ft.is_symlink() {
            v["type"] = json!("symlink");
            v["target"] = json!(fs::read_link(&p).unwrap().to_str().unwrap());
        } else if ft.is_dir() {
            v["type"] = json!("dir");
        } else if ft.is_fifo() {
            v["type"] = json!("fifo");
        } else if ft.is_char_device() {
            v["type"] = json!("chardev");
            v["rdev"] = json!(m.rdev());
        } else {
            v["type"] = json!("file");
            v["sha256"] = json!(hex::encode(Sha256::digest(fs::read(&p).unwrap())));
            v["size"] = json!(m.len());
            v["nlink"] = json!(m.nlink());
            let first = first_of.entry(m.ino()).or_insert_with(|| rel.clone());
            v["inode_of"] = json!(first.clone());
            v["sparse"] = json!(m.blocks() * 512 + 4096 <= m.len());
        }
        if !ft.is_symlink() {
            v["xattrs"] = json!(xattrs(&p));
        }
        out.insert(rel, v);
    }
    out
}

#[test]
#[ignore = "rewrites the checked-in golden repository (run as root)"]
fn regenerate_golden_v2_repository() {
    assert!(is_root(), "owners and devices need root");
    let dir = golden_dir();
    let _ = fs::remove_dir_all(&dir);
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), dir.join("repo"));
    ok(&[
        "repo",
        "init",
        s(&repo),
        "--chunk-min",
        "256",
        "--chunk-avg",
        "1024",
        "--chunk-max",
        "4096",
    ]);
    source(&src);
    ok(&["snapshot", "create", s(&repo), "v2", "--source", s(&src)]);
    // The full-disk reserve holds nothing (FORMAT.md) and would only
    // weigh on the checkout; git keeps no empty folder either.
    fs::remove_file(repo.join("reserve")).unwrap();
    let _ = fs::remove_dir(repo.join("inflight"));
    let expected = json!({"v2": describe(&src)});
    let pretty = serde_json::to_vec_pretty(&expected).unwrap();
    fs::write(dir.join("expected.json"), pretty).unwrap();
}

/// What restore can give back without root: owners and devices aside.
fn without_root(mut d: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    d.retain(|_, v| v["type"] != "chardev");
    for v in d.values_mut() {
        let v = v.as_object_mut().unwrap();
        v.remove("uid");
        v.remove("gid");
    }
    d
}

#[test]
fn tree_encoding_2_golden_repository_still_reads() {
    let dir = golden_dir();
    let repo = dir.join("repo");
    let expected: Value =
        serde_json::from_slice(&fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let list = json(&["snapshot", "list", s(&repo)]);
    assert_eq!(list["snapshots"][0]["snapshot"], "v2");
    assert_eq!(list["snapshots"][0]["state"], "SUCCESS");
    ok(&["repo", "check", s(&repo), "--read-data"]);
    let t = tempfile::tempdir().unwrap();
    let dst = t.path().join("v2");
    let wanted: BTreeMap<String, Value> = serde_json::from_value(expected["v2"].clone()).unwrap();
    let out = run(&[
        "restore",
        s(&repo),
        "v2",
        "--target",
        s(&dst),
        "--include-global-state",
    ]);
    assert!(out.status.success(), "{out:?}");
    let got = describe(&dst);
    if is_root() {
        assert_eq!(got, wanted);
    } else {
        assert_eq!(without_root(got), without_root(wanted.clone()));
    }
    assert_eq!(wanted["db/sub/hard2"]["inode_of"], "db/base");
    assert_eq!(wanted["db/sparse"]["sparse"], true);
}
