//! `restore`: computes the core's restore plan from the snapshot's trees and
//! the target folder, then executes it (see `execute` for the order of
//! work and `staging` for the restore's own files).
//!
//! Every file restore creates is created relative to a directory handle
//! opened without following links (`crate::native::dirfd`): nothing a
//! restore writes can land outside its target, whatever links the target
//! or the snapshot holds.

mod attrs;
mod cached;
mod execute;
mod scan;
mod staging;
pub mod status;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::core::es::recovery::RecoveryStage;
use crate::core::format::id::IdSet;
use crate::core::format::index::RepoIndex;
use crate::core::plan::read::DEFAULT_MAX_RANGE;
use crate::core::plan::restore::{Conflict, PlanSummary, RestorePlan};
use crate::core::policy::include::PathFilter;
use crate::core::policy::selection::{Rename, Selection};
use crate::native::dirfd::DirFd;
use crate::native::error::{Error, Result};
use crate::native::job::Abort;
use crate::native::lazy::CacheFolder;
use crate::native::progress::ProgressMode;
use crate::native::repo::Repo;
use crate::native::runtime::block_on;
use crate::repo::restore::{prepare, Prepared, RestoreChoice};

use cached::Coming;
pub use cached::HeldChunks;
pub use scan::{chunk_spans, Walked};
pub use staging::STAGING_PREFIX;
use status::RestoreProgress;

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub snapshot: String,
    pub target: PathBuf,
    pub selection: Selection,
    pub rename: Option<Rename>,
    pub include_global_state: bool,
    /// `--include`: restore only the paths this selects, with the folders
    /// leading to them.
    pub include: Option<PathFilter>,
    /// Restore into existing index folders, reusing what they hold and
    /// removing what the snapshot does not have.
    pub overwrite: bool,
    /// With `overwrite`: large files that mostly hold the snapshot's chunks
    /// are updated in place instead of written anew (see
    /// [`crate::core::plan::restore::IN_PLACE_MIN_BYTES`]). Off for a
    /// follower's apply, whose stage shares its files with the live folder.
    pub update_in_place: bool,
    pub progress: ProgressMode,
    /// Parallel range reads (default: four per core, at least 8).
    pub concurrency: Option<usize>,
    /// Live status for observers on other threads (the node's `_recovery`).
    pub status: Option<Arc<RestoreProgress>>,
    /// A chunk cache folder (a mount's): chunks it holds are read from it
    /// (each checked against its id) instead of fetched; a missing or
    /// corrupt entry is fetched from the repository.
    pub cache: Option<PathBuf>,
    /// Stops the restore between pack reads: it then fails with
    /// `Error::Aborted`, leaving its staging folder for a later run of the
    /// same restore to resume.
    pub abort: Abort,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreOutcome {
    pub snapshot: String,
    /// (index in the snapshot, folder it was restored as).
    pub indices: Vec<(String, String)>,
    pub global_state: bool,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    pub plan: PlanSummary,
    /// What was not restored as recorded, and why (sockets, devices
    /// without the right to create them, extended attributes the target
    /// refused): the restore went on without them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Paths the snapshot does not have, removed from the target
    /// (`--overwrite`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<String>,
    /// What the chunk cache gave (with a cache).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheUse>,
}

/// What a restore took from a chunk cache.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CacheUse {
    /// The cache folder (none for chunks held in memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Entries the folder held when the restore planned.
    pub entries: u64,
    /// Chunks read from it and found right.
    pub chunks: u64,
    /// Plain bytes written from them (a chunk at two places counts twice).
    pub bytes: u64,
    /// Chunks planned from the cache but missing or corrupt there, fetched
    /// from the repository instead.
    pub refetched: u64,
    /// Stored bytes read from the repository for those.
    pub refetched_bytes: u64,
}

/// A plan and what executing it needs besides.
pub struct Planned {
    pub plan: RestorePlan,
    pub index: RepoIndex,
    marker: staging::Marker,
    /// Top-level names the restore writes (never a staging folder).
    taken: HashSet<String>,
    /// The staging folder of the interrupted run this one continues.
    resumed: Option<String>,
    /// The chunk cache the plan takes chunks from.
    cache: Option<CacheFolder>,
    /// Chunks the plan takes from a caller still getting them.
    coming: Option<Coming>,
    /// What the walk of an overwritten target found (or was given).
    pub walked: Option<Walked>,
}

/// Top-level names a restore of `prepared` writes into its target.
fn top_level_names(prepared: &Prepared) -> HashSet<String> {
    let mut names: HashSet<String> = prepared.renamed.iter().map(|(_, t)| t.clone()).collect();
    if let Some(tree) = prepared.global_state.and_then(|g| prepared.trees.get(&g)) {
        names.extend(tree.nodes.iter().map(|n| n.name.clone()));
    }
    names
}

/// Computes the plan for a restore without writing anything.
pub fn plan(repo: &Repo, opts: &RestoreOptions) -> Result<Planned> {
    plan_over(repo, opts, None)
}

/// [`plan`], taking what the target holds from `walked` (an earlier walk
/// of the same files, see [`scan::Walked`]) instead of walking it again.
pub fn plan_over(repo: &Repo, opts: &RestoreOptions, walked: Option<Walked>) -> Result<Planned> {
    let choice = RestoreChoice {
        snapshot: opts.snapshot.clone(),
        selection: opts.selection.clone(),
        rename: opts.rename.clone(),
        include_global_state: opts.include_global_state,
        include: opts.include.clone(),
    };
    let prepared = block_on(prepare(repo.reader(), &choice))?;
    let targets: Vec<String> = prepared.renamed.iter().map(|(_, t)| t.clone()).collect();
    crate::native::guard::check_restore_target(repo, &opts.target, &targets)?;
    let mut target = scan::target_state(&opts.target, &targets)?;
    let cache = match &opts.cache {
        Some(dir) => Some(CacheFolder::open(dir, repo.reader().sealing().ids())?),
        None => None,
    };
    if let Some(c) = &cache {
        target.cached_blobs = c.ids().clone();
    }
    let marker = staging::Marker {
        snapshot_uuid: prepared.snapshot_uuid.clone(),
        indices: prepared.renamed.clone(),
        global_state: prepared.global_state.is_some(),
        include: opts
            .include
            .as_ref()
            .map_or_else(Vec::new, |f| f.patterns().to_vec()),
    };
    let taken = top_level_names(&prepared);
    let mut plan = prepared.plan(target.clone())?;
    let dir = if opts.target.is_dir() {
        Some(DirFd::open(&opts.target).map_err(|e| Error::io(&opts.target, e))?)
    } else {
        None
    };
    // An interrupted run of this same restore is continued, with or
    // without --overwrite.
    let resumed = dir.as_ref().and_then(|d| staging::find(d, &marker, &taken));
    let mut walked_now = None;
    if let (Some(dir), true) = (&dir, resumed.is_some() || opts.overwrite) {
        let ids = repo.sealing().ids();
        target.resuming = resumed.is_some();
        target.overwrite = opts.overwrite;
        target.update_in_place = opts.overwrite && opts.update_in_place;
        if let Some(s) = &resumed {
            scan::scan_interrupted(&plan, &prepared.index, &ids, dir, s, &mut target);
        }
        if opts.overwrite {
            let found = match walked {
                Some(w) => w,
                None => scan::walk_existing(&plan, dir, &opts.target, &taken, &target)?,
            };
            let cutting = repo.config.cutting();
            let chunking = (&cutting, &ids);
            scan::scan_existing(&plan, &found, dir, &opts.target, chunking, &mut target)?;
            walked_now = Some(found);
        }
        // The first plan goes before the second is made: two plans of a
        // large snapshot at once were a restore's peak memory.
        drop(std::mem::take(&mut plan));
        plan = prepared.plan(target)?;
    }
    plan.marker = serde_json::to_string(&marker).expect("markers serialize");
    Ok(Planned {
        plan,
        index: prepared.index,
        marker,
        taken,
        resumed: resumed.map(|s| s.name),
        cache,
        coming: None,
        walked: walked_now,
    })
}

impl Planned {
    /// Takes chunks `ids`, which a caller is still getting after this plan
    /// was made (each checked against its id) and sends on `held` in
    /// batches, instead of fetching them; any it does not send are fetched
    /// once its senders are gone. The restore writes them as they come,
    /// beside everything else. The reads of the rest bridge no gap: the
    /// gaps are then mostly the chunks expected (they lay among the
    /// fetched ones), which a bridged gap would fetch after all. A caller
    /// whose restore has returned calls [`Planned::stop_expecting`], so
    /// that its senders fail instead of waiting on a bounded channel
    /// nobody reads.
    pub fn expect_held(&mut self, ids: &IdSet, held: Receiver<HeldChunks>) -> Result<()> {
        self.plan
            .take_cached(ids, &self.index, 0, DEFAULT_MAX_RANGE)
            .map_err(|e| Error::Integrity {
                id: e.0,
                detail: "a planned chunk the index does not know".into(),
            })?;
        self.coming = Some(Coming(Mutex::new(held)));
        Ok(())
    }

    /// Drops the receiver [`Planned::expect_held`] was given.
    pub fn stop_expecting(&mut self) {
        self.coming = None;
    }
}

fn refuse(plan: &RestorePlan, target: &Path) -> Result<()> {
    match plan.conflicts.first() {
        None => Ok(()),
        Some(Conflict::TargetNotEmpty { index, path }) => Err(Error::TargetNotEmpty {
            index: index.clone(),
            path: target.join(path),
        }),
        Some(Conflict::GlobalStateExists { path }) => Err(Error::GlobalStateConflict {
            path: target.join(path),
        }),
    }
}

pub fn restore(repo: &Repo, opts: &RestoreOptions) -> Result<RestoreOutcome> {
    with_status(opts, || run(repo, &plan(repo, opts)?, opts))
}

/// [`restore`] with `planned`, made by [`plan`] with the same options
/// (and perhaps expecting chunks since: [`Planned::expect_held`]).
pub fn restore_planned(
    repo: &Repo,
    planned: &Planned,
    opts: &RestoreOptions,
) -> Result<RestoreOutcome> {
    with_status(opts, || run(repo, planned, opts))
}

fn with_status(
    opts: &RestoreOptions,
    f: impl FnOnce() -> Result<RestoreOutcome>,
) -> Result<RestoreOutcome> {
    if let Some(s) = &opts.status {
        s.begin(&opts.snapshot);
    }
    let out = f();
    if let Some(s) = &opts.status {
        if out.is_ok() {
            s.set_stage(RecoveryStage::Done);
        }
        s.stop();
    }
    out
}

fn run(repo: &Repo, planned: &Planned, opts: &RestoreOptions) -> Result<RestoreOutcome> {
    let plan = &planned.plan;
    refuse(plan, &opts.target)?;
    opts.abort.check("restore")?;
    if let Some(s) = &opts.status {
        s.planned(plan);
    }
    // Each read holds at most one range (8 MiB) and a decoded blob: from a
    // local repository the work is decoding, hashing and writing, one read
    // per core; object stores need more requests in flight to hide their
    // latency.
    let threads = opts.concurrency.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        if repo.store.capabilities().latency == crate::storage::Latency::Local {
            cores.max(2)
        } else {
            (4 * cores).max(8)
        }
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::ThreadPool {
            threads,
            detail: e.to_string(),
        })?;
    let (notes, cache) = pool.install(|| execute::execute(repo, planned, opts))?;
    Ok(RestoreOutcome {
        snapshot: opts.snapshot.clone(),
        indices: plan.indices.clone(),
        global_state: plan.global_state,
        files: plan.summary.files,
        dirs: plan.summary.dirs,
        symlinks: plan.summary.symlinks,
        bytes: plan.summary.bytes,
        plan: plan.summary.clone(),
        notes,
        deleted: plan.deletes.clone(),
        cache,
    })
}
