//! `snapshot create`: walk the selected indices, read changed files in
//! parallel into deduplicated packs, build trees bottom-up, then write the
//! index file, the manifest and finally the new root generation. Nothing is
//! visible to readers until that last create-only put succeeds.

pub mod build;
pub mod compressor;
pub mod jobs;
pub mod packer;
pub mod reader;
pub mod uploader;
pub mod walk;
pub mod windows;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::core::format::blob::BlobEntry;
use crate::core::format::id::Id;
use crate::core::format::index::{IndexFile, RepoIndex};
use crate::core::format::keys;
use crate::core::format::manifest::{Failure, IndexStats, Manifest, SnapshotState, GLOBAL_STATE};
use crate::core::format::naming::validate_name;
use crate::core::format::root::{Root, RootChange, RootConflict};
use crate::core::format::tree::Tree;
use crate::core::policy::global_state::is_global_state;
use crate::core::policy::selection::Selection;
use crate::native::error::{Error, Result};
use crate::native::guard;
use crate::native::inflight::{Activity, InFlight};
use crate::native::progress::Progress;
use crate::native::repo::Repo;
use crate::native::runtime::block_on;
use crate::storage::PutMode;
use build::{TreeBuilder, ABORTED};
use jobs::{run_jobs, JobResult};
use packer::Packer;
use rayon::prelude::*;
use reader::Stamp;
use walk::{DirSkel, Job, Walker};

#[derive(Debug, Clone, Default)]
pub struct SnapshotOptions {
    pub name: String,
    pub source: PathBuf,
    pub selection: Selection,
    /// `--index NAME=PATH`: folders outside the source added as indices.
    pub extra_indices: Vec<(String, PathBuf)>,
    pub include_global_state: bool,
    pub partial: bool,
    pub metadata: BTreeMap<String, String>,
    pub progress: bool,
}

#[derive(Debug, Clone)]
pub struct SnapshotOutcome {
    pub manifest: Manifest,
    pub generation: u64,
    pub packs_written: u64,
    pub bytes_uploaded: u64,
    /// Folders left out because they are repositories.
    pub skipped: Vec<PathBuf>,
}

pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One target's walk: its skeleton, file jobs, failures and the
/// repositories left out.
type TargetWalk = (
    std::io::Result<DirSkel>,
    Vec<Job>,
    Vec<Failure>,
    Vec<PathBuf>,
);

/// Top-level entries that are global state rather than indices (`meta`
/// from `symlink_metadata`: a link is never an index).
fn is_global(name: &str, meta: &fs::Metadata) -> bool {
    is_global_state(name, meta.file_type().is_dir())
}

/// Index folders of `source`, sorted by name.
fn discover_indices(source: &Path) -> Result<Vec<String>> {
    let src_err = |detail: String| Error::Source {
        path: source.to_path_buf(),
        detail,
    };
    let meta = fs::metadata(source).map_err(|e| src_err(e.to_string()))?;
    if !meta.is_dir() {
        return Err(src_err("is not a directory".into()));
    }
    let mut names = Vec::new();
    for e in fs::read_dir(source).map_err(|e| src_err(e.to_string()))? {
        let e = e.map_err(|e| src_err(e.to_string()))?;
        let m = fs::symlink_metadata(e.path()).map_err(|e| src_err(e.to_string()))?;
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            if m.is_dir() {
                return Err(src_err(format!(
                    "folder {:?} has a name that is not valid UTF-8",
                    e.file_name()
                )));
            }
            continue; // a global-state file; the walk reports it
        };
        if !is_global(&name, &m) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Finds the tree the newest earlier snapshot holds for `index`.
struct Parents<'a> {
    repo: &'a Repo,
    root: &'a Root,
    manifests: HashMap<String, Option<Manifest>>,
}

impl Parents<'_> {
    fn tree_for(
        &mut self,
        index: &str,
        packer_index: &crate::core::format::index::RepoIndex,
    ) -> Option<Tree> {
        let mut candidates: Vec<_> = self
            .root
            .snapshots
            .iter()
            .filter(|s| s.state != SnapshotState::Failed)
            .filter(|s| {
                if index == GLOBAL_STATE {
                    s.include_global_state
                } else {
                    s.indices.iter().any(|i| i == index)
                }
            })
            .collect();
        candidates.sort_by_key(|s| std::cmp::Reverse(s.start_time_in_millis));
        let summary = candidates.first()?;
        let repo = self.repo;
        let manifest = self
            .manifests
            .entry(summary.uuid.clone())
            .or_insert_with(|| repo.manifest(summary).ok())
            .as_ref()?;
        let stats = if index == GLOBAL_STATE {
            manifest.global_state.as_ref()?
        } else {
            manifest.indices.get(index)?
        };
        repo.tree(packer_index, &stats.tree?).ok()
    }
}

/// One thing to snapshot: an index folder or the global state.
struct Target {
    name: String,
    path: PathBuf,
    global: bool,
}

/// A target's trees: its stats (with the root tree), the files that could
/// not be read, and every blob its trees reference.
type BuiltTarget = (IndexStats, Vec<Failure>, HashSet<Id>);

/// A target after its walk: its skeleton, its folder's metadata, and the
/// range of the snapshot's job list that holds its files.
struct Walked {
    target: Target,
    skel: DirSkel,
    root_meta: Option<fs::Metadata>,
    jobs: std::ops::Range<usize>,
}

pub fn create_snapshot(repo: &Repo, opts: &SnapshotOptions) -> Result<SnapshotOutcome> {
    let start = now_millis();
    validate_name("snapshot", &opts.name)?;
    // Announce the snapshot before reading the root: a delete that commits
    // after this read sees the marker and leaves packs we may reuse to
    // cleanup; cleanup keeps our uploads. The marker goes when we return.
    let uuid = uuid::Uuid::new_v4().to_string();
    let inflight = InFlight::start(
        repo,
        Activity::Snapshot,
        &uuid,
        &opts.name,
        repo.cached_generation(),
    )?;
    let (root, index) = repo.root_and_index()?;
    repo.refuse_lost_root(root.generation)?;
    if root.snapshot(&opts.name).is_some() {
        return Err(RootConflict::DuplicateSnapshot(opts.name.clone()).into());
    }

    guard::check_snapshot_source(repo, &opts.source)?;
    let available = discover_indices(&opts.source)?;
    let mut targets = Vec::new();
    for name in opts.selection.select(&available)? {
        validate_name("index", name)?;
        targets.push(Target {
            name: name.clone(),
            path: opts.source.join(name),
            global: false,
        });
    }
    for (name, path) in &opts.extra_indices {
        validate_name("index", name)?;
        if targets.iter().any(|t| &t.name == name) {
            return Err(Error::Usage(format!("index [{name}] is given twice")));
        }
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Source {
                    path: path.clone(),
                    detail: "is not a directory".into(),
                })
            }
            Err(e) => {
                return Err(Error::Source {
                    path: path.clone(),
                    detail: e.to_string(),
                })
            }
        }
        targets.push(Target {
            name: name.clone(),
            path: path.clone(),
            global: false,
        });
    }
    if opts.include_global_state {
        targets.push(Target {
            name: GLOBAL_STATE.into(),
            path: opts.source.clone(),
            global: true,
        });
    }
    // Repositories are never snapshotted (the one written to included):
    // restoring such a copy over the source would replace a live
    // repository with an older one.
    let repo_dir = guard::local_root(repo).and_then(|p| guard::identity(&p));
    let mut skipped = Vec::new();
    targets.retain(|t| {
        let own = repo_dir.is_some() && guard::identity(&t.path) == repo_dir;
        let left_out = own || (!t.global && guard::is_repository(&t.path));
        if left_out {
            skipped.push(t.path.clone());
        }
        !left_out
    });
    if targets.is_empty() {
        return Err(Error::Usage(
            "nothing to snapshot: no index matches and global state is excluded".into(),
        ));
    }

    let packer = Packer::new(repo, &index);
    let mut parents = Parents {
        repo,
        root: &root,
        manifests: HashMap::new(),
    };
    let parent_trees: Vec<Option<Tree>> = targets
        .iter()
        .map(|t| parents.tree_for(&t.name, &index))
        .collect();
    // Each target is walked on its own (in parallel: the walk is all
    // `lstat`s and would otherwise keep one core alone busy); its jobs are
    // numbered from 0 within it.
    let walks: Vec<TargetWalk> = targets
        .par_iter()
        .zip(parent_trees.par_iter())
        .map(|(t, parent)| {
            let mut walker = Walker {
                repo,
                index: &index,
                packer: &packer,
                jobs: Vec::new(),
                failures: Vec::new(),
                skip_dir: repo_dir,
                skipped: Vec::new(),
            };
            let keep_global = |name: &str, m: &fs::Metadata| is_global(name, m);
            let keep_all = |_: &str, _: &fs::Metadata| true;
            let keep: &(dyn Fn(&str, &fs::Metadata) -> bool + Sync) =
                if t.global { &keep_global } else { &keep_all };
            let skel = walker.walk(&t.name, &t.path, "", parent.as_ref(), keep);
            (skel, walker.jobs, walker.failures, walker.skipped)
        })
        .collect();
    let mut walked = Vec::new();
    let mut jobs = Vec::new();
    let mut failures = Vec::new();
    for (t, (skel, target_jobs, target_failures, target_skipped)) in targets.into_iter().zip(walks)
    {
        failures.extend(target_failures);
        skipped.extend(target_skipped);
        match skel {
            Ok(skel) => {
                let root_meta = fs::metadata(&t.path).ok();
                walked.push(Walked {
                    target: t,
                    skel,
                    root_meta,
                    jobs: jobs.len()..jobs.len() + target_jobs.len(),
                });
                jobs.extend(target_jobs);
            }
            // An index that cannot be listed at all is left out of a
            // PARTIAL snapshot, like an unreadable file.
            Err(e) if opts.partial => failures.push(Failure {
                index: t.name.clone(),
                path: String::new(),
                reason: format!("cannot list {}: {e}", t.path.display()),
            }),
            Err(e) => {
                return Err(Error::Source {
                    path: t.path.clone(),
                    detail: e.to_string(),
                })
            }
        }
    }

    let total: u64 = jobs.iter().map(|j| j.size).sum();
    let progress = Progress::bytes(opts.progress, total, "snapshot");
    let doomed = !opts.partial && !failures.is_empty();
    let mut results = if doomed {
        jobs.iter().map(|_| JobResult::Skipped).collect()
    } else {
        run_jobs(
            &jobs,
            &repo.config.chunker,
            &packer,
            &progress,
            !opts.partial,
        )
    };
    progress.finish();
    if let Some(i) = results
        .iter()
        .position(|r| matches!(r, JobResult::Fatal(_)))
    {
        if let JobResult::Fatal(e) = std::mem::replace(&mut results[i], JobResult::Skipped) {
            return Err(e);
        }
    }

    // Each target's trees are built from its own results, in parallel
    // (encoding, hashing and compressing a tree per folder).
    let mut per_target = Vec::with_capacity(walked.len());
    for w in walked.iter().rev() {
        per_target.push(results.split_off(w.jobs.start));
    }
    per_target.reverse();
    let target_names: Vec<(String, bool)> = walked
        .iter()
        .map(|w| (w.target.name.clone(), w.target.global))
        .collect();
    let built: Vec<Result<BuiltTarget>> = walked
        .into_par_iter()
        .zip(per_target)
        .map(|(w, results)| {
            let mut builder = TreeBuilder {
                results,
                jobs: &jobs[w.jobs.clone()],
                root: &w.target.path,
                packer: &packer,
                failures: Vec::new(),
                referenced: HashSet::new(),
            };
            let mut stats = IndexStats::default();
            stats.tree = Some(builder.finish(w.skel, &w.target.name, &mut stats)?);
            if !w.target.global {
                let root_meta = w.root_meta.as_ref();
                stats.root_mode = root_meta.map(|m| m.permissions().mode() & 0o7777);
                stats.root_mtime_ns = root_meta.map(|m| Stamp::of(m).mtime_ns);
            }
            Ok((stats, builder.failures, builder.referenced))
        })
        .collect();
    let mut indices = BTreeMap::new();
    let mut global_state = None;
    let mut referenced = HashSet::new();
    for (t, b) in target_names.iter().zip(built) {
        let (stats, target_failures, target_referenced) = b?;
        failures.extend(target_failures);
        referenced.extend(target_referenced);
        match t {
            (name, false) => {
                indices.insert(name.clone(), stats);
            }
            (_, true) => global_state = Some(stats),
        }
    }
    failures.retain(|f| f.reason != ABORTED);
    if !failures.is_empty() && !opts.partial {
        let first = &failures[0];
        return Err(Error::Inconsistent {
            count: failures.len(),
            path: format!("{}/{}", first.index, first.path),
            reason: first.reason.clone(),
        });
    }

    let totals = packer.finish()?;
    let index_file_id = if totals.index.packs.is_empty() {
        None
    } else {
        Some(repo.put_index_file(&totals.index)?)
    };
    let manifest = Manifest {
        version: 1,
        snapshot: opts.name.clone(),
        uuid: uuid.clone(),
        state: if failures.is_empty() {
            SnapshotState::Success
        } else {
            SnapshotState::Partial
        },
        start_time_in_millis: start,
        end_time_in_millis: now_millis(),
        indices,
        global_state,
        metadata: opts.metadata.clone(),
        failures,
    };
    let key = keys::manifest(&manifest.uuid);
    let encoded = manifest.encode();
    let mut summary = manifest.summary();
    summary.manifest = Some(Id::of(&encoded));
    match block_on(repo.store.put(&key, Bytes::from(encoded), PutMode::Create)) {
        // The uuid is fresh: an existing manifest is our own retried write.
        Ok(()) | Err(crate::storage::StorageError::AlreadyExists { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let mut change = RootChange::AddSnapshot {
        summary,
        index_file: index_file_id,
        base_index_files: root.index_files.clone(),
    };
    let committed = inflight
        .ensure_fresh()
        .and_then(|()| commit_verified(repo, &mut change, &referenced, &totals.index, &index));
    let root = match committed {
        Ok(r) => r,
        Err(e) => {
            // Only a definite refusal makes the manifest unreachable for
            // sure; after an ambiguous storage error the root may exist.
            if matches!(e, Error::Conflict(_)) {
                let _ = block_on(repo.store.delete(&key));
            }
            return Err(e);
        }
    };
    Ok(SnapshotOutcome {
        manifest,
        generation: root.generation,
        packs_written: totals.packs_written,
        bytes_uploaded: totals.bytes_uploaded,
        skipped,
    })
}

/// Commits a snapshot. If a concurrent delete rewrote the index this
/// snapshot deduplicated against, every blob the snapshot references must
/// still be indexed. Blobs the delete dropped are found through `base` (the
/// index the snapshot started from); their packs are still stored (deletes
/// leave them while a snapshot is running), so they are indexed again in
/// this snapshot's index file and the commit is retried on the new root.
/// Only a pack that is really gone fails the snapshot, cleanly.
fn commit_verified(
    repo: &Repo,
    change: &mut RootChange,
    referenced: &HashSet<Id>,
    own: &IndexFile,
    base: &RepoIndex,
) -> Result<Root> {
    const ATTEMPTS: u32 = 10;
    for _ in 0..ATTEMPTS {
        match repo.commit(change) {
            Err(Error::Conflict(RootConflict::IndexRewritten)) => {
                let (now, mut index) = repo.root_and_index()?;
                index.merge(own);
                let mut revived: std::collections::BTreeMap<Id, Vec<BlobEntry>> =
                    Default::default();
                for id in referenced.iter().filter(|id| !index.contains(id)) {
                    let Some((pack, entry)) = base.entry(id) else {
                        return Err(gone(*id));
                    };
                    revived.entry(pack).or_default().push(entry);
                }
                for pack in revived.keys() {
                    if block_on(repo.store.head(&keys::pack(pack))).is_err() {
                        return Err(gone(revived[pack][0].id));
                    }
                }
                if let RootChange::AddSnapshot {
                    base_index_files,
                    index_file,
                    ..
                } = change
                {
                    if !revived.is_empty() {
                        let mut file = own.clone();
                        file.packs.extend(revived);
                        file.packs.sort_by_key(|(p, _)| *p);
                        *index_file = Some(repo.put_index_file(&file)?);
                    }
                    *base_index_files = now.index_files.clone();
                }
            }
            other => return other,
        }
    }
    Err(Error::CommitContention(ATTEMPTS))
}

fn gone(id: Id) -> Error {
    Error::Integrity {
        id,
        detail: "a concurrent delete removed data this snapshot reuses; nothing was committed, run the snapshot again".into(),
    }
}
