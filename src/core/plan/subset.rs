//! A restore of part of a snapshot (`restore --include`): the full plan's
//! entries cut down to the paths the filter selects, plus the folders that
//! lead to them. Paths are matched as they are in the snapshot (index names
//! before renaming), while the plan holds paths in the target.
//!
//! Conflicts, resumption and local reuse work on what is left, so a subset
//! restore is checked and resumed like any other; an overwriting one
//! removes only entries the filter covers (see `unwanted_paths`).

use std::collections::{HashMap, HashSet};

use crate::core::plan::restore::{Conflict, PlanError, PlanRequest, PlannedFile, RestorePlan};
use crate::core::policy::include::PathFilter;

/// Where the global state's entries start in a plan's dirs, files and
/// symlinks (everything before them belongs to an index).
pub(crate) type GlobalFrom = (usize, usize, usize);

/// The path in the snapshot of `path` in the target: an index folder's
/// target name is replaced by its name in the snapshot; global-state
/// entries keep their names.
pub(crate) fn source_of(req: &PlanRequest, path: &str) -> String {
    let (first, rest) = path
        .split_once('/')
        .map_or((path, None), |(f, r)| (f, Some(r)));
    match req.indices.iter().find(|i| i.target == first) {
        Some(i) => match rest {
            Some(r) => format!("{}/{r}", i.source),
            None => i.source.clone(),
        },
        None => path.to_string(),
    }
}

/// Every folder `path` lies in (`a`, `a/b` for `a/b/c`).
fn parents(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(at, _)| &path[..at])
}

/// Keeps only what `filter` selects, the folders leading to it, and the
/// conflicts and indices those touch. Selecting nothing is an error: a
/// typo in a pattern must not look like a restore that worked.
pub(crate) fn keep_included(
    plan: &mut RestorePlan,
    req: &PlanRequest,
    global_from: GlobalFrom,
    filter: &PathFilter,
) -> Result<(), PlanError> {
    let (dirs_g, files_g, links_g) = global_from;
    let source = |path: &str, global: bool| {
        if global {
            path.to_string()
        } else {
            source_of(req, path)
        }
    };
    let mut global_kept = false;
    // The first paths of hard-link groups, as planned before the cut: a
    // link kept without its first path is restored as a file of its own.
    let targets: HashSet<&str> = plan.hard_links.iter().map(|l| l.to.as_str()).collect();
    let leaders: HashMap<String, PlannedFile> = plan
        .files
        .iter()
        .filter(|f| targets.contains(f.path.as_str()))
        .map(|f| (f.path.clone(), f.clone()))
        .collect();
    let mut n = 0;
    plan.files.retain(|f| {
        let global = n >= files_g;
        n += 1;
        let keep = filter.selects(&source(&f.path, global));
        global_kept |= keep && global;
        keep
    });
    n = 0;
    plan.symlinks.retain(|l| {
        let global = n >= links_g;
        n += 1;
        let keep = filter.selects(&source(&l.path, global));
        global_kept |= keep && global;
        keep
    });
    // Hard links and special files lie in indices (the global state is
    // top-level files and folders of the data folder, walked the same way,
    // but links and specials there are matched by their own names too).
    let kept_files: HashSet<String> = plan.files.iter().map(|f| f.path.clone()).collect();
    for l in std::mem::take(&mut plan.hard_links) {
        if !filter.selects(&source(&l.path, false)) {
            continue;
        }
        if kept_files.contains(&l.to) {
            plan.hard_links.push(l);
        } else if let Some(leader) = leaders.get(&l.to) {
            plan.files.push(PlannedFile {
                path: l.path,
                ..leader.clone()
            });
        }
    }
    plan.specials
        .retain(|sp| filter.selects(&source(&sp.path, false)));
    // Folders: selected ones, and every folder something kept lies in.
    let mut kept: HashSet<String> = HashSet::new();
    for (i, d) in plan.dirs.iter().enumerate() {
        if filter.selects(&source(&d.path, i >= dirs_g)) {
            global_kept |= i >= dirs_g;
            kept.insert(d.path.clone());
        }
    }
    let leaves = plan.files.iter().map(|f| f.path.as_str());
    let leaves = leaves.chain(plan.symlinks.iter().map(|l| l.path.as_str()));
    let leaves = leaves.chain(plan.hard_links.iter().map(|l| l.path.as_str()));
    let leaves = leaves.chain(plan.specials.iter().map(|sp| sp.path.as_str()));
    let mut lead: Vec<String> = leaves
        .chain(kept.iter().map(String::as_str))
        .flat_map(parents)
        .map(str::to_string)
        .collect();
    lead.sort();
    lead.dedup();
    for (i, d) in plan.dirs.iter().enumerate() {
        if i >= dirs_g && lead.binary_search(&d.path).is_ok() {
            global_kept = true;
        }
    }
    kept.extend(lead);
    plan.dirs.retain(|d| kept.contains(&d.path));
    let nothing = plan.dirs.is_empty()
        && plan.files.is_empty()
        && plan.symlinks.is_empty()
        && plan.hard_links.is_empty()
        && plan.specials.is_empty();
    if nothing {
        return Err(PlanError::NothingIncluded(filter.patterns().join(",")));
    }
    plan.indices.retain(|(_, target)| kept.contains(target));
    plan.global_state &= global_kept;
    let top: HashSet<&str> = plan
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain(plan.symlinks.iter().map(|l| l.path.as_str()))
        .chain(kept.iter().map(String::as_str))
        .filter(|p| !p.contains('/'))
        .collect();
    plan.conflicts.retain(|c| match c {
        Conflict::TargetNotEmpty { index, .. } => kept.contains(index),
        Conflict::GlobalStateExists { path } => top.contains(path.as_str()),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::core::format::id::Id;
    use crate::core::format::index::RepoIndex;
    use crate::core::format::tree::Tree;
    use crate::core::plan::restore::{plan_restore, Declared, IndexToRestore, TargetState};
    use crate::core::testing::{dir, entry, file, store};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Index `logs` (restored as `restored`): `a.json`, `sub/b.json`,
    /// `sub/deep/c.log`, an empty folder `empty`; global state
    /// `settings.json` and `_state/x`.
    struct Fixture {
        trees: HashMap<Id, Tree>,
        index: RepoIndex,
        top: Id,
        global: Id,
    }

    fn fixture() -> Fixture {
        let mut trees = HashMap::new();
        let deep = store(&mut trees, Tree::new(vec![file("c.log", &[b"cccc"])]));
        let sub = store(
            &mut trees,
            Tree::new(vec![file("b.json", &[b"bbbb"]), dir("deep", deep)]),
        );
        let empty = store(&mut trees, Tree::new(vec![]));
        let top = store(
            &mut trees,
            Tree::new(vec![
                file("a.json", &[b"aaaa"]),
                dir("sub", sub),
                dir("empty", empty),
            ]),
        );
        let state = store(&mut trees, Tree::new(vec![file("x", &[b"xxxx"])]));
        let global = store(
            &mut trees,
            Tree::new(vec![
                file("settings.json", &[b"ssss"]),
                dir("_state", state),
            ]),
        );
        let mut index = RepoIndex::new();
        let blobs: [&[u8]; 5] = [b"aaaa", b"bbbb", b"cccc", b"xxxx", b"ssss"];
        let entries: Vec<_> = blobs
            .iter()
            .enumerate()
            .map(|(i, b)| entry(b, 8 + 4 * i as u64))
            .collect();
        index.add_pack(Id::of(b"p"), &entries);
        Fixture {
            trees,
            index,
            top,
            global,
        }
    }

    fn plan(f: &Fixture, patterns: &[&str], target: TargetState) -> Result<RestorePlan, PlanError> {
        let filter =
            PathFilter::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap();
        let many = Declared {
            files: 100,
            dirs: 100,
        };
        plan_restore(&PlanRequest {
            indices: vec![IndexToRestore {
                source: "logs".into(),
                target: "restored".into(),
                tree: Some(f.top),
                mode: None,
                mtime_ns: None,
                attrs: None,
                declared: many,
            }],
            global_state: Some(f.global),
            global_declared: many,
            trees: &f.trees,
            index: &f.index,
            target,
            max_gap: 1024,
            max_range: u64::MAX,
            include: Some(&filter),
        })
    }

    fn paths(p: &RestorePlan) -> (Vec<&str>, Vec<&str>) {
        let mut dirs: Vec<&str> = p.dirs.iter().map(|d| d.path.as_str()).collect();
        let mut files: Vec<&str> = p.files.iter().map(|f| f.path.as_str()).collect();
        dirs.sort();
        files.sort();
        (dirs, files)
    }

    #[test]
    fn only_matches_and_the_folders_leading_to_them_are_restored() {
        let f = fixture();
        let p = plan(&f, &["logs/**/*.json"], TargetState::default()).unwrap();
        let (dirs, files) = paths(&p);
        assert_eq!(files, ["restored/a.json", "restored/sub/b.json"]);
        assert_eq!(
            dirs,
            ["restored", "restored/sub"],
            "no empty or deep folder"
        );
        assert!(!p.global_state, "no global-state entry matched");
        assert_eq!(p.summary.blobs, 2, "only the matches' chunks are fetched");
        assert_eq!(p.summary.bytes, 8);
    }

    #[test]
    fn a_matching_folder_brings_everything_below_it() {
        let f = fixture();
        let p = plan(&f, &["logs/sub", "logs/empty"], TargetState::default()).unwrap();
        let (dirs, files) = paths(&p);
        assert_eq!(files, ["restored/sub/b.json", "restored/sub/deep/c.log"]);
        assert_eq!(
            dirs,
            [
                "restored",
                "restored/empty",
                "restored/sub",
                "restored/sub/deep"
            ]
        );
    }

    #[test]
    fn global_state_entries_match_by_their_names_and_leave_indices_out() {
        let f = fixture();
        let target = TargetState {
            occupied_index_dirs: ["restored".to_string()].into_iter().collect(),
            top_level: ["restored".to_string(), "settings.json".to_string()]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let p = plan(&f, &["_state/*"], target.clone()).unwrap();
        let (dirs, files) = paths(&p);
        assert_eq!((dirs, files), (vec!["_state"], vec!["_state/x"]));
        assert!(p.indices.is_empty() && p.global_state);
        assert!(
            p.conflicts.is_empty(),
            "what the subset leaves out conflicts with nothing"
        );
        let p = plan(&f, &["settings.json", "logs/a.json"], target).unwrap();
        assert_eq!(p.conflicts.len(), 2, "occupied index folder and taken name");
    }

    #[test]
    fn an_overwrite_removes_only_what_the_filter_covers() {
        let f = fixture();
        let target = TargetState {
            occupied_index_dirs: ["restored".to_string()].into_iter().collect(),
            overwrite: true,
            existing_paths: vec![
                "restored".into(),
                "restored/other.log".into(),
                "restored/sub".into(),
                "restored/sub/stale.json".into(),
                "restored/sub/old".into(),
            ],
            ..Default::default()
        };
        let p = plan(&f, &["logs/sub"], target).unwrap();
        assert_eq!(
            p.deletes,
            ["restored/sub/stale.json", "restored/sub/old"],
            "other.log lies outside the filter"
        );
    }

    #[test]
    fn a_filter_that_selects_nothing_is_an_error() {
        let f = fixture();
        assert_eq!(
            plan(&f, &["metrics/**", "logs/nope"], TargetState::default()).unwrap_err(),
            PlanError::NothingIncluded("metrics/**,logs/nope".into())
        );
    }
}
