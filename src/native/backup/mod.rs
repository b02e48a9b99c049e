//! `snapshot create`: walk the selected indices, read changed files in
//! parallel into deduplicated packs, build trees bottom-up, then write the
//! index file, the manifest and finally the new root generation. Nothing is
//! visible to readers until that last create-only put succeeds.

pub mod attrs;
mod build;
pub mod compressor;
pub mod filter;
pub mod hooks;
pub mod interrupted;
pub mod jobs;
pub mod packer;
pub mod read_error;
pub mod reader;
pub mod status;
pub mod uploader;
pub mod walk;
pub mod windows;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::core::es::status::{Counts, RunState, ShardStage};
use crate::core::format::id::Id;
use crate::core::format::index::{IndexFile, RepoIndex};
use crate::core::format::manifest::{EntryAttrs, Failure, IndexStats, Manifest, GLOBAL_STATE};
use crate::core::format::naming::validate_name;
use crate::core::format::root::{Root, RootChange, RootConflict, SlotFence};
use crate::core::format::tree::Tree;
use crate::core::policy::exclude::Excludes;
use crate::core::policy::global_state::{is_follower_work, is_global_state};
use crate::core::policy::hooks::snapshot_state;
use crate::core::policy::parents::parent_for;
use crate::core::policy::selection::Selection;
use crate::native::error::{Error, Result};
use crate::native::guard;
use crate::native::inflight::{Activity, InFlight};
use crate::native::job::Abort;
use crate::native::progress::{Progress, ProgressMode};
use crate::native::repo::Repo;
use crate::native::runtime::block_on;
use build::{TreeBuilder, ABORTED};
use filter::Filter;
use hooks::{Brackets, IndexHooks};
use jobs::{run_jobs, JobResult};
use packer::Packer;
use rayon::prelude::*;
use reader::Stamp;
use status::{ListedIndex, SnapshotProgress};
use walk::{DirSkel, Entry, Job, Walker};

#[derive(Debug, Clone, Default)]
pub struct SnapshotOptions {
    pub name: String,
    /// Commit nothing when the snapshot would hold exactly this
    /// snapshot's trees (a leader's next checkpoint, taken without
    /// comparing first): the outcome says `unchanged`.
    pub unless_same_as: Option<String>,
    pub source: PathBuf,
    pub selection: Selection,
    /// `--index NAME=PATH`: folders outside the source added as indices.
    pub extra_indices: Vec<(String, PathBuf)>,
    pub include_global_state: bool,
    pub partial: bool,
    pub metadata: BTreeMap<String, String>,
    pub progress: bool,
    /// Live status for observers on other threads (the node's `_status`).
    pub status: Option<Arc<SnapshotProgress>>,
    /// Stops the snapshot before it commits: it then fails with
    /// `Error::Aborted`, leaving what it uploaded to `repo cleanup`, or
    /// with `keep_uploads_on_stop` listed for its rerun.
    pub abort: Abort,
    /// An aborted snapshot lists what it uploaded in the root, so a rerun
    /// uploads only what is missing ([`interrupted`]): the CLI's Ctrl-C.
    /// Off where an abort means "discard" (the node's DELETE of a running
    /// snapshot).
    pub keep_uploads_on_stop: bool,
    /// Consistency hooks run around each index's read ([`hooks`]).
    pub hooks: Option<Arc<dyn IndexHooks>>,
    /// A lifecycle policy's slot this snapshot runs (from the node's claim,
    /// `repo::slot_claims`): the commit is refused with `Error::SlotTaken`
    /// if the repository already records that slot or a newer one, so a
    /// slot commits once however many nodes ran it.
    pub slot: Option<SlotFence>,
    /// `--exclude` / `--exclude-file`: paths left out (`core::policy::exclude`).
    pub exclude: Excludes,
    /// `--one-file-system`: folders on another file system than their
    /// index folder (or the source, for global state) are kept empty.
    pub one_file_system: bool,
}

#[derive(Debug, Clone)]
pub struct SnapshotOutcome {
    pub manifest: Manifest,
    pub generation: u64,
    pub packs_written: u64,
    pub bytes_uploaded: u64,
    /// Folders left out because they are repositories.
    pub skipped: Vec<PathBuf>,
    /// With [`SnapshotOptions::unless_same_as`]: nothing differed, and
    /// nothing was committed (`manifest` is what would have been).
    pub unchanged: bool,
}

use crate::native::clock::now_millis;

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

/// Index folders of `source` that no exclude pattern leaves out, sorted by
/// name.
fn discover_indices(source: &Path, exclude: &Excludes) -> Result<Vec<String>> {
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
        if !is_global(&name, &m) && !exclude.excludes(&name, true) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Loads the tree the parent snapshot (`core::policy::parents`) holds for
/// an index, reading each parent's manifest once.
struct Parents<'a> {
    repo: &'a Repo,
    root: &'a Root,
    manifests: HashMap<String, Option<Manifest>>,
}

impl Parents<'_> {
    fn tree_for(&mut self, index: &str, packer_index: &RepoIndex) -> Option<Tree> {
        let summary = parent_for(&self.root.snapshots, index)?;
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
    root_attrs: Option<EntryAttrs>,
    jobs: std::ops::Range<usize>,
}

pub fn create_snapshot(repo: &Repo, opts: &SnapshotOptions) -> Result<SnapshotOutcome> {
    let out = create(repo, opts);
    if let Some(s) = &opts.status {
        match &out {
            Ok(_) => s.set(RunState::Success, ShardStage::Done),
            Err(Error::Aborted(_)) => s.set(RunState::Aborted, ShardStage::Failure),
            Err(_) => s.set(RunState::Failed, ShardStage::Failure),
        }
    }
    out
}

/// The files and bytes a walked folder holds.
fn skel_counts(skel: &DirSkel) -> Counts {
    let mut c = Counts::default();
    for e in &skel.entries {
        let (files, bytes) = match e {
            Entry::Done(n) if n.is_file_like() => (1, n.size),
            Entry::Done(_) => (0, 0),
            Entry::Link { .. } => (1, 0),
            Entry::File { node, .. } => (1, node.size),
            Entry::Dir { dir, .. } => {
                let sub = skel_counts(dir);
                (sub.files, sub.bytes)
            }
        };
        c.files += files;
        c.bytes += bytes;
    }
    c
}

/// Tells the status what the walk found: each index's files, and the ones
/// this snapshot reads.
fn report_listed(status: &SnapshotProgress, listed: &Listed) {
    let indices = listed
        .walked
        .iter()
        .filter(|w| !w.target.global)
        .map(|w| ListedIndex {
            name: w.target.name.clone(),
            total: skel_counts(&w.skel),
            incremental: Counts {
                files: w.jobs.len() as u64,
                bytes: listed.jobs[w.jobs.clone()].iter().map(|j| j.size).sum(),
            },
            jobs: w.jobs.clone(),
        })
        .collect();
    status.listed(indices);
}

fn create(repo: &Repo, opts: &SnapshotOptions) -> Result<SnapshotOutcome> {
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
    if let Some(s) = &opts.status {
        s.begin(&opts.name, &uuid, opts.include_global_state, start);
    }
    let (root, index) = repo.root_and_index()?;
    repo.refuse_lost_root(root.generation)?;
    if root.snapshot(&opts.name).is_some() {
        return Err(RootConflict::DuplicateSnapshot(opts.name.clone()).into());
    }
    refuse_taken_slot(opts.slot.as_ref(), &root)?;
    guard::check_snapshot_source(repo, &opts.source)?;
    let repo_dir = guard::local_root(repo).and_then(|p| guard::identity(&p));
    let (targets, mut skipped) = select_targets(opts, repo_dir)?;

    let packer = Packer::new(repo, &index).abort_on(opts.abort.clone());
    let read = Reading {
        repo,
        opts,
        root: &root,
        index: &index,
        packer: &packer,
        repo_dir,
    }
    .run(targets, &mut skipped);
    let (built, state) = match read {
        Err(Error::Aborted(what)) => return Err(stopped(repo, packer, opts, what)),
        other => other?,
    };
    if let Err(Error::Aborted(what)) = opts.abort.check("snapshot") {
        return Err(stopped(repo, packer, opts, what));
    }
    let totals = packer.finish()?;
    let index_file = if totals.index.packs.is_empty() {
        None
    } else {
        Some(repo.put_index_file(&totals.index)?)
    };
    let manifest = Manifest {
        version: 1,
        snapshot: opts.name.clone(),
        uuid: uuid.clone(),
        state,
        start_time_in_millis: start,
        end_time_in_millis: now_millis(),
        indices: built.indices,
        global_state: built.global_state,
        metadata: opts.metadata.clone(),
        failures: built.failures,
    };
    if let Some(parent) = &opts.unless_same_as {
        if same_trees(repo, &root, parent, &manifest)? {
            return Ok(SnapshotOutcome {
                manifest,
                generation: root.generation,
                packs_written: totals.packs_written,
                bytes_uploaded: totals.bytes_uploaded,
                skipped,
                unchanged: true,
            });
        }
    }
    let change = RootChange::AddSnapshot {
        summary: manifest.summary(),
        index_file,
        base_index_files: root.index_files.clone(),
        slot: opts.slot.clone(),
    };
    let commit = Commit {
        repo,
        inflight: &inflight,
        referenced: &built.referenced,
        own: &totals.index,
        base: &index,
    };
    if let (Err(Error::Aborted(what)), true) =
        (opts.abort.check("snapshot"), opts.keep_uploads_on_stop)
    {
        let kept = interrupted::Uploaded::of(&totals, index_file);
        return Err(interrupted::keep(repo, kept, opts.status.as_deref(), what));
    }
    opts.abort.check("snapshot")?;
    let root = commit.run(&manifest, change)?;
    Ok(SnapshotOutcome {
        manifest,
        generation: root.generation,
        packs_written: totals.packs_written,
        bytes_uploaded: totals.bytes_uploaded,
        skipped,
        unchanged: false,
    })
}

/// Whether `manifest` (complete, with no failures) holds exactly the
/// trees of snapshot `name`: its indices and global state, folder by
/// folder and file by file (trees are content-addressed and record every
/// entry's size, mtime and mode, the rule a comparison would use).
fn same_trees(repo: &Repo, root: &Root, name: &str, manifest: &Manifest) -> Result<bool> {
    let Some(summary) = root.snapshot(name) else {
        return Ok(false);
    };
    if !manifest.failures.is_empty()
        || manifest.state != crate::core::format::manifest::SnapshotState::Success
    {
        return Ok(false);
    }
    let parent = repo.manifest(summary)?;
    let trees = |m: &Manifest| -> Vec<(String, Option<Id>)> {
        let indices = m.indices.iter().map(|(k, s)| (k.clone(), s.tree));
        let global = m.global_state.iter().map(|g| (String::new(), g.tree));
        indices.chain(global).collect()
    };
    Ok(trees(manifest) == trees(&parent))
}

/// Everything a snapshot shares while it walks, reads and builds trees.
struct Reading<'a> {
    repo: &'a Repo,
    opts: &'a SnapshotOptions,
    root: &'a Root,
    index: &'a RepoIndex,
    packer: &'a Packer<'a>,
    repo_dir: Option<guard::Identity>,
}

impl Reading<'_> {
    /// Walks the targets, reads what changed and builds the trees: the
    /// snapshot's content and state, all but the commit.
    fn run(
        &self,
        targets: Vec<Target>,
        skipped: &mut Vec<PathBuf>,
    ) -> Result<(Built, crate::core::format::manifest::SnapshotState)> {
        let (repo, opts, index, packer) = (self.repo, self.opts, self.index, self.packer);
        let mut parents = Parents {
            repo,
            root: self.root,
            manifests: HashMap::new(),
        };
        let parent_trees: Vec<Option<Tree>> = targets
            .iter()
            .map(|t| parents.tree_for(&t.name, index))
            .collect();
        // Declared before the walk so that every return below, aborts and
        // errors included, runs the `after` hooks still due.
        let mut brackets = Brackets::new(opts.hooks.clone());
        let walk = Walk {
            repo,
            index,
            packer,
            repo_dir: self.repo_dir,
            brackets: &brackets,
            abort: &opts.abort,
            exclude: &opts.exclude,
            one_file_system: opts.one_file_system,
            rules: &repo
                .config
                .rules()
                .map_err(|e| Error::format("config", e))?,
        };
        let mut listed = walk.targets(targets, &parent_trees, opts.partial)?;
        skipped.append(&mut listed.skipped);
        brackets.expect_reads(
            listed
                .walked
                .iter()
                .filter(|w| !w.target.global)
                .map(|w| (w.target.name.as_str(), w.jobs.clone())),
        );
        opts.abort.check("snapshot")?;
        if let Some(s) = &opts.status {
            report_listed(s, &listed);
        }
        let results = read_files(&listed, repo, packer, opts, &brackets)?;
        let hook_failures = brackets.finish();
        if let (false, Some(first)) = (opts.partial, hook_failures.first()) {
            return Err(Error::Hook {
                index: first.index.clone(),
                reason: first.reason.clone(),
            });
        }
        if let Some(s) = &opts.status {
            s.set(RunState::Started, ShardStage::Finalize);
        }
        let mut built = build_trees(listed, results, packer, &hook_failures)?;
        built.failures.extend(hook_failures);
        let state =
            snapshot_state(opts.partial, &built.failures).map_err(|first| Error::Inconsistent {
                count: built.failures.len(),
                path: format!("{}/{}", first.index, first.path),
                reason: first.reason.clone(),
            })?;
        Ok((built, state))
    }
}

/// A snapshot stopped before its commit: what it uploaded is kept for a
/// rerun ([`interrupted`]), and it fails with `Error::Aborted`.
fn stopped(repo: &Repo, packer: Packer, opts: &SnapshotOptions, what: &'static str) -> Error {
    match packer.abandon() {
        Ok(_) if !opts.keep_uploads_on_stop => Error::Aborted(what),
        Ok(totals) => {
            let index_file = if totals.index.packs.is_empty() {
                None
            } else {
                match repo.put_index_file(&totals.index) {
                    Ok(f) => Some(f),
                    Err(e) => return e,
                }
            };
            let kept = interrupted::Uploaded::of(&totals, index_file);
            interrupted::keep(repo, kept, opts.status.as_deref(), what)
        }
        // An upload failed: the rerun stores the data again.
        Err(_) => Error::Aborted(what),
    }
}

/// Refuses, before any data is read, a slot the root already records: the
/// commit would refuse it anyway (and does, should it be taken meanwhile).
fn refuse_taken_slot(slot: Option<&SlotFence>, root: &Root) -> Result<()> {
    let Some(fence) = slot else { return Ok(()) };
    match fence.taken_in(root) {
        None => Ok(()),
        Some(recorded) => Err(RootConflict::SlotTaken {
            policy: fence.policy.clone(),
            slot_ms: fence.slot_ms,
            recorded_ms: recorded.slot_ms,
            recorded_epoch: recorded.epoch,
        }
        .into()),
    }
}

/// The indices (and global state) a snapshot reads, in order, and the
/// folders left out because they are repositories.
fn select_targets(
    opts: &SnapshotOptions,
    repo_dir: Option<guard::Identity>,
) -> Result<(Vec<Target>, Vec<PathBuf>)> {
    let available = discover_indices(&opts.source, &opts.exclude)?;
    let mut targets = Vec::new();
    for name in opts.selection.select(&available)? {
        validate_index_folder(&opts.source, name)?;
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
        check_extra_index(path)?;
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
    Ok((targets, skipped))
}

/// A top-level folder is an index, so its name must be a valid index name;
/// the refusal says how to leave the folder out instead.
fn validate_index_folder(source: &Path, name: &str) -> Result<()> {
    validate_name("index", name).map_err(|e| {
        Error::Usage(format!(
            "folder {} is not a valid index name ({e}): every top-level folder of the source \
             is an index (names starting with '_' or '.' are global state); rename it, or leave \
             it out with --exclude '/{name}'",
            source.join(name).display()
        ))
    })
}

/// `--index NAME=PATH` must name a folder.
fn check_extra_index(path: &Path) -> Result<()> {
    let detail = match fs::metadata(path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => "is not a directory".to_string(),
        Err(e) => e.to_string(),
    };
    Err(Error::Source {
        path: path.to_path_buf(),
        detail,
    })
}

/// What walking every target found: the targets that could be listed, the
/// files to read (each target's in one range), and what failed or was left
/// out.
struct Listed {
    walked: Vec<Walked>,
    jobs: Vec<Job>,
    failures: Vec<Failure>,
    skipped: Vec<PathBuf>,
}

/// What every target's walk shares.
struct Walk<'a> {
    repo: &'a Repo,
    index: &'a RepoIndex,
    packer: &'a Packer<'a>,
    repo_dir: Option<guard::Identity>,
    brackets: &'a Brackets,
    abort: &'a Abort,
    exclude: &'a Excludes,
    one_file_system: bool,
    rules: &'a crate::core::chunking::rules::ChunkingRules,
}

impl Walk<'_> {
    /// Walks each target on its own (in parallel: the walk is all `lstat`s
    /// and would otherwise keep one core alone busy); its jobs are numbered
    /// from 0 within it, then appended to the snapshot's list.
    fn targets(
        &self,
        targets: Vec<Target>,
        parents: &[Option<Tree>],
        partial: bool,
    ) -> Result<Listed> {
        // Each index's `before` hook runs just before its own walk; one that
        // fails leaves the index out.
        let walks: Vec<std::result::Result<TargetWalk, Vec<Failure>>> = targets
            .par_iter()
            .zip(parents.par_iter())
            .map(|(t, parent)| {
                if !t.global {
                    self.brackets.enter(&t.name, &t.path)?;
                }
                Ok(self.one(t, parent.as_ref()))
            })
            .collect();
        // Before the walks' errors: an aborted walk's folders failed to list.
        self.abort.check("snapshot")?;
        let mut listed = Listed {
            walked: Vec::new(),
            jobs: Vec::new(),
            failures: Vec::new(),
            skipped: Vec::new(),
        };
        for (t, walk) in targets.into_iter().zip(walks) {
            let (skel, jobs, failures, skipped) = match walk {
                Ok(walk) => walk,
                Err(hook) if partial => {
                    listed.failures.extend(hook);
                    continue;
                }
                Err(hook) => {
                    return Err(Error::Hook {
                        index: t.name,
                        reason: hook[0].reason.clone(),
                    })
                }
            };
            listed.failures.extend(failures);
            listed.skipped.extend(skipped);
            match skel {
                Ok(skel) => {
                    let start = listed.jobs.len();
                    let root_meta = fs::metadata(&t.path).ok();
                    listed.walked.push(Walked {
                        root_attrs: root_meta.as_ref().map(|m| attrs::folder_attrs(m, &t.path)),
                        root_meta,
                        target: t,
                        skel,
                        jobs: start..start + jobs.len(),
                    });
                    listed.jobs.extend(jobs);
                }
                // An index that cannot be listed at all is left out of a
                // PARTIAL snapshot, like an unreadable file.
                Err(e) if partial => listed.failures.push(Failure {
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
        Ok(listed)
    }

    fn one(&self, t: &Target, parent: Option<&Tree>) -> TargetWalk {
        let prefix = if t.global { "" } else { t.name.as_str() };
        let filter = Filter::new(self.exclude, prefix, &t.path, self.one_file_system);
        let mut walker = Walker {
            repo: self.repo,
            index: self.index,
            packer: self.packer,
            jobs: Vec::new(),
            failures: Vec::new(),
            skip_dir: self.repo_dir,
            skipped: Vec::new(),
            abort: self.abort,
            filter: &filter,
            attrs: Default::default(),
            rules: self.rules,
        };
        let keep_global = |name: &str, m: &fs::Metadata| {
            is_global(name, m) && !is_follower_work(name, m.file_type().is_dir())
        };
        let keep_all = |_: &str, _: &fs::Metadata| true;
        let keep: &(dyn Fn(&str, &fs::Metadata) -> bool + Sync) =
            if t.global { &keep_global } else { &keep_all };
        let skel = walker.walk(&t.name, &t.path, "", parent, keep);
        (skel, walker.jobs, walker.failures, walker.skipped)
    }
}

/// Reads every changed file into packs. A snapshot that will fail anyway
/// (a file could not be listed, without `--partial`) reads nothing.
fn read_files(
    listed: &Listed,
    repo: &Repo,
    packer: &Packer,
    opts: &SnapshotOptions,
    brackets: &Brackets,
) -> Result<Vec<JobResult>> {
    let jobs = &listed.jobs;
    let total: u64 = jobs.iter().map(|j| j.size).sum();
    let mode = if opts.progress {
        ProgressMode::Bar
    } else {
        ProgressMode::Quiet
    };
    let errors = listed.failures.len() as u64;
    let progress = Progress::files(mode, total, jobs.len() as u64, errors, "snapshot");
    let doomed = !opts.partial && !listed.failures.is_empty();
    let mut results = if doomed {
        jobs.iter().map(|_| JobResult::Skipped).collect()
    } else {
        let on_read = |job: usize, size: u64| {
            if let Some(s) = &opts.status {
                s.file_read(job, size);
            }
        };
        let stop = !opts.partial;
        let on_settled = |job: usize| brackets.job_settled(job);
        run_jobs(
            jobs,
            &repo.config.cutting(),
            packer,
            &progress,
            stop,
            &on_read,
            &on_settled,
        )
    };
    progress.finish();
    opts.abort.check("snapshot")?;
    let fatal = results
        .iter()
        .position(|r| matches!(r, JobResult::Fatal(_)));
    if let Some(i) = fatal {
        if let JobResult::Fatal(e) = std::mem::replace(&mut results[i], JobResult::Skipped) {
            return Err(*e);
        }
    }
    Ok(results)
}

/// Every target's trees, with what could not be read.
struct Built {
    indices: BTreeMap<String, IndexStats>,
    global_state: Option<IndexStats>,
    /// Every blob the trees reference.
    referenced: HashSet<Id>,
    failures: Vec<Failure>,
}

/// Builds each target's trees from its own results, in parallel (encoding,
/// hashing and compressing a tree per folder). Indices in `left_out` (their
/// `after` hook failed, so what was read may be inconsistent) get none.
fn build_trees(
    listed: Listed,
    mut results: Vec<JobResult>,
    packer: &Packer,
    left_out: &[Failure],
) -> Result<Built> {
    let Listed {
        walked,
        jobs,
        mut failures,
        ..
    } = listed;
    let mut per_target = Vec::with_capacity(walked.len());
    for w in walked.iter().rev() {
        per_target.push(results.split_off(w.jobs.start));
    }
    per_target.reverse();
    let kept = |w: &Walked| w.target.global || !left_out.iter().any(|f| f.index == w.target.name);
    let (walked, per_target): (Vec<Walked>, Vec<Vec<JobResult>>) = walked
        .into_iter()
        .zip(per_target)
        .filter(|(w, _)| kept(w))
        .unzip();
    let target_names: Vec<(String, bool)> = walked
        .iter()
        .map(|w| (w.target.name.clone(), w.target.global))
        .collect();
    let built: Vec<Result<BuiltTarget>> = walked
        .into_par_iter()
        .zip(per_target)
        .map(|(w, results)| build_target(w, results, &jobs, packer))
        .collect();
    let mut out = Built {
        indices: BTreeMap::new(),
        global_state: None,
        referenced: HashSet::new(),
        failures: Vec::new(),
    };
    for ((name, global), b) in target_names.into_iter().zip(built) {
        let (stats, target_failures, referenced) = b?;
        failures.extend(target_failures);
        out.referenced.extend(referenced);
        if global {
            out.global_state = Some(stats);
        } else {
            out.indices.insert(name, stats);
        }
    }
    failures.retain(|f| f.reason != ABORTED);
    out.failures = failures;
    Ok(out)
}

fn build_target(
    w: Walked,
    results: Vec<JobResult>,
    jobs: &[Job],
    packer: &Packer,
) -> Result<BuiltTarget> {
    let mut builder = TreeBuilder {
        results,
        jobs: &jobs[w.jobs.clone()],
        root: &w.target.path,
        packer,
        failures: Vec::new(),
        referenced: HashSet::new(),
    };
    let mut stats = IndexStats::default();
    stats.tree = Some(builder.finish(w.skel, &w.target.name, &mut stats)?);
    if !w.target.global {
        let root_meta = w.root_meta.as_ref();
        stats.root_mode = root_meta.map(|m| m.permissions().mode() & 0o7777);
        stats.root_mtime_ns = root_meta.map(|m| Stamp::of(m).mtime_ns);
        stats.root_attrs = w.root_attrs;
    }
    Ok((stats, builder.failures, builder.referenced))
}

/// The last step: the manifest, then the root that makes it visible.
struct Commit<'a> {
    repo: &'a Repo,
    inflight: &'a InFlight,
    referenced: &'a HashSet<Id>,
    /// This snapshot's own index file.
    own: &'a IndexFile,
    /// The index the snapshot deduplicated against.
    base: &'a RepoIndex,
}

impl Commit<'_> {
    fn run(&self, manifest: &Manifest, mut change: RootChange) -> Result<Root> {
        let writer = self.repo.writer();
        let hash = block_on(writer.put_manifest(manifest))?;
        if let RootChange::AddSnapshot { summary, .. } = &mut change {
            summary.manifest = Some(hash);
        }
        let committed = self.inflight.ensure_fresh().and_then(|()| {
            block_on(writer.commit_snapshot(&mut change, self.referenced, self.own, self.base))
        });
        // Only a definite refusal makes the manifest unreachable for sure;
        // after an ambiguous storage error the root may exist.
        if committed.as_ref().is_err_and(Error::is_refused_commit) {
            block_on(writer.forget_manifest(&manifest.uuid));
        }
        committed
    }
}
