//! Repositories crafted to attack restore: tree entries that would escape the
//! target. Restore must refuse them and write nothing.

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

fn node(name: &str, kind: NodeType) -> Node {
    Node {
        name: name.into(),
        kind,
        mode: 0o644,
        mtime_ns: 0,
        size: 0,
        inode: 0,
        chunks: vec![],
        subtree: None,
        ..Default::default()
    }
}

/// Commits a snapshot `name` whose index `evil` has these top-level nodes
/// (plus `inner` as the tree any directory node points to).
fn craft(repo_dir: &Path, name: &str, nodes: Vec<Node>, inner: Vec<Node>) {
    let repo = Repo::open(&Location::Local(repo_dir.to_path_buf())).unwrap();
    let payload = b"evil payload";
    let inner = Tree { nodes: inner };
    let mut pb = PackBuilder::new();
    pb.add(
        Id::of(payload),
        BlobKind::Data,
        Codec::Raw,
        payload,
        payload.len() as u32,
    );
    let inner_bytes = inner.encode();
    pb.add(
        Id::of(&inner_bytes),
        BlobKind::Tree,
        Codec::Raw,
        &inner_bytes,
        inner_bytes.len() as u32,
    );
    let nodes = nodes
        .into_iter()
        .map(|mut n| {
            // A hard link (tree encoding 2) carries no chunks of its own.
            if n.kind == NodeType::File && n.link().is_none() {
                n.chunks = vec![Id::of(payload)];
                n.size = payload.len() as u64;
            }
            if n.kind == NodeType::Dir && n.subtree.is_none() && n.name != "no-subtree" {
                n.subtree = Some(Id::of(&inner_bytes));
            }
            n
        })
        .collect();
    // Deliberately not Tree::new + validate: an attacker writes raw JSON.
    let top = Tree { nodes };
    let top_bytes = top.encode();
    pb.add(
        Id::of(&top_bytes),
        BlobKind::Tree,
        Codec::Raw,
        &top_bytes,
        top_bytes.len() as u32,
    );
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
            "evil".to_string(),
            IndexStats {
                tree: Some(Id::of(&top_bytes)),
                // Enough for every crafted tree: only its entries are wrong.
                files: 10,
                dirs: 10,
                ..Default::default()
            },
        )]),
        global_state: None,
        metadata: BTreeMap::new(),
        failures: vec![],
    };
    block_on(repo.store.put(
        &keys::manifest(&manifest.uuid),
        Bytes::from(manifest.encode()),
        PutMode::Create,
    ))
    .unwrap();
    repo.commit(&RootChange::AddSnapshot {
        summary: manifest.summary(),
        index_file: Some(file),
        base_index_files: vec![],
        slot: None,
    })
    .unwrap();
}

#[test]
fn entries_that_escape_the_target_are_refused_and_nothing_is_written() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    Repo::init(
        &Location::Local(repo.clone()),
        RepoConfig::new("crafted".into(), 0),
    )
    .unwrap();
    let mut link = node("link", NodeType::Symlink);
    link.rare_mut().target = Some("/".into());
    let hard_link = |to: &str| {
        let mut n = node("hard", NodeType::File);
        n.rare_mut().link = Some(to.into());
        n
    };
    let cases: Vec<(&str, Vec<Node>, Vec<Node>, &str)> = vec![
        (
            "dotdot",
            vec![node("../escaped", NodeType::File)],
            vec![],
            "would escape",
        ),
        (
            "absolute",
            vec![node("/tmp/escaped-abs", NodeType::File)],
            vec![],
            "would escape",
        ),
        (
            "nested",
            vec![node("ok", NodeType::File), node("sub", NodeType::Dir)],
            vec![node("../../escaped", NodeType::File)],
            "would escape",
        ),
        (
            "dot",
            vec![node(".", NodeType::File)],
            vec![],
            "would escape",
        ),
        // A symlink and a folder of the same name: the folder's files would be
        // written through the link.
        (
            "symlink-path",
            vec![link.clone(), node("link", NodeType::Dir)],
            vec![node("passwd", NodeType::File)],
            "appears twice",
        ),
        (
            "no-subtree",
            vec![node("no-subtree", NodeType::Dir)],
            vec![],
            "without a subtree",
        ),
        // Hard links (tree encoding 2) that would link to something outside
        // the restored tree, or to what the restore does not write as a file.
        (
            "hard-link-dotdot",
            vec![hard_link("../../etc/passwd"), node("ok", NodeType::File)],
            vec![],
            "hard link",
        ),
        (
            "hard-link-absolute",
            vec![hard_link("/etc/passwd")],
            vec![],
            "hard link",
        ),
        (
            "hard-link-to-a-folder",
            vec![hard_link("sub"), node("sub", NodeType::Dir)],
            vec![],
            "hard link",
        ),
        (
            "hard-link-to-nothing",
            vec![hard_link("missing")],
            vec![],
            "hard link",
        ),
    ];
    for (name, nodes, inner, why) in cases {
        craft(&repo, name, nodes, inner);
        let target = t.path().join(format!("target-{name}"));
        let err = fails(&["restore", s(&repo), name, "--target", s(&target)]);
        assert!(
            err.contains("refusing to restore") && err.contains(why),
            "{name}: {err}"
        );
        assert!(
            !target.join("evil").exists(),
            "{name}: nothing may be written"
        );
    }
    assert!(!t.path().join("escaped").exists());
    assert!(!Path::new("/tmp/escaped-abs").exists());
    // Check reports the crafted trees as problems too.
    let out = run(&["repo", "check", s(&repo)]);
    assert!(!out.status.success());
}
