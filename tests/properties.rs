//! Property: backup then restore gives a byte-identical tree, for random
//! trees with empty files, arbitrary unicode names, symlinks, deep nesting,
//! global state, and files from 0 bytes to tens of MiB.

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;
use proptest::prelude::*;
use snapkeep::core::chunker::ChunkerParams;
use snapkeep::core::format::config::RepoConfig;
use snapkeep::core::policy::selection::Selection;
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
        3 => "[a-z]{1,8}",
        // Any characters a file name may hold: everything but '/' and NUL.
        2 => "[^/\\x00]{1,12}".prop_filter("not . or ..", |n| n != "." && n != ".."),
        1 => Just("with space".to_string()),
        1 => Just(".hidden".to_string()),
    ]
}

fn entry() -> impl Strategy<Value = (bool, Vec<String>, Kind)> {
    let size = prop_oneof![
        3 => Just(0usize),
        20 => 1usize..5000,
        10 => 5000usize..300_000,
        1 => (8usize << 20)..(24usize << 20),
    ];
    let kind = prop_oneof![
        4 => (size, any::<u64>()).prop_map(|(n, s)| Kind::File(n, s)),
        1 => "[a-z./]{1,12}".prop_map(Kind::Link),
        1 => Just(Kind::EmptyDir),
    ];
    let depth = prop_oneof![8 => 1usize..7, 1 => 20usize..40];
    let path = depth.prop_flat_map(|d| prop::collection::vec(name(), d));
    // One entry in eight is global state: a top-level file or '_' folder.
    (prop::bool::weighted(0.125), path, kind)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn backup_then_restore_is_identical(entries in prop::collection::vec(entry(), 1..25), index in "[a-z]{1,6}") {
        let (_t, src, repo_dir, dst) = scene();
        let base = src.join(&index);
        fs::create_dir_all(&base).unwrap();
        for (global, parts, kind) in &entries {
            let mut parts = parts.clone();
            let top = if *global {
                // Global state: a top-level file, or a folder starting with '_'.
                if parts.len() > 1 {
                    parts[0] = format!("_{}", parts[0]);
                }
                &src
            } else {
                &base
            };
            let path: PathBuf = parts.iter().collect();
            let full = top.join(&path);
            // Skip entries whose parent path is already a file or link, and
            // top-level folders that would be indices.
            if (*global && parts.len() == 1 && matches!(kind, Kind::EmptyDir)) || full.ancestors().skip(1).any(|a| a.symlink_metadata().map(|m| !m.is_dir()).unwrap_or(false)) || full.symlink_metadata().is_ok() {
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
        config.chunker = ChunkerParams { min: 1024, avg: 4096, max: 16384, ..Default::default() };
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
