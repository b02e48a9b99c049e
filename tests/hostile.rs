//! Hostile and damaged repositories: every stored byte a restore depends on
//! is authenticated, anything restore would refuse is reported by check
//! (with its snapshot and path), and crafted trees that describe more paths
//! than their manifest declares cannot make a plan, a diff or a check
//! expand them.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use common::*;
use snapkeep::core::format::blob::BlobKind;
use snapkeep::core::format::codec::Codec;
use snapkeep::core::format::config::RepoConfig;
use snapkeep::core::format::id::Id;
use snapkeep::core::format::index::IndexFile;
use snapkeep::core::format::keys;
use snapkeep::core::format::manifest::{IndexStats, Manifest, SnapshotState};
use snapkeep::core::format::pack::PackBuilder;
use snapkeep::core::format::root::RootChange;
use snapkeep::core::format::tree::{Node, NodeType, Tree};
use snapkeep::native::location::Location;
use snapkeep::native::repo::Repo;
use snapkeep::native::runtime::block_on;
use snapkeep::storage::PutMode;

const PAYLOAD: &[u8] = b"payload";

fn new_repo(dir: &Path) -> Repo {
    Repo::init(
        &Location::Local(dir.to_path_buf()),
        RepoConfig::new("hostile".into(), 0),
    )
    .unwrap()
}

fn file(name: &str) -> Node {
    Node {
        name: name.into(),
        kind: NodeType::File,
        mode: 0o644,
        mtime_ns: 1,
        size: PAYLOAD.len() as u64,
        inode: 0,
        chunks: vec![Id::of(PAYLOAD)],
        subtree: None,
        ..Default::default()
    }
}

fn dir(name: &str, sub: Id) -> Node {
    Node {
        name: name.into(),
        kind: NodeType::Dir,
        mode: 0o755,
        mtime_ns: 1,
        size: 0,
        inode: 0,
        chunks: vec![],
        subtree: Some(sub),
        ..Default::default()
    }
}

/// Commits snapshot `name` whose index `idx` has root tree `top`, storing
/// `trees` (raw, unvalidated) and the payload chunk; the manifest declares
/// `files` and `dirs`.
fn craft(repo: &Repo, name: &str, trees: &[Tree], top: Id, files: u64, dirs: u64) {
    let mut pb = PackBuilder::new();
    pb.add(
        Id::of(PAYLOAD),
        BlobKind::Data,
        Codec::Raw,
        PAYLOAD,
        PAYLOAD.len() as u32,
    );
    for t in trees {
        let b = t.encode();
        pb.add(Id::of(&b), BlobKind::Tree, Codec::Raw, &b, b.len() as u32);
    }
    let (pid, bytes, entries) = pb.finish(None);
    repo.put_pack(&pid, bytes).unwrap();
    let file = repo
        .put_index_file(&IndexFile {
            packs: vec![(pid, entries)],
            bases: vec![],
        })
        .unwrap();
    let manifest = Manifest {
        version: 1,
        snapshot: name.into(),
        uuid: format!("uuid-{name}"),
        state: SnapshotState::Success,
        start_time_in_millis: 1,
        end_time_in_millis: 2,
        indices: BTreeMap::from([(
            "idx".to_string(),
            IndexStats {
                tree: Some(top),
                files,
                dirs,
                ..Default::default()
            },
        )]),
        global_state: None,
        metadata: BTreeMap::new(),
        failures: vec![],
    };
    let bytes = manifest.encode();
    let mut summary = manifest.summary();
    summary.manifest = Some(Id::of(&bytes));
    block_on(repo.store.put(
        &keys::manifest(&manifest.uuid),
        Bytes::from(bytes),
        PutMode::Create,
    ))
    .unwrap();
    repo.commit(&RootChange::AddSnapshot {
        summary,
        index_file: Some(file),
        base_index_files: vec![],
        slot: None,
    })
    .unwrap();
}

/// A chain of `levels` trees, each holding two folders that share the
/// level below: 2^levels paths in a few KiB.
fn dag(levels: usize) -> (Vec<Tree>, Id) {
    let mut trees = vec![Tree::new(vec![file("f")])];
    for _ in 0..levels {
        let below = trees.last().unwrap().id();
        trees.push(Tree::new(vec![dir("a", below), dir("b", below)]));
    }
    let top = trees.last().unwrap().id();
    (trees, top)
}

#[test]
fn shared_subtree_bombs_are_refused_before_anything_expands() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("repo");
    let repo = new_repo(&path);
    let (trees, top) = dag(40);
    craft(&repo, "bomb", &trees, top, 1, 80);
    craft(
        &repo,
        "empty",
        &[Tree::new(vec![])],
        Tree::new(vec![]).id(),
        0,
        0,
    );
    let started = std::time::Instant::now();
    let target = t.path().join("target");
    let err = fails(&[
        "restore",
        s(&path),
        "bomb",
        "--target",
        s(&target),
        "--dry-run",
    ]);
    assert!(
        err.contains("more files than its manifest declares") || err.contains("declares"),
        "{err}"
    );
    assert!(!target.exists());
    let err = fails(&["snapshot", "diff", s(&path), "empty", "bomb", "--json"]);
    assert!(err.contains("declare"), "{err}");
    let out = run(&["repo", "check", s(&path), "--read-data"]);
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("[bomb]") && text.contains("declares"),
        "{text}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "bounded work took {:?}",
        started.elapsed()
    );
}

#[test]
fn identical_folders_declared_honestly_still_restore() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    for d in ["a", "b", "c/d", "c/e"] {
        std::fs::create_dir_all(src.join("idx").join(d)).unwrap();
    }
    let repo = t.path().join("repo");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let target = t.path().join("target");
    ok(&["restore", s(&repo), "s1", "--target", s(&target)]);
    assert!(target.join("idx/c/e").is_dir());
    ok(&["repo", "check", s(&repo), "--read-data"]);
}

#[test]
fn folders_nested_past_the_limit_are_refused_by_restore_and_check() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("repo");
    let repo = new_repo(&path);
    let mut trees = vec![Tree::new(vec![file("f")])];
    for _ in 0..5000 {
        let below = trees.last().unwrap().id();
        trees.push(Tree::new(vec![dir("d", below)]));
    }
    let top = trees.last().unwrap().id();
    craft(&repo, "deep", &trees, top, 1, 5000);
    let target = t.path().join("target");
    let err = fails(&["restore", s(&path), "deep", "--target", s(&target)]);
    assert!(err.contains("deeper than 1024"), "{err}");
    assert!(!target.join("idx").exists());
    let out = run(&["repo", "check", s(&path)]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("deeper than"),
        "{text}"
    );
}

#[test]
fn check_reports_what_restore_refuses_with_snapshot_and_path() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("repo");
    let repo = new_repo(&path);
    let mut lying = file("lying");
    lying.size = 99;
    let mut nul_link = file("nul-link");
    nul_link.kind = NodeType::Symlink;
    nul_link.chunks.clear();
    nul_link.size = 0;
    nul_link.rare_mut().target = Some("a\0b".into());
    let cases: Vec<(&str, Node, &str)> = vec![
        ("size", lying, "sub/lying"),
        ("long", file(&"n".repeat(256)), "longer than 255"),
        ("nul", nul_link, "NUL"),
        ("dotdot", file(".."), "would escape"),
    ];
    for (name, node, _) in &cases {
        let inner = Tree {
            nodes: vec![node.clone()],
        };
        let top = Tree::new(vec![dir("sub", inner.id())]);
        craft(&repo, name, &[inner, top.clone()], top.id(), 1, 1);
    }
    let out = run(&["repo", "check", s(&path), "--read-data"]);
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for (name, _, why) in &cases {
        assert!(
            text.lines()
                .any(|l| l.contains(&format!("[{name}]")) && l.contains(why)),
            "check does not report [{name}] ({why}): {text}"
        );
        let target = t.path().join(format!("target-{name}"));
        let err = fails(&["restore", s(&path), name, "--target", s(&target)]);
        assert!(!err.contains("0000000000"), "a fake all-zero id: {err}");
        assert!(
            !target.join("idx/sub").exists(),
            "{name}: nothing may be written"
        );
    }
    assert!(!text.contains("0000000000"), "{text}");
}

#[test]
fn every_flipped_bit_of_a_manifest_is_detected() {
    let (_t, src, path, _) = scene();
    write(&src.join("logs/a"), b"hello");
    write(&src.join("users/b"), &noise(5000, 3));
    write(&src.join("top.conf"), b"x");
    init(&path);
    ok(&[
        "snapshot",
        "create",
        s(&path),
        "s1",
        "--source",
        s(&src),
        "--metadata",
        "k=v",
    ]);
    let repo = Repo::open(&Location::Local(path.clone())).unwrap();
    let root = repo.root().unwrap();
    let summary = root.snapshot("s1").unwrap().clone();
    assert!(
        summary.manifest.is_some(),
        "new roots record the manifest's hash"
    );
    let file = path.join(keys::manifest(&summary.uuid));
    let original = std::fs::read(&file).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let mut undetected = 0;
    for bit in 0..original.len() * 8 {
        let mut flipped = original.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        std::fs::write(&file, &flipped).unwrap();
        let fresh = Repo::open(&Location::Local(path.clone())).unwrap();
        if fresh.manifest(&summary).is_ok() {
            undetected += 1;
        }
    }
    std::fs::write(&file, &original).unwrap();
    assert_eq!(undetected, 0, "of {} flips", original.len() * 8);
    // Roots written before the hash was recorded still cross-check the
    // manifest against their summary: a renamed index is caught.
    let mut legacy = summary.clone();
    legacy.manifest = None;
    let renamed = String::from_utf8(original.clone())
        .unwrap()
        .replace("\"logs\"", "\"logz\"");
    std::fs::write(&file, renamed).unwrap();
    let err = repo.manifest(&legacy).unwrap_err().to_string();
    assert!(err.contains("disagrees with its root on indices"), "{err}");
    let dropped = String::from_utf8(original)
        .unwrap()
        .replacen("\"tree\"", "\"tsee\"", 1);
    std::fs::write(&file, dropped).unwrap();
    let err = repo.manifest(&legacy).unwrap_err().to_string();
    assert!(err.contains("unknown field"), "{err}");
}

#[test]
fn manifests_with_index_names_restore_refuses_are_damaged() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("repo");
    let repo = new_repo(&path);
    for (i, bad) in ["..", ".", "", "/abs", "a/b", &"x".repeat(256), "nul\0"]
        .iter()
        .enumerate()
    {
        let name = format!("bad{i}");
        let uuid = format!("uuid-{name}");
        let manifest = serde_json::json!({
            "version": 1, "snapshot": name, "uuid": uuid, "state": "SUCCESS",
            "start_time_in_millis": 1, "end_time_in_millis": 2,
            "indices": {*bad: {"tree": null, "files": 0, "dirs": 0, "size_in_bytes": 0,
                "new_bytes": 0, "new_stored_bytes": 0, "files_read": 0}},
            "metadata": {}, "failures": []
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let summary: snapkeep::core::format::manifest::SnapshotSummary = serde_json::from_value(serde_json::json!({
            "snapshot": name, "uuid": uuid, "state": "SUCCESS", "start_time_in_millis": 1,
            "end_time_in_millis": 2, "indices": [bad], "include_global_state": false,
            "size_in_bytes": 0, "new_bytes": 0, "new_stored_bytes": 0, "files": 0, "failures": 0,
            "manifest": Id::of(&bytes),
        }))
        .unwrap();
        block_on(
            repo.store
                .put(&keys::manifest(&uuid), Bytes::from(bytes), PutMode::Create),
        )
        .unwrap();
        repo.commit(&RootChange::AddSnapshot {
            summary,
            index_file: None,
            base_index_files: vec![],
            slot: None,
        })
        .unwrap();
        let target = t.path().join(format!("t{i}"));
        let err = fails(&["restore", s(&path), &name, "--target", s(&target)]);
        assert!(
            err.contains(&format!("snapshot [{name}] is damaged")),
            "{bad:?}: {err}"
        );
        assert!(!target.exists());
    }
    let out = run(&["repo", "check", s(&path)]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for i in 0..7 {
        assert!(text.contains(&format!("[bad{i}]")), "{text}");
    }
}

#[test]
fn a_lost_newest_root_is_reported_and_nothing_builds_on_it() {
    let (_t, src, path, _) = scene();
    write(&src.join("logs/a"), &noise(100_000, 1));
    init(&path);
    ok(&["snapshot", "create", s(&path), "s1", "--source", s(&src)]);
    // Root objects carry whole-second times on some storages.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write(&src.join("logs/b"), &noise(100_000, 2));
    ok(&["snapshot", "create", s(&path), "s2", "--source", s(&src)]);
    let newest = path.join("index-2");
    assert!(newest.exists());
    std::fs::remove_file(&newest).unwrap();

    let out = run(&["repo", "check", s(&path)]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("index.latest names generation 2"), "{text}");
    assert!(
        text.contains("newer than the newest root index-1"),
        "{text}"
    );

    // Running writers leave an in-flight marker for their lifetime only.
    let objects = |p: &Path| -> Vec<_> {
        snapshot_of(p)
            .into_iter()
            .filter(|(k, v)| !k.starts_with("inflight") && matches!(v, Entry::File { .. }))
            .map(|(k, _)| k)
            .collect()
    };
    let before = objects(&path);
    let err = fails(&["repo", "cleanup", s(&path), "--grace", "0s"]);
    assert!(err.contains("a root object was lost"), "{err}");
    let err = fails(&["snapshot", "create", s(&path), "s3", "--source", s(&src)]);
    assert!(err.contains("a root object was lost"), "{err}");
    let err = fails(&["snapshot", "delete", s(&path), "s1"]);
    assert!(err.contains("a root object was lost"), "{err}");
    assert_eq!(before, objects(&path), "nothing was written or removed");
}

#[test]
fn a_tree_no_index_lists_is_reported_missing_by_its_id() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("repo");
    let repo = new_repo(&path);
    let absent = Tree::new(vec![file("f")]);
    let top = Tree::new(vec![dir("sub", absent.id())]);
    craft(&repo, "gap", std::slice::from_ref(&top), top.id(), 1, 1);
    let named = format!("tree {} is missing", absent.id());
    let target = t.path().join("target");
    let err = fails(&["restore", s(&path), "gap", "--target", s(&target)]);
    assert!(err.contains(&named), "{err}");
    assert!(!err.contains("is damaged"), "missing is not damaged: {err}");
    let out = run(&["repo", "check", s(&path)]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("problem:") || l.starts_with("damaged:"))
        .collect();
    assert_eq!(
        problems.len(),
        1,
        "reported once, with its snapshot: {text}"
    );
    assert!(
        problems[0].contains("snapshot [gap] index [idx]") && problems[0].contains(&named),
        "{text}"
    );
    let report = json_of(&run(&["repo", "check", s(&path), "--json"]));
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report}");
    assert_eq!(findings[0]["kind"], "tree_missing");
    assert_eq!(findings[0]["object"], absent.id().to_hex());
    assert_eq!(findings[0]["snapshots"], serde_json::json!(["gap"]));
    assert_eq!(findings[0]["files"][0]["path"], "sub");
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap()
}
