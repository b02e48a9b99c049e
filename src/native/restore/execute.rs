//! Executes a conflict-free restore plan.
//!
//! Order, so a refusal never leaves anything half-written and an
//! interruption never leaves a half-written file under its real name:
//! 1. the staging folder (with its marker) is created, or the interrupted
//!    run's is reused: whatever is written after it is recognised by a
//!    rerun as this restore's own work;
//! 2. folders are created (a file or link where a folder goes is removed,
//!    never followed), and each file is created as a new, sized temporary
//!    file in the staging folder (`O_CREAT|O_EXCL|O_NOFOLLOW`);
//! 3. the plan's pack ranges are read in parallel; every blob is decoded
//!    and its SHA-256 checked, then written at each of its places
//!    (positioned writes, any order; all-zero blobs are skipped, leaving
//!    holes); blobs a chunk cache holds are read from it first (checked
//!    against their ids; a missing or corrupt one is fetched instead);
//!    blobs the target already holds are copied (checked again); a file
//!    the plan updates in place is written where it stands instead, only
//!    its changed chunks, once checked to be as the plan read it;
//! 4. each temporary gets its mode and mtime on its handle and is renamed
//!    from the staging folder into its folder, opened without following
//!    links: a file written by one placement as soon as it is complete
//!    (by one mover thread, while the fetch goes on), unless the target's
//!    files are copy sources; the others after the fetch. Then entries
//!    the snapshot lacks are removed, symlinks created,
//!    folder modes and mtimes set deepest first, the staging folder
//!    removed. Owners and extended attributes are set with modes (see
//!    `attrs`); hard links are linked and fifos and devices created after
//!    the files are in place.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Mutex;

use bytes::Bytes;
use rayon::prelude::*;

use crate::core::es::recovery::RecoveryStage;
use crate::core::format::id::{Id, IdMap, IdSet};
use crate::core::format::keys;
use crate::core::plan::read::{DEFAULT_MAX_GAP, DEFAULT_MAX_RANGE};
use crate::core::plan::restore::{
    reads_for, CachedCopy, FileFacts, LocalCopy, PlannedFile, PlannedRead, RestorePlan,
};
use crate::native::dirfd::{split_parent, DirFd};
use crate::native::error::{Error, Result};
use crate::native::job::Abort;
use crate::native::lazy::CacheFolder;
use crate::native::progress::{note, Progress, ProgressMode};
use crate::native::repo::Repo;
use crate::native::restore::attrs::{self, write_leaving_holes, Finisher};
use crate::native::restore::cached::Coming;
use crate::native::restore::staging::{self, temp_name, Staging};
use crate::native::restore::status::RestoreProgress;
use crate::native::restore::{CacheUse, Planned, RestoreOptions};
use crate::native::runtime::block_on;

/// Where each planned file is written while the restore runs.
struct Temps<'a> {
    staging: &'a Staging,
    /// The target: files updated in place are written there.
    root: &'a DirFd,
    /// The plan's files: a temporary's name is derived from its path when
    /// needed (50,000 names held at once were 5 MB of a restore's peak).
    files: &'a [PlannedFile],
    /// Files written by a single placement (most files: one chunk): created
    /// by that write, which also sets their metadata, saving an open, a
    /// truncate and a close.
    created_by_write: Vec<bool>,
    target: &'a Path,
    fin: &'a Finisher,
    /// Where files written by a single placement are sent once complete,
    /// to be moved into place while others are still fetched; `None` when
    /// they wait for the end (a target whose files are copy sources).
    complete: Mutex<Option<Sender<usize>>>,
    /// Set when the mover failed: every write then stops the fetch.
    mover_failed: AtomicBool,
}

/// Closes the mover's channel when dropped, on the way out of the fetch or
/// of a panic in it, so that the mover ends and can be joined.
struct Closing<'a>(&'a Mutex<Option<Sender<usize>>>);

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

impl Temps<'_> {
    /// The name of file `file`'s temporary in the staging folder.
    fn name(&self, file: usize) -> String {
        temp_name(&self.files[file].path)
    }

    fn err(&self, file: usize, e: std::io::Error) -> Error {
        let f = &self.files[file];
        if f.update.is_some() {
            return Error::io(self.target.join(&f.path), e);
        }
        Error::io(
            self.target.join(&self.staging.name).join(self.name(file)),
            e,
        )
    }

    /// Opens file `file` for writing: its temporary, or the file itself
    /// when it is updated in place.
    fn open_for_write(&self, file: usize) -> Result<File> {
        let f = &self.files[file];
        if f.update.is_some() {
            let (parent, name) = split_parent(&f.path);
            self.root
                .dir(parent)
                .and_then(|dir| dir.open_existing_for_write(name))
        } else {
            self.staging.dir.open_existing_for_write(&self.name(file))
        }
        .map_err(|e| self.err(file, e))
    }

    /// Writes `data` at `offset` of file `file` (of `plan`). `last` keeps
    /// the file last opened for writing by this caller: a pack range's
    /// blobs mostly go to one file, which is then opened once, not once
    /// per blob.
    fn write(
        &self,
        plan: &RestorePlan,
        file: usize,
        data: &[u8],
        offset: u64,
        last: &mut Option<(usize, File)>,
    ) -> Result<()> {
        if self.mover_failed.load(Ordering::Relaxed) {
            let stopped = std::io::Error::other("moving files into place failed");
            return Err(self.err(file, stopped));
        }
        let f = &plan.files[file];
        let zero = data.iter().all(|&x| x == 0);
        if self.created_by_write[file] {
            let out = self
                .staging
                .dir
                .replace_with_new_with_mode(&self.name(file), self.fin.create_mode(f.mode))
                .map_err(|e| self.err(file, e))?;
            // Zero runs stay holes, and so do zero blocks of sparse files.
            if zero {
                out.set_len(f.size)
            } else if f.sparse {
                out.set_len(f.size)
                    .and_then(|()| write_leaving_holes(&out, data, offset))
            } else {
                out.write_all_at(data, offset)
            }
            .and_then(|()| {
                let attrs = f.attrs.as_deref();
                self.fin
                    .apply_created(&out, &f.path, f.mode, f.mtime_ns, attrs)
            })
            .map_err(|e| self.err(file, e))?;
            match self.complete.lock().expect("complete lock").as_ref() {
                // The mover stops only on an error, which it reports when
                // joined; the fetch stops too.
                Some(tx) if tx.send(file).is_err() => {
                    let stopped = std::io::Error::other("moving files into place failed");
                    Err(self.err(file, stopped))
                }
                _ => Ok(()),
            }
        } else if zero && f.update.is_none() {
            // The file was sized with set_len: the run is already a hole.
            Ok(())
        } else {
            let out = match last {
                Some((open, out)) if *open == file => out,
                _ => &last.insert((file, self.open_for_write(file)?)).1,
            };
            if f.update.is_some() {
                // What stands there is the old file's, holes included.
                attrs::write_over(out, data, offset, zero)
            } else if f.sparse {
                write_leaving_holes(out, data, offset)
            } else {
                out.write_all_at(data, offset)
            }
            .map_err(|e| self.err(file, e))
        }
    }
}

fn staging_for(planned: &Planned, target: &DirFd, path: &Path) -> Result<Staging> {
    if let Some(name) = &planned.resumed {
        if let Ok(dir) = target.child_dir(name) {
            return Ok(Staging {
                name: name.clone(),
                dir,
            });
        }
    }
    let token = || uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    staging::create(target, &planned.marker, &planned.taken, token).map_err(|e| Error::io(path, e))
}

/// Says that this run continues an interrupted one, and how far that got.
fn note_resume(plan: &RestorePlan, mode: ProgressMode) {
    let s = &plan.summary;
    let text = format!(
        "resuming: {} of {} files already in place ({} of {} bytes)",
        s.files_unchanged, s.files, s.bytes_in_place, s.bytes
    );
    let event = serde_json::json!({
        "event": "resuming",
        "operation": "restore",
        "files_in_place": s.files_unchanged,
        "files_total": s.files,
        "bytes_in_place": s.bytes_in_place,
        "bytes_total": s.bytes,
    });
    note(mode, &text, event);
}

/// Who hears of the fetch's progress, and what may stop it.
struct Watch<'a> {
    bar: Progress,
    status: Option<&'a RestoreProgress>,
    abort: &'a Abort,
}

impl Watch<'_> {
    fn wrote(&self, file: usize, bytes: u64) {
        self.bar.inc(bytes);
        if let Some(s) = self.status {
            s.fetched(file, bytes);
        }
    }
}

/// Executes a conflict-free plan into `opts.target`; returns its notes
/// (what it could not restore as recorded, and went on without) and what
/// the chunk cache gave.
pub fn execute(
    repo: &Repo,
    planned: &Planned,
    opts: &RestoreOptions,
) -> Result<(Vec<String>, Option<CacheUse>)> {
    let (target, plan) = (opts.target.as_path(), &planned.plan);
    std::fs::create_dir_all(target).map_err(|e| Error::io(target, e))?;
    let root = DirFd::open(target).map_err(|e| Error::io(target, e))?;
    let staging = staging_for(planned, &root, target)?;
    if planned.resumed.is_some() {
        note_resume(plan, opts.progress);
    }
    create_dirs(plan, &root, target)?;
    let fin = Finisher::new(&staging.dir);
    let (complete, completed) = std::sync::mpsc::channel();
    // Files of the target may be copy sources until the copies are done:
    // then nothing is moved over them before.
    let early = plan.local_copies.is_empty().then_some(complete);
    let temps = create_temps(plan, &staging, &root, target, &fin, early)?;

    // What this run writes: everything but the bytes already in place.
    let to_write = plan.summary.bytes - plan.summary.bytes_in_place;
    let watch = Watch {
        bar: Progress::with_mode(opts.progress, to_write, "restore"),
        status: opts.status.as_deref(),
        abort: &opts.abort,
    };
    let cache_use = match &planned.cache {
        Some(cache) => Some(from_cache(repo, planned, cache, &temps, &watch)?),
        None => None,
    };
    let (done, came, moved) = std::thread::scope(|s| {
        let moving = s.spawn(|| {
            let moved = move_when_complete(completed, plan, &root, &temps, target);
            if moved.is_err() {
                temps.mover_failed.store(true, Ordering::Relaxed);
            }
            moved
        });
        let (done, came) = {
            // Every write is over when this goes: the mover ends with the
            // channel.
            let _closing = Closing(&temps.complete);
            let writing = planned
                .coming
                .as_ref()
                .map(|c| s.spawn(|| write_coming(repo, planned, c, &temps, &watch)));
            let done = fetch(repo, planned, &plan.reads, &temps, &watch)
                .and_then(|()| copy_local(repo, planned, &root, &temps, &watch.bar));
            let came = writing.map(|w| w.join().expect("the thread writing chunks panicked"));
            (done, came)
        };
        let moved = moving.join().expect("the thread moving files panicked");
        (done, came, moved)
    });
    // A failed move stops the fetch: its error is the cause.
    let moved = moved?;
    done?;
    let cache_use = match came {
        Some(came) => Some(came?),
        None => cache_use,
    };
    watch.bar.finish();
    opts.abort.check("restore")?;
    if let Some(s) = watch.status {
        s.set_stage(RecoveryStage::Finalize);
    }

    move_into_place(plan, &root, &temps, &moved, target)?;
    finish_unchanged(plan, &root, target, &fin)?;
    // What the snapshot lacks goes after the copies (it may have been a copy
    // source) and before folder modes are set (a read-only folder could not
    // be emptied, and removals would change its mtime).
    for rel in &plan.deletes {
        let (parent, name) = split_parent(rel);
        match root.dir(parent) {
            Ok(dir) => dir
                .remove(name)
                .map_err(|e| Error::io(target.join(rel), e))?,
            // Its folder was removed already, or replaced by a link: the
            // entry is gone from the target either way.
            Err(_) => continue,
        }
    }
    attrs::link_hard_links(plan, &root, target)?;
    attrs::create_specials(plan, &root, target, &fin)?;
    for l in &plan.symlinks {
        let (parent, name) = split_parent(&l.path);
        let err = |e| Error::io(target.join(&l.path), e);
        let dir = root.dir(parent).map_err(err)?;
        dir.symlink(name, &l.target, l.mtime_ns).map_err(err)?;
        fin.apply_at(&dir, name, &l.path, l.attrs.as_deref());
    }
    set_dir_modes(plan, &root, target, &fin)?;
    root.remove(&staging.name)
        .map_err(|e| Error::io(target.join(&staging.name), e))?;
    Ok((fin.into_notes(), cache_use))
}

/// Creates every planned folder, parents first.
fn create_dirs(plan: &RestorePlan, root: &DirFd, target: &Path) -> Result<()> {
    for d in &plan.dirs {
        let (parent, name) = split_parent(&d.path);
        // Private until its recorded mode is set at the end; a folder
        // without one gets the usual default.
        let mode = if d.mode.is_some() { 0o700 } else { 0o777 };
        root.dir(parent)
            .and_then(|dir| dir.ensure_dir(name, mode))
            .map_err(|e| Error::io(target.join(&d.path), e))?;
    }
    Ok(())
}

/// Creates the sized temporary files of files written by more than one
/// placement; continues those the plan resumes.
fn create_temps<'a>(
    plan: &'a RestorePlan,
    staging: &'a Staging,
    root: &'a DirFd,
    target: &'a Path,
    fin: &'a Finisher,
    complete: Option<Sender<usize>>,
) -> Result<Temps<'a>> {
    let mut placements = vec![0u32; plan.files.len()];
    let all_places = plan
        .reads
        .iter()
        .flat_map(|r| r.blobs.iter().flat_map(|b| &b.places));
    let copied = plan.local_copies.iter().flat_map(|c| &c.places);
    let cached = plan.cached_copies.iter().flat_map(|c| &c.places);
    for p in all_places.chain(copied).chain(cached) {
        placements[p.file as usize] += 1;
    }
    let temps = Temps {
        staging,
        root,
        files: &plan.files,
        created_by_write: plan
            .files
            .iter()
            .zip(&placements)
            .map(|(f, &n)| n == 1 && !f.resume && !f.done && f.update.is_none())
            .collect(),
        target,
        fin,
        complete: Mutex::new(complete),
        mover_failed: AtomicBool::new(false),
    };
    (0..plan.files.len())
        .into_par_iter()
        // A resumed temporary with nothing left to write is complete (and
        // may have its final, read-only mode already).
        .filter(|&i| !plan.files[i].done && !temps.created_by_write[i])
        .filter(|&i| !(plan.files[i].resume && placements[i] == 0))
        .try_for_each(|i| -> Result<()> {
            let f = &plan.files[i];
            if let Some(found) = &f.update {
                return still_as_found(root, &f.path, found, target);
            }
            let name = temps.name(i);
            let file = if f.resume {
                staging.dir.open_existing_for_write(&name)
            } else {
                staging.dir.replace_with_new(&name)
            };
            file.and_then(|file| file.set_len(f.size))
                .map_err(|e| temps.err(i, e))
        })?;
    Ok(temps)
}

/// Writes the blobs the plan takes from the chunk cache, each checked
/// against its id; those missing or corrupt there are fetched from the
/// repository instead.
fn from_cache(
    repo: &Repo,
    planned: &Planned,
    cache: &CacheFolder,
    temps: &Temps,
    watch: &Watch,
) -> Result<CacheUse> {
    let plan = &planned.plan;
    let failed: Vec<&CachedCopy> = plan
        .cached_copies
        .par_iter()
        .map(|c| -> Result<Option<&CachedCopy>> {
            watch.abort.check("restore")?;
            let Some(plain) = cache.read(&c.id) else {
                return Ok(Some(c));
            };
            let mut last = None;
            for place in &c.places {
                temps.write(plan, place.file as usize, &plain, place.offset, &mut last)?;
                watch.wrote(place.file as usize, plain.len() as u64);
            }
            Ok(None)
        })
        .filter_map(|r| r.transpose())
        .collect::<Result<_>>()?;
    let refetched_bytes = fetch_missing(repo, planned, &failed, temps, watch)?;
    let failed_bytes: u64 = failed
        .iter()
        .map(|c| c.length * c.places.len() as u64)
        .sum();
    Ok(CacheUse {
        dir: Some(cache.dir().to_path_buf()),
        entries: cache.ids().len() as u64,
        chunks: (plan.cached_copies.len() - failed.len()) as u64,
        bytes: plan.summary.bytes_from_cache - failed_bytes,
        refetched: failed.len() as u64,
        refetched_bytes,
    })
}

/// Writes the chunks a caller sends as they come ([`Coming`]), then
/// fetches those it never sent.
fn write_coming(
    repo: &Repo,
    planned: &Planned,
    coming: &Coming,
    temps: &Temps,
    watch: &Watch,
) -> Result<CacheUse> {
    let plan = &planned.plan;
    let by_id: IdMap<&CachedCopy> = plan.cached_copies.iter().map(|c| (c.id, c)).collect();
    let mut written = IdSet::default();
    let mut bytes = 0;
    while let Some(batch) = coming.next() {
        watch.abort.check("restore")?;
        for (id, plain) in batch.into_chunks() {
            let Some(c) = by_id.get(&id).filter(|_| written.insert(id)) else {
                continue;
            };
            let mut last = None;
            for place in &c.places {
                temps.write(plan, place.file as usize, &plain, place.offset, &mut last)?;
                watch.wrote(place.file as usize, plain.len() as u64);
                bytes += plain.len() as u64;
            }
        }
    }
    let missing: Vec<&CachedCopy> = plan
        .cached_copies
        .iter()
        .filter(|c| !written.contains(&c.id))
        .collect();
    let refetched_bytes = fetch_missing(repo, planned, &missing, temps, watch)?;
    Ok(CacheUse {
        dir: None,
        entries: written.len() as u64,
        chunks: written.len() as u64,
        bytes,
        refetched: missing.len() as u64,
        refetched_bytes,
    })
}

/// Fetches the chunks a cache or a caller was to give and did not
/// (`missing`) from the repository; the stored bytes it read.
fn fetch_missing(
    repo: &Repo,
    planned: &Planned,
    missing: &[&CachedCopy],
    temps: &Temps,
    watch: &Watch,
) -> Result<u64> {
    let reads =
        reads_for(missing, &planned.index, DEFAULT_MAX_GAP, DEFAULT_MAX_RANGE).map_err(|e| {
            Error::Integrity {
                id: e.0,
                detail: "a cached chunk the index does not know".into(),
            }
        })?;
    fetch(repo, planned, &reads, temps, watch)?;
    Ok(reads.iter().map(|r| r.length).sum())
}

/// Reads pack ranges `reads` (of the plan) and writes their verified
/// blobs. A patch's base the plan's chunk cache holds is taken from it.
fn fetch(
    repo: &Repo,
    planned: &Planned,
    reads: &[PlannedRead],
    temps: &Temps,
    watch: &Watch,
) -> Result<()> {
    let plan = &planned.plan;
    let cached = |id: &Id| planned.cache.as_ref()?.read(id).map(Bytes::from);
    reads.par_iter().try_for_each(|r| -> Result<()> {
        watch.abort.check("restore")?;
        let bytes = block_on(
            repo.store
                .get(&keys::pack(&r.pack), Some(r.offset..r.offset + r.length)),
        )?;
        let ids = r.blobs.iter().map(|b| &b.id);
        let bases = repo.bases_beside(&planned.index, ids, cached)?;
        let mut last = None;
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
            let plain = repo.decode_checked(&b.entry, stored, &bases)?;
            for place in &b.places {
                temps.write(plan, place.file as usize, &plain, place.offset, &mut last)?;
                watch.wrote(place.file as usize, plain.len() as u64);
            }
        }
        Ok(())
    })
}

/// Copies blobs already in the target. Each is checked against its id
/// (the target may have changed since it was scanned, or behind the size,
/// mtime and mode that let a plan know a file's chunks without reading
/// it); one that fails, or whose source is gone, is fetched from the
/// repository instead. Sources are opened without following links and
/// must be regular files.
fn copy_local(
    repo: &Repo,
    planned: &Planned,
    root: &DirFd,
    temps: &Temps,
    bar: &Progress,
) -> Result<()> {
    let plan = &planned.plan;
    plan.local_copies
        .par_iter()
        .try_for_each(|c| -> Result<()> {
            let data = match local_bytes(repo, root, c) {
                Some(data) => data,
                None => repo.read_blob(&planned.index, &c.id)?,
            };
            let mut last = None;
            for place in &c.places {
                temps.write(plan, place.file as usize, &data, place.offset, &mut last)?;
                bar.inc(data.len() as u64);
            }
            Ok(())
        })
}

/// Copy `c`'s bytes as its source in the target holds them, if they still
/// have its id.
fn local_bytes(repo: &Repo, root: &DirFd, c: &LocalCopy) -> Option<Vec<u8>> {
    let f: File = root.open_path_for_read(&c.from).ok()?;
    let mut data = vec![0u8; usize::try_from(c.length).ok()?];
    f.read_exact_at(&mut data, c.from_offset).ok()?;
    (repo.sealing().id_of(&data) == c.id).then_some(data)
}

/// Moves each complete file `completed` names into its folder as it comes
/// (one thread, so renames never wait on each other, while the fetch goes
/// on); says which files it moved. Files come mostly folder by folder, so
/// the last folder opened is kept.
fn move_when_complete(
    completed: Receiver<usize>,
    plan: &RestorePlan,
    root: &DirFd,
    temps: &Temps,
    target: &Path,
) -> Result<Vec<bool>> {
    let mut moved = vec![false; plan.files.len()];
    let mut folder: Option<(&str, DirFd)> = None;
    for i in completed {
        let path = &plan.files[i].path;
        let (parent, name) = split_parent(path);
        let dir = match folder {
            Some((open, ref dir)) if open == parent => dir,
            _ => {
                let dir = root
                    .dir(parent)
                    .map_err(|e| Error::io(target.join(parent), e))?;
                &folder.insert((parent, dir)).1
            }
        };
        temps
            .staging
            .dir
            .move_file_to(&temps.name(i), dir, name)
            .map_err(|e| rename_error(&target.join(path), e))?;
        moved[i] = true;
    }
    Ok(moved)
}

/// Gives each temporary not `moved` yet its mode and mtime and renames it
/// into its folder; a folder where the file goes is removed first.
fn move_into_place(
    plan: &RestorePlan,
    root: &DirFd,
    temps: &Temps,
    moved: &[bool],
    target: &Path,
) -> Result<()> {
    let mut by_parent: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, f) in plan.files.iter().enumerate() {
        if !f.done && !moved[i] {
            by_parent
                .entry(split_parent(&f.path).0)
                .or_default()
                .push(i);
        }
    }
    let groups: Vec<(&str, Vec<usize>)> = by_parent.into_iter().collect();
    groups
        .par_iter()
        .try_for_each(|(parent, files)| -> Result<()> {
            let dir = root
                .dir(parent)
                .map_err(|e| Error::io(target.join(parent), e))?;
            for &i in files {
                let f = &plan.files[i];
                if f.update.is_some() {
                    let (_, name) = split_parent(&f.path);
                    let file = dir.open_existing_for_write(name);
                    let attrs = f.attrs.as_deref();
                    file.and_then(|file| {
                        file.set_len(f.size)?;
                        temps.fin.apply(&file, &f.path, f.mode, f.mtime_ns, attrs)
                    })
                    .map_err(|e| temps.err(i, e))?;
                    continue;
                }
                let name = temps.name(i);
                if !temps.created_by_write[i] {
                    // Metadata is set on a handle opened for reading: a
                    // temporary an interrupted run finished may already
                    // have a mode its owner cannot write.
                    let file = temps
                        .staging
                        .dir
                        .open_for_read(&name)
                        .map_err(|e| temps.err(i, e))?;
                    let attrs = f.attrs.as_deref();
                    temps
                        .fin
                        .apply(&file, &f.path, f.mode, f.mtime_ns, attrs)
                        .map_err(|e| temps.err(i, e))?;
                }
                let (_, final_name) = split_parent(&f.path);
                temps
                    .staging
                    .dir
                    .move_file_to(&name, &dir, final_name)
                    .map_err(|e| rename_error(&target.join(&f.path), e))?;
            }
            Ok(())
        })
}

/// Checks that file `rel`, to be updated in place, still is what the plan
/// read: a regular file with one link, the size and mtime it had, and
/// that it can be opened for writing (an owner's read-only file is made
/// writable; its recorded mode is set at the end).
fn still_as_found(root: &DirFd, rel: &str, found: &FileFacts, target: &Path) -> Result<()> {
    let path = target.join(rel);
    let (parent, name) = split_parent(rel);
    let dir = root.dir(parent).map_err(|e| Error::io(&path, e))?;
    let file = dir.open_for_read(name).map_err(|e| Error::io(&path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
    let mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
    if meta.nlink() != 1 || meta.len() != found.size || mtime_ns != found.mtime_ns {
        return Err(Error::ChangedDuringRestore { path });
    }
    if let Err(e) = dir.open_existing_for_write(name) {
        if e.kind() != std::io::ErrorKind::PermissionDenied {
            return Err(Error::io(&path, e));
        }
        let writable = std::fs::Permissions::from_mode(meta.mode() & 0o7777 | 0o200);
        file.set_permissions(writable)
            .and_then(|()| dir.open_existing_for_write(name).map(drop))
            .map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

/// Gives files already in place (same size, mtime and mode) the owner and
/// extended attributes the snapshot recorded: the fast rule that kept their
/// contents says nothing about those. Mode and mtime are set again after
/// the owner, since a `chown` clears set-id bits. A file with no extended
/// attributes to set whose owner is already right is left alone (a
/// follower's apply keeps thousands of them each time).
fn finish_unchanged(plan: &RestorePlan, root: &DirFd, target: &Path, fin: &Finisher) -> Result<()> {
    plan.files
        .par_iter()
        .filter(|f| f.done)
        .filter_map(|f| f.attrs.as_deref().map(|a| (f, a)))
        .filter(|(f, a)| {
            !a.xattrs.is_empty() || (fin.sets_owners() && !fin.owner_is(a, f.found_owner))
        })
        .try_for_each(|(f, a)| -> Result<()> {
            let err = |e| Error::io(target.join(&f.path), e);
            let file = root.open_path_for_read(&f.path).map_err(err)?;
            fin.apply(&file, &f.path, f.mode, f.mtime_ns, Some(a))
                .map_err(err)
        })
}

fn rename_error(dest: &Path, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::EXDEV) {
        return Error::CrossFilesystem {
            path: dest.to_path_buf(),
        };
    }
    Error::io(dest, e)
}

/// Sets folder modes and mtimes, deepest first, each on its handle.
fn set_dir_modes(plan: &RestorePlan, root: &DirFd, target: &Path, fin: &Finisher) -> Result<()> {
    let mut seen = HashSet::new();
    for d in plan.dirs.iter().rev() {
        if let (Some(mode), Some(mtime_ns)) = (d.mode, d.mtime_ns) {
            if !seen.insert(&d.path) {
                continue;
            }
            let attrs = d.attrs.as_deref();
            root.dir(&d.path)
                .and_then(|dir| fin.apply(&dir, &d.path, mode, mtime_ns, attrs))
                .map_err(|e| Error::io(target.join(&d.path), e))?;
        }
    }
    Ok(())
}
