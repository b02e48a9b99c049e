//! Property: backup then restore gives a byte-identical tree, for random
//! trees with empty files, unicode names, symlinks and deep nesting.

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;
use proptest::prelude::*;
use snapkeep::core::chunker::ChunkerParams;
use snapkeep::core::config::RepoConfig;
use snapkeep::core::selection::Selection;
use snapkeep::native::backup::{create_snapshot, SnapshotOptions};
use snapkeep::native::location::Location;
use snapkeep::native::repo::Repo;
use snapkeep::native::restore::{restore, RestoreOptions};

#[derive(Debug, Clone)]
enum Kind {
    File(usize, u64),
    Link(String),
    EmptyDir,
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}",
        Just("ünï".to_string()),
        Just("名前".to_string()),
        Just("with space".to_string()),
        Just(".hidden".to_string()),
    ]
}

fn entry() -> impl Strategy<Value = (Vec<String>, Kind)> {
    let kind = prop_oneof![
        4 => (prop_oneof![Just(0usize), 1usize..5000, 5000usize..300_000], any::<u64>()).prop_map(|(n, s)| Kind::File(n, s)),
        1 => "[a-z./]{1,12}".prop_map(Kind::Link),
        1 => Just(Kind::EmptyDir),
    ];
    (prop::collection::vec(name(), 1..7), kind)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn backup_then_restore_is_identical(entries in prop::collection::vec(entry(), 1..25), index in "[a-z]{1,6}") {
        let t = tempfile::tempdir().unwrap();
        let (src, repo_dir, dst) = (t.path().join("src"), t.path().join("repo"), t.path().join("dst"));
        let base = src.join(&index);
        fs::create_dir_all(&base).unwrap();
        for (parts, kind) in &entries {
            let path: PathBuf = parts.iter().collect();
            let full = base.join(&path);
            // Skip entries whose parent path is already a file or link.
            if full.ancestors().skip(1).any(|a| a.symlink_metadata().map(|m| !m.is_dir()).unwrap_or(false)) || full.symlink_metadata().is_ok() {
                continue;
            }
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            match kind {
                Kind::File(n, seed) => fs::write(&full, noise(*n, *seed)).unwrap(),
                Kind::Link(target) => std::os::unix::fs::symlink(target, &full).unwrap(),
                Kind::EmptyDir => fs::create_dir(&full).unwrap(),
            }
        }
        let mut config = RepoConfig::new("prop".into(), 0);
        config.chunker = ChunkerParams { min: 1024, avg: 4096, max: 16384 };
        config.pack_size = 200_000;
        let repo = Repo::init(&Location::Local(repo_dir), config).unwrap();
        create_snapshot(&repo, &SnapshotOptions {
            name: "p".into(), source: src.clone(), selection: Selection::all(), include_global_state: true, ..Default::default()
        }).unwrap();
        restore(&repo, &RestoreOptions {
            snapshot: "p".into(), target: dst.clone(), selection: Selection::all(), include_global_state: true, ..Default::default()
        }).unwrap();
        assert_same_tree(&src, &dst);
    }
}
