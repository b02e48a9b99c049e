//! `snapshot create`: walk the selected indices, read changed files in
//! parallel into deduplicated packs, build trees bottom-up, then write the
//! index file, the manifest and finally the new root generation. Nothing is
//! visible to readers until that last create-only put succeeds.

pub mod compressor;
pub mod packer;
pub mod reader;
pub mod walk;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use rayon::prelude::*;

use crate::core::blob::BlobKind;
use crate::core::keys;
use crate::core::manifest::{Failure, IndexStats, Manifest, SnapshotState, GLOBAL_STATE};
use crate::core::naming::validate_name;
use crate::core::root::{Root, RootChange, RootConflict};
use crate::core::selection::Selection;
use crate::core::tree::{Node, Tree};
use crate::native::error::{Error, Result};
use crate::native::progress::Progress;
use crate::native::repo::Repo;
use crate::native::runtime::block_on;
use crate::storage::PutMode;
use packer::Packer;
use reader::{read_file, FileRead, ReadError, Stamp};
use walk::{DirSkel, Entry, Walker};

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
}

enum JobResult {
    Read(FileRead),
    Failed(String),
    Fatal(Error),
    Skipped,
}

pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Top-level entries that are global state rather than indices.
fn is_global(name: &str, meta: &fs::Metadata) -> bool {
    !meta.file_type().is_dir() || name.starts_with('_') || name.starts_with('.')
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
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let m = fs::symlink_metadata(e.path()).map_err(|e| src_err(e.to_string()))?;
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
        packer_index: &crate::core::index::RepoIndex,
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

/// Builds the trees of one skeleton bottom-up, storing each new tree blob.
fn finish_dir(
    dir: DirSkel,
    index: &str,
    results: &mut [JobResult],
    jobs: &[walk::Job],
    packer: &Packer,
    stats: &mut IndexStats,
    failures: &mut Vec<Failure>,
) -> Result<crate::core::id::Id> {
    let mut nodes: Vec<Node> = Vec::with_capacity(dir.entries.len());
    for entry in dir.entries {
        match entry {
            Entry::Done(node) => {
                if node.kind == crate::core::tree::NodeType::File {
                    stats.files += 1;
                    stats.size_in_bytes += node.size;
                }
                nodes.push(node);
            }
            Entry::File { mut node, job } => {
                match std::mem::replace(&mut results[job], JobResult::Skipped) {
                    JobResult::Read(r) => {
                        node.chunks = r.chunks;
                        node.size = r.stamp.size;
                        node.mtime_ns = r.stamp.mtime_ns;
                        node.inode = r.stamp.inode;
                        stats.files += 1;
                        stats.files_read += 1;
                        stats.size_in_bytes += node.size;
                        stats.new_bytes += r.added.plain;
                        stats.new_stored_bytes += r.added.stored;
                        nodes.push(node);
                    }
                    JobResult::Failed(reason) => failures.push(Failure {
                        index: index.to_string(),
                        path: jobs[job].rel.clone(),
                        reason,
                    }),
                    JobResult::Fatal(e) => return Err(e),
                    JobResult::Skipped => failures.push(Failure {
                        index: index.to_string(),
                        path: jobs[job].rel.clone(),
                        reason: "not read: the snapshot was aborted".into(),
                    }),
                }
            }
            Entry::Dir { mut node, dir } => {
                node.subtree = Some(finish_dir(
                    dir, index, results, jobs, packer, stats, failures,
                )?);
                stats.dirs += 1;
                nodes.push(node);
            }
        }
    }
    let bytes = Tree::new(nodes).encode();
    let id = crate::core::id::Id::of(&bytes);
    let added = packer.add(id, BlobKind::Tree, &bytes)?;
    stats.new_stored_bytes += added.stored;
    Ok(id)
}

/// One thing to snapshot: an index folder or the global state.
struct Target {
    name: String,
    path: PathBuf,
    global: bool,
}

pub fn create_snapshot(repo: &Repo, opts: &SnapshotOptions) -> Result<SnapshotOutcome> {
    let start = now_millis();
    validate_name("snapshot", &opts.name)?;
    let root = repo.root()?;
    if root.snapshot(&opts.name).is_some() {
        return Err(RootConflict::DuplicateSnapshot(opts.name.clone()).into());
    }

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
    if targets.is_empty() {
        return Err(Error::Usage(
            "nothing to snapshot: no index matches and global state is excluded".into(),
        ));
    }

    let index = repo.index(&root)?;
    let packer = Packer::new(repo, &index);
    let mut parents = Parents {
        repo,
        root: &root,
        manifests: HashMap::new(),
    };
    let mut walker = Walker {
        repo,
        index: &index,
        packer: &packer,
        jobs: Vec::new(),
        failures: Vec::new(),
    };
    let mut skeletons = Vec::new();
    for t in &targets {
        let parent = parents.tree_for(&t.name, &index);
        let keep_global = |name: &str, m: &fs::Metadata| is_global(name, m);
        let keep_all = |_: &str, _: &fs::Metadata| true;
        let keep: &dyn Fn(&str, &fs::Metadata) -> bool =
            if t.global { &keep_global } else { &keep_all };
        let skel = walker
            .walk(&t.name, &t.path, "", parent.as_ref(), keep)
            .map_err(|e| Error::Source {
                path: t.path.clone(),
                detail: e.to_string(),
            })?;
        let root_meta = fs::metadata(&t.path).ok();
        skeletons.push((skel, root_meta));
    }
    let Walker {
        jobs, mut failures, ..
    } = walker;

    let total: u64 = jobs.iter().map(|j| j.size).sum();
    let progress = Progress::bytes(opts.progress, total, "snapshot");
    let abort = AtomicBool::new(!opts.partial && !failures.is_empty());
    let params = repo.config.chunker;
    let mut results: Vec<JobResult> = jobs
        .par_iter()
        .map(|job| {
            if abort.load(Ordering::Relaxed) {
                return JobResult::Skipped;
            }
            let mut changed_once = false;
            loop {
                match read_file(&job.path, &params, &packer, &progress) {
                    Ok(r) => return JobResult::Read(r),
                    Err(ReadError::Changed) if !changed_once => changed_once = true,
                    Err(e) => {
                        let out = match e {
                            ReadError::Changed => {
                                JobResult::Failed("file changed while it was read, twice".into())
                            }
                            ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
                                JobResult::Failed("file disappeared before it was read".into())
                            }
                            ReadError::Io(e) => JobResult::Failed(format!("cannot read: {e}")),
                            ReadError::Store(e) => JobResult::Fatal(e),
                        };
                        if matches!(out, JobResult::Fatal(_)) || !opts.partial {
                            abort.store(true, Ordering::Relaxed);
                        }
                        return out;
                    }
                }
            }
        })
        .collect();
    progress.finish();
    if let Some(fatal) = results
        .iter_mut()
        .find(|r| matches!(r, JobResult::Fatal(_)))
    {
        if let JobResult::Fatal(e) = std::mem::replace(fatal, JobResult::Skipped) {
            return Err(e);
        }
    }

    let mut indices = BTreeMap::new();
    let mut global_state = None;
    for (t, (skel, root_meta)) in targets.iter().zip(skeletons) {
        let mut stats = IndexStats::default();
        let tree = finish_dir(
            skel,
            &t.name,
            &mut results,
            &jobs,
            &packer,
            &mut stats,
            &mut failures,
        )?;
        stats.tree = Some(tree);
        if !t.global {
            stats.root_mode = root_meta
                .as_ref()
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777);
            stats.root_mtime_ns = root_meta.as_ref().map(|m| Stamp::of(m).mtime_ns);
            indices.insert(t.name.clone(), stats);
        } else {
            global_state = Some(stats);
        }
    }
    failures.retain(|f| !f.reason.starts_with("not read:"));
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
        uuid: uuid::Uuid::new_v4().to_string(),
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
    block_on(
        repo.store
            .put(&key, Bytes::from(manifest.encode()), PutMode::Create),
    )?;
    let committed = repo.commit(&RootChange::AddSnapshot {
        summary: manifest.summary(),
        index_file: index_file_id,
    });
    let root = match committed {
        Ok(r) => r,
        Err(e) => {
            // The manifest is unreachable without a root entry; drop it.
            let _ = block_on(repo.store.delete(&key));
            return Err(e);
        }
    };
    Ok(SnapshotOutcome {
        manifest,
        generation: root.generation,
        packs_written: totals.packs_written,
        bytes_uploaded: totals.bytes_uploaded,
    })
}
