//! `restore`: computes the core's restore plan from the snapshot's trees and
//! the target folder, then executes it.
//!
//! Execution order, so a refusal never leaves anything half-written and an
//! interruption never leaves a half-written file under its real name:
//! 1. every tree is loaded and the plan computed (names checked, conflicts
//!    found) before anything is written; conflicts refuse the restore;
//! 2. folders are created and each file is created as a sized temporary
//!    file next to its final place;
//! 3. the plan's pack ranges are read in parallel; every blob is decoded and
//!    its SHA-256 checked, then written at each of its places (positioned
//!    writes, any order; all-zero blobs are skipped, leaving holes);
//! 4. files are renamed into place with their mode and mtime, symlinks are
//!    created, folder modes and mtimes are set deepest first.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use rayon::prelude::*;
use serde::Serialize;

use crate::access::restore::{prepare, RestoreChoice};
use crate::core::chunker::ChunkerParams;
use crate::core::id::Id;
use crate::core::index::RepoIndex;
use crate::core::keys;
use crate::core::restore_plan::{Conflict, FileFacts, PlanSummary, RestorePlan, TargetState};
use crate::core::selection::{Rename, Selection};
use crate::native::error::{Error, Result};
use crate::native::progress::{Progress, ProgressMode};
use crate::native::repo::{decode_verified, Repo};
use crate::native::runtime::block_on;

/// Suffix of files being restored; renamed away when complete.
pub const PARTIAL_SUFFIX: &str = ".snapkeep-partial";

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub snapshot: String,
    pub target: PathBuf,
    pub selection: Selection,
    pub rename: Option<Rename>,
    pub include_global_state: bool,
    /// Restore into existing index folders, reusing what they hold and
    /// removing what the snapshot does not have.
    pub overwrite: bool,
    pub progress: ProgressMode,
    /// Parallel range reads (default: four per core, at least 8).
    pub concurrency: Option<usize>,
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
}

fn mtime(ns: i64) -> std::time::SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

/// What the target folder holds, for conflict detection.
fn target_state(target: &Path, index_targets: &[String]) -> Result<TargetState> {
    let mut state = TargetState::default();
    match fs::symlink_metadata(target) {
        Ok(m) if !m.is_dir() => {
            return Err(Error::Usage(format!(
                "target {} is not a directory",
                target.display()
            )))
        }
        Ok(_) => {
            for e in fs::read_dir(target).map_err(|e| Error::io(target, e))? {
                let e = e.map_err(|e| Error::io(target, e))?;
                state
                    .top_level
                    .insert(e.file_name().to_string_lossy().into_owned());
            }
        }
        Err(_) => return Ok(state),
    }
    for name in index_targets {
        let dir = target.join(name);
        if let Ok(m) = fs::symlink_metadata(&dir) {
            let occupied = !m.is_dir()
                || fs::read_dir(&dir)
                    .map_err(|e| Error::io(&dir, e))?
                    .next()
                    .is_some();
            if occupied {
                state.occupied_index_dirs.insert(name.clone());
            }
        }
    }
    Ok(state)
}

/// Written into the target when a restore starts and removed when it ends:
/// finding it means an interrupted run of the restore it describes.
pub const MARKER: &str = ".snapkeep-restore.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
struct Marker {
    snapshot_uuid: String,
    indices: Vec<(String, String)>,
    global_state: bool,
}

fn read_marker(target: &Path) -> Option<Marker> {
    serde_json::from_slice(&fs::read(target.join(MARKER)).ok()?).ok()
}

fn facts(m: &fs::Metadata) -> FileFacts {
    use std::os::unix::fs::MetadataExt;
    FileFacts {
        size: m.len(),
        mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        mode: m.mode() & 0o7777,
    }
}

/// What an interrupted run left: complete files, and which chunk
/// placements of partial files already hold the right bytes (each is read
/// back and its SHA-256 checked).
fn scan_interrupted(
    plan: &RestorePlan,
    index: &RepoIndex,
    target: &Path,
    state: &mut TargetState,
) -> Result<()> {
    for f in &plan.files {
        let dest = target.join(&f.path);
        if let Ok(m) = fs::symlink_metadata(&dest) {
            if m.is_file() {
                state.files.insert(f.path.clone(), facts(&m));
            }
            continue;
        }
        let tmp = partial_path(target, &f.path);
        let Ok(file) = fs::File::open(&tmp) else {
            continue;
        };
        state.partial_files.insert(f.path.clone());
        let mut offset = 0u64;
        let mut buf = Vec::new();
        for c in &f.chunks {
            let len = index.get(c).map_or(0, |l| l.raw_len as u64);
            buf.resize(len as usize, 0);
            if file.read_exact_at(&mut buf, offset).is_ok() && Id::of(&buf) == *c {
                state.written.insert((f.path.clone(), offset));
            }
            offset += len;
        }
    }
    Ok(())
}

/// Chunk ids of a file, with the repository's chunker: (id, offset).
fn chunk_file(path: &Path, params: &ChunkerParams) -> std::io::Result<Vec<(Id, u64)>> {
    use std::io::Read;
    let mut f = fs::File::open(path)?;
    let window = (params.max as usize * 2).max(1 << 20);
    let mut buf = vec![0u8; window];
    let (mut filled, mut base) = (0usize, 0u64);
    let mut out = Vec::new();
    loop {
        let n = f.read(&mut buf[filled..])?;
        filled += n;
        let eof = n == 0;
        if !eof && filled < buf.len() {
            continue;
        }
        let ranges = params.split(&buf[..filled], eof);
        for r in &ranges {
            out.push((Id::of(&buf[r.clone()]), base + r.start as u64));
        }
        let used = ranges.last().map_or(0, |r| r.end);
        buf.copy_within(used..filled, 0);
        filled -= used;
        base += used as u64;
        if eof {
            return Ok(out);
        }
    }
}

/// For --overwrite: what the target holds under the folders being restored.
/// Files that already match the snapshot are not read; others are chunked
/// so their blobs can be copied instead of fetched. Temporary files of an
/// interrupted run and the restore marker are this restore's own, not data.
fn scan_existing(
    plan: &RestorePlan,
    target: &Path,
    params: &ChunkerParams,
    state: &mut TargetState,
) -> Result<()> {
    let planned: HashMap<&str, &crate::core::restore_plan::PlannedFile> =
        plan.files.iter().map(|f| (f.path.as_str(), f)).collect();
    // A file where the snapshot has a folder is removed before blobs are
    // copied, so it cannot be a copy source.
    let planned_dirs: HashSet<&str> = plan.dirs.iter().map(|d| d.path.as_str()).collect();
    let mut roots: Vec<String> = plan.indices.iter().map(|(_, t)| t.clone()).collect();
    if plan.global_state {
        // Global state is what sits at the top level besides index folders:
        // files, symlinks, and folders named with a leading '_' or '.'.
        // Other index folders are never touched.
        let global: Vec<String> = state
            .top_level
            .iter()
            .filter(|n| !roots.contains(n) && n.as_str() != MARKER)
            .filter(|n| {
                let is_dir = fs::symlink_metadata(target.join(n)).is_ok_and(|m| m.is_dir());
                !is_dir || n.starts_with('_') || n.starts_with('.')
            })
            .cloned()
            .collect();
        roots.extend(global);
    }
    let mut stack: Vec<String> = roots;
    while let Some(rel) = stack.pop() {
        if rel.ends_with(PARTIAL_SUFFIX) {
            continue;
        }
        let path = target.join(&rel);
        let Ok(m) = fs::symlink_metadata(&path) else {
            continue;
        };
        state.existing_paths.push(rel.clone());
        if m.is_dir() {
            for e in fs::read_dir(&path).map_err(|e| Error::io(&path, e))? {
                let e = e.map_err(|e| Error::io(&path, e))?;
                stack.push(format!("{rel}/{}", e.file_name().to_string_lossy()));
            }
        } else if m.is_file() {
            let facts = facts(&m);
            state.files.insert(rel.clone(), facts);
            let in_place = planned
                .get(rel.as_str())
                .is_some_and(|f| facts.matches(f.size, f.mtime_ns, f.mode));
            if in_place || planned_dirs.contains(rel.as_str()) {
                continue;
            }
            for (id, offset) in chunk_file(&path, params).map_err(|e| Error::io(&path, e))? {
                state
                    .local_blobs
                    .entry(id)
                    .or_insert_with(|| (rel.clone(), offset));
            }
        }
    }
    Ok(())
}

/// Computes the plan for a restore without writing anything.
pub fn plan(repo: &Repo, opts: &RestoreOptions) -> Result<(RestorePlan, RepoIndex)> {
    let choice = RestoreChoice {
        snapshot: opts.snapshot.clone(),
        selection: opts.selection.clone(),
        rename: opts.rename.clone(),
        include_global_state: opts.include_global_state,
    };
    let prepared = block_on(prepare(repo.reader(), &choice))?;
    let targets: Vec<String> = prepared.renamed.iter().map(|(_, t)| t.clone()).collect();
    let mut target = target_state(&opts.target, &targets)?;
    let marker = Marker {
        snapshot_uuid: prepared.snapshot_uuid.clone(),
        indices: prepared.renamed.clone(),
        global_state: prepared.global_state.is_some(),
    };
    let mut plan = prepared.plan(target.clone())?;
    // An interrupted run of this same restore is continued, with or
    // without --overwrite.
    let resuming = read_marker(&opts.target).as_ref() == Some(&marker);
    if resuming || opts.overwrite {
        target.resuming = resuming;
        target.overwrite = opts.overwrite;
        if resuming {
            scan_interrupted(&plan, &prepared.index, &opts.target, &mut target)?;
        }
        if opts.overwrite {
            scan_existing(&plan, &opts.target, &repo.config.chunker, &mut target)?;
        }
        plan = prepared.plan(target)?;
    }
    plan.marker = serde_json::to_string(&marker).expect("markers serialize");
    Ok((plan, prepared.index))
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

fn partial_path(target: &Path, rel: &str) -> PathBuf {
    let p = target.join(rel);
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    p.with_file_name(format!(".{name}{PARTIAL_SUFFIX}"))
}

pub fn restore(repo: &Repo, opts: &RestoreOptions) -> Result<RestoreOutcome> {
    let (plan, _index) = plan(repo, opts)?;
    refuse(&plan, &opts.target)?;
    // Each read holds at most one range (8 MiB) and a decoded blob: from a
    // local repository the work is decoding, hashing and writing, one read
    // per core; object stores need more requests in flight to hide their
    // latency.
    let threads = opts.concurrency.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        if repo.store.location().starts_with("file://") {
            cores.max(2)
        } else {
            (4 * cores).max(8)
        }
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {threads} restore threads: {e}")))?;
    pool.install(|| execute(repo, &plan, &opts.target, opts.progress))?;
    Ok(RestoreOutcome {
        snapshot: opts.snapshot.clone(),
        indices: plan.indices.clone(),
        global_state: plan.global_state,
        files: plan.summary.files,
        dirs: plan.summary.dirs,
        symlinks: plan.summary.symlinks,
        bytes: plan.summary.bytes,
        plan: plan.summary.clone(),
    })
}

/// Executes a conflict-free plan into `target`.
pub fn execute(
    repo: &Repo,
    plan: &RestorePlan,
    target: &Path,
    progress: ProgressMode,
) -> Result<()> {
    fs::create_dir_all(target).map_err(|e| Error::io(target, e))?;
    // The marker goes first: whatever is written after it is recognised by a
    // rerun as this restore's own, interrupted work.
    let marker = target.join(MARKER);
    fs::write(&marker, &plan.marker).map_err(|e| Error::io(&marker, e))?;
    for d in &plan.dirs {
        let dir = target.join(&d.path);
        // With --overwrite a file or symlink may stand where a folder goes;
        // it is replaced, never followed.
        if fs::symlink_metadata(&dir).is_ok_and(|m| !m.is_dir()) {
            fs::remove_file(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        match fs::create_dir(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(Error::io(&dir, e))
            }
            _ => {}
        }
    }
    let temps: Vec<PathBuf> = plan
        .files
        .iter()
        .map(|f| partial_path(target, &f.path))
        .collect();
    // A file written by a single placement (most files: one chunk) is
    // created by that write, saving an open, a truncate and a close.
    let mut placements = vec![0u32; plan.files.len()];
    let all_places = plan
        .reads
        .iter()
        .flat_map(|r| r.blobs.iter().flat_map(|b| &b.places));
    for p in all_places.chain(plan.local_copies.iter().flat_map(|c| &c.places)) {
        placements[p.file as usize] += 1;
    }
    let created_by_write: Vec<bool> = plan
        .files
        .iter()
        .zip(&placements)
        .map(|(f, &n)| n == 1 && !f.resume && !f.done)
        .collect();
    plan.files
        .par_iter()
        .zip(&temps)
        .zip(&created_by_write)
        .filter(|((f, _), &later)| !f.done && !later)
        .try_for_each(|((f, tmp), _)| -> Result<()> {
            // A temporary file the plan does not resume (left by a run the
            // marker no longer describes) starts again from nothing.
            let file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(!f.resume)
                .open(tmp)
                .map_err(|e| Error::io(tmp, e))?;
            file.set_len(f.size).map_err(|e| Error::io(tmp, e))
        })?;

    // What this run writes: everything but the bytes already in place.
    let to_write = plan.summary.bytes - plan.summary.bytes_in_place;
    let bar = Progress::with_mode(progress, to_write, "restore");
    plan.reads.par_iter().try_for_each(|r| -> Result<()> {
        let bytes = block_on(
            repo.store
                .get(&keys::pack(&r.pack), Some(r.offset..r.offset + r.length)),
        )?;
        for b in &r.blobs {
            let at = (b.entry.offset - r.offset) as usize;
            let span = at
                .checked_add(b.entry.stored_len as usize)
                .map(|end| at..end);
            let stored = span
                .and_then(|s| bytes.get(s))
                .ok_or_else(|| Error::Integrity {
                    id: b.id,
                    detail: format!("pack {} is shorter than its index says", r.pack.short()),
                })?;
            let plain = decode_verified(&b.entry, stored)?;
            // Zero runs stay holes: the file was sized with set_len.
            let zero = plain.iter().all(|&x| x == 0);
            for place in &b.places {
                let file = place.file as usize;
                let tmp = &temps[file];
                if created_by_write[file] {
                    let f = fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(tmp)
                        .map_err(|e| Error::io(tmp, e))?;
                    if zero {
                        f.set_len(plan.files[file].size)
                    } else {
                        f.write_all_at(&plain, place.offset)
                    }
                    .map_err(|e| Error::io(tmp, e))?;
                } else if !zero {
                    let f = fs::OpenOptions::new()
                        .write(true)
                        .open(tmp)
                        .map_err(|e| Error::io(tmp, e))?;
                    f.write_all_at(&plain, place.offset)
                        .map_err(|e| Error::io(tmp, e))?;
                }
                bar.inc(plain.len() as u64);
            }
        }
        Ok(())
    })?;
    // Blobs already in the target, copied (and checked again: the target
    // may have changed since it was scanned).
    plan.local_copies
        .par_iter()
        .try_for_each(|c| -> Result<()> {
            let src = target.join(&c.from);
            let mut data = vec![0u8; c.length as usize];
            let f = fs::File::open(&src).map_err(|e| Error::io(&src, e))?;
            f.read_exact_at(&mut data, c.from_offset)
                .map_err(|e| Error::io(&src, e))?;
            if Id::of(&data) != c.id {
                return Err(Error::Usage(format!(
                    "{} changed during the restore; run it again",
                    src.display()
                )));
            }
            for place in &c.places {
                let file = place.file as usize;
                let tmp = &temps[file];
                let out = fs::OpenOptions::new()
                    .write(true)
                    .create(created_by_write[file])
                    .truncate(created_by_write[file])
                    .open(tmp)
                    .map_err(|e| Error::io(tmp, e))?;
                out.write_all_at(&data, place.offset)
                    .map_err(|e| Error::io(tmp, e))?;
                bar.inc(data.len() as u64);
            }
            Ok(())
        })?;
    bar.finish();

    plan.files
        .par_iter()
        .zip(&temps)
        .filter(|(f, _)| !f.done)
        .try_for_each(|(f, tmp)| -> Result<()> {
            let dest = target.join(&f.path);
            fs::set_permissions(tmp, fs::Permissions::from_mode(f.mode))
                .map_err(|e| Error::io(tmp, e))?;
            // Both times in one path-based call (setting only the mtime
            // opens the file to keep its atime); atime = mtime, as for
            // symlinks.
            let t = filetime::FileTime::from_system_time(mtime(f.mtime_ns));
            filetime::set_file_times(tmp, t, t).map_err(|e| Error::io(tmp, e))?;
            if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) {
                fs::remove_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
            }
            fs::rename(tmp, &dest).map_err(|e| Error::io(&dest, e))
        })?;
    // What the snapshot lacks goes after the copies (it may have been a copy
    // source) and before folder modes are set (a read-only folder could not
    // be emptied, and removals would change its mtime).
    for rel in &plan.deletes {
        let path = target.join(rel);
        let removed = match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
            Err(_) => Ok(()),
        };
        removed.map_err(|e| Error::io(&path, e))?;
    }
    for l in &plan.symlinks {
        let path = target.join(&l.path);
        // Left by an interrupted run of this restore (the plan was checked).
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?,
            Ok(_) => fs::remove_file(&path).map_err(|e| Error::io(&path, e))?,
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&l.target, &path).map_err(|e| Error::io(&path, e))?;
        let t = filetime::FileTime::from_system_time(mtime(l.mtime_ns));
        filetime::set_symlink_file_times(&path, t, t).map_err(|e| Error::io(&path, e))?;
    }
    let mut seen = HashSet::new();
    for d in plan.dirs.iter().rev() {
        if let (Some(mode), Some(mtime_ns)) = (d.mode, d.mtime_ns) {
            if !seen.insert(&d.path) {
                continue;
            }
            let dir = target.join(&d.path);
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(&dir, e))?;
            let t = filetime::FileTime::from_system_time(mtime(mtime_ns));
            filetime::set_file_times(&dir, t, t).map_err(|e| Error::io(&dir, e))?;
        }
    }
    fs::remove_file(&marker).map_err(|e| Error::io(&marker, e))?;
    Ok(())
}
