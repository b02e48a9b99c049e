//! What the target folder holds, read through directory handles (no link
//! below the target is followed, no FIFO is opened): the conflicts the core
//! checks, an interrupted run's progress, and with `--overwrite` the files
//! whose chunks can be reused.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Seek;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rayon::prelude::*;

use crate::core::chunking::detect::HEAD_BYTES;
use crate::core::chunking::{Chunking, Cutter, Cutting};
use crate::core::crypto::content_ids::IdScheme;
use crate::core::format::id::Id;
use crate::core::format::index::RepoIndex;
use crate::core::plan::restore::{
    FileFacts, PlannedFile, RestorePlan, TargetState, IN_PLACE_MIN_BYTES,
};
use crate::core::policy::global_state::{is_follower_work, is_global_state};
use crate::native::backup::reader::read_full;
use crate::native::dirfd::{split_parent, DirFd, Kind, Meta};
use crate::native::error::{Error, Result};
use crate::native::restore::staging::{is_staging, temp_name, Staging};

fn facts(m: &Meta) -> FileFacts {
    FileFacts {
        size: m.size,
        mtime_ns: m.mtime_ns,
        mode: m.mode,
        owner: Some((m.uid, m.gid)),
        links: m.links,
    }
}

/// Resolves parent folders with a one-entry cache: plans list the entries
/// of one folder together, so most lookups reuse the last handle.
pub struct Parents<'a> {
    root: &'a DirFd,
    last: Option<(String, Option<DirFd>)>,
}

impl<'a> Parents<'a> {
    pub fn new(root: &'a DirFd) -> Parents<'a> {
        Parents { root, last: None }
    }

    /// The folder `rel` below the root, `None` if it cannot be opened as a
    /// folder without following a link.
    pub fn get(&mut self, rel: &str) -> Option<&DirFd> {
        if self.last.as_ref().is_none_or(|(p, _)| p != rel) {
            self.last = Some((rel.to_string(), self.root.dir(rel).ok()));
        }
        self.last.as_ref().and_then(|(_, d)| d.as_ref())
    }

    /// `rel`'s metadata, `None` if it or a folder on its way is missing.
    pub fn meta(&mut self, rel: &str) -> Option<Meta> {
        let (parent, name) = split_parent(rel);
        self.get(parent)?.meta(name).ok().flatten()
    }
}

/// The target's top-level names and which index folders are occupied
/// (exist and are not empty, or are not folders).
pub fn target_state(target: &Path, index_targets: &[String]) -> Result<TargetState> {
    let mut state = TargetState::default();
    match std::fs::metadata(target) {
        Ok(m) if !m.is_dir() => {
            return Err(Error::Usage(format!(
                "target {} is not a directory",
                target.display()
            )))
        }
        Ok(_) => {}
        Err(_) => return Ok(state),
    }
    let dir = DirFd::open(target).map_err(|e| Error::io(target, e))?;
    for name in dir.names().map_err(|e| Error::io(target, e))? {
        state.top_level.insert(name.to_string_lossy().into_owned());
    }
    for name in index_targets {
        let occupied = match dir.kind(name).map_err(|e| Error::io(target, e))? {
            None => false,
            Some(Kind::Dir) => {
                let path = target.join(name);
                let child = dir.child_dir(name).map_err(|e| Error::io(&path, e))?;
                !child.names().map_err(|e| Error::io(&path, e))?.is_empty()
            }
            Some(_) => true,
        };
        if occupied {
            state.occupied_index_dirs.insert(name.clone());
        }
    }
    Ok(state)
}

/// What an interrupted run left: complete files, and which chunk
/// placements of partial files already hold the right bytes (each is read
/// back and its SHA-256 checked).
pub fn scan_interrupted(
    plan: &RestorePlan,
    index: &RepoIndex,
    ids: &IdScheme,
    target: &DirFd,
    staging: &Staging,
    state: &mut TargetState,
) {
    let mut parents = Parents::new(target);
    for f in &plan.files {
        if let Some(m) = parents.meta(&f.path) {
            if m.kind == Kind::File {
                state.files.insert(f.path.clone(), facts(&m));
            }
            continue;
        }
        let Ok(file) = staging.dir.open_for_read(&temp_name(&f.path)) else {
            continue;
        };
        state.partial_files.insert(f.path.clone());
        for offset in verified_placements(&file, f, index, ids) {
            state.written.insert((f.path.clone(), offset));
        }
    }
}

/// Offsets of `f`'s chunks that `file` already holds.
fn verified_placements(
    file: &File,
    f: &PlannedFile,
    index: &RepoIndex,
    ids: &IdScheme,
) -> Vec<u64> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    let mut buf = Vec::new();
    for c in &f.chunks {
        let len = index.get(c).map_or(0, |l| l.raw_len as u64);
        buf.resize(len as usize, 0);
        if file.read_exact_at(&mut buf, offset).is_ok() && ids.id_of(&buf) == *c {
            out.push(offset);
        }
        offset += len;
    }
    out
}

/// How to cut the existing file `f` to find the chunks it holds: as the
/// snapshot's file at its path was cut, or (a file at a path the snapshot
/// does not have) as a snapshot of it would be.
fn cutter_for(
    f: &mut File,
    planned: Option<&PlannedFile>,
    cutting: &Cutting,
) -> std::io::Result<Cutter> {
    let size = f.metadata()?.len();
    if let Some(p) = planned {
        // A recorded mode cuts without looking at the file's head.
        let mode = p.chunking.unwrap_or(Chunking::Cdc);
        return Ok(Cutting { mode, ..*cutting }.for_file(size, &[]));
    }
    let mut head = vec![0u8; HEAD_BYTES.min(size as usize)];
    let n = read_full(f, &mut head, usize::MAX)?;
    Ok(cutting.for_file(size, &head[..n]))
}

/// Chunk ids of a file, cut by `cutter`: (id, offset).
fn chunk_file(
    f: &mut File,
    cutter: &Cutter,
    largest: u32,
    ids: &IdScheme,
) -> std::io::Result<Vec<(Id, u64)>> {
    let window = (largest as usize * 2).max(4 << 20);
    let mut buf = vec![0u8; window];
    let (mut filled, mut base) = (0usize, 0u64);
    let mut out = Vec::new();
    loop {
        let n = read_full(f, &mut buf[filled..], usize::MAX)?;
        filled += n;
        let eof = filled < buf.len();
        let ranges = cutter.split(base, &buf[..filled], eof);
        // Hashing is most of the cost, and one large changed file (a
        // database's table) is often all there is to read: its chunks are
        // hashed in parallel.
        let hashed: Vec<(Id, u64)> = ranges
            .par_iter()
            .map(|r| (ids.id_of(&buf[r.clone()]), base + r.start as u64))
            .collect();
        out.extend(hashed);
        let used = ranges.last().map_or(0, |r| r.end);
        buf.copy_within(used..filled, 0);
        filled -= used;
        base += used as u64;
        if eof {
            return Ok(out);
        }
    }
}

/// What a stat walk found under the folders an overwriting restore
/// writes: every path, and the facts of every file. A follower's apply
/// plans twice over the same files (its held checkpoint against the live
/// folder, the next one against a hard-linked copy of it, whose files are
/// the same inodes) and walks once.
#[derive(Debug, Clone, Default)]
pub struct Walked {
    pub paths: Vec<String>,
    pub files: HashMap<String, FileFacts>,
    /// Files whose chunks are known without reading them (see
    /// [`Walked::know`]).
    pub known: HashMap<String, Known>,
}

/// A file's chunks as a snapshot holds it, known to be what the file
/// holds while its size, mtime and mode stay these.
#[derive(Debug, Clone)]
pub struct Known {
    pub size: u64,
    pub mtime_ns: i64,
    pub mode: u32,
    /// Each chunk and its offset in the file.
    pub chunks: Vec<(Id, u64)>,
}

impl Walked {
    /// Records the chunks of the files `plan` found complete in the target
    /// (by the same size, mtime and mode rule that lets a restore leave
    /// them alone): a later plan over this walk takes them as local
    /// sources without reading and hashing them. The restore still checks
    /// each copied chunk against its id, so a file changed behind the
    /// facts costs a fetch instead of giving wrong bytes.
    pub fn know(&mut self, plan: &RestorePlan, index: &RepoIndex) {
        for f in plan.files.iter().filter(|f| f.done) {
            let Some(spans) = chunk_spans(&f.chunks, index) else {
                continue;
            };
            let known = Known {
                size: f.size,
                mtime_ns: f.mtime_ns,
                mode: f.mode,
                chunks: f
                    .chunks
                    .iter()
                    .zip(spans)
                    .map(|(id, (at, _))| (*id, at))
                    .collect(),
            };
            self.known.insert(f.path.clone(), known);
        }
    }
}

/// The (offset, length) of each of a file's `chunks`, in order; `None` if
/// `index` lacks one.
pub fn chunk_spans(chunks: &[Id], index: &RepoIndex) -> Option<Vec<(u64, u64)>> {
    let mut at = 0u64;
    chunks
        .iter()
        .map(|id| {
            let len = u64::from(index.get(id)?.raw_len);
            at += len;
            Some((at - len, len))
        })
        .collect()
}

/// For --overwrite: walks what the target holds under the folders being
/// restored. Staging folders are the restores' own files, not data.
pub fn walk_existing(
    plan: &RestorePlan,
    target: &DirFd,
    target_path: &Path,
    taken: &HashSet<String>,
    state: &TargetState,
) -> Result<Walked> {
    let mut roots: Vec<String> = plan.indices.iter().map(|(_, t)| t.clone()).collect();
    if plan.global_state {
        // The target's global state is what the core's rule calls so
        // (as backup does); other index folders are never touched.
        let global: Vec<String> = state
            .top_level
            .iter()
            .filter(|n| !roots.contains(n) && (taken.contains(*n) || !is_staging(target, n)))
            .filter(|n| {
                let is_dir = target.kind(n.as_str()).ok().flatten() == Some(Kind::Dir);
                is_global_state(n, is_dir) && !is_follower_work(n, is_dir)
            })
            .cloned()
            .collect();
        roots.extend(global);
    }
    let mut walked = Walked::default();
    let mut stack: Vec<String> = roots;
    let mut parents = Parents::new(target);
    while let Some(rel) = stack.pop() {
        let Some(m) = parents.meta(&rel) else {
            continue;
        };
        walked.paths.push(rel.clone());
        match m.kind {
            Kind::Dir => {
                let path = target_path.join(&rel);
                let dir = target.dir(&rel).map_err(|e| Error::io(&path, e))?;
                for name in dir.names().map_err(|e| Error::io(&path, e))? {
                    stack.push(format!("{rel}/{}", name.to_string_lossy()));
                }
            }
            Kind::File => {
                walked.files.insert(rel, facts(&m));
            }
            Kind::Symlink | Kind::Other => {}
        }
    }
    Ok(walked)
}

/// For --overwrite: records what `walked` found in `state`. Files that
/// already match the snapshot are not read; others are chunked so their
/// blobs can be copied instead of fetched.
pub fn scan_existing(
    plan: &RestorePlan,
    walked: &Walked,
    target: &DirFd,
    target_path: &Path,
    chunking: (&Cutting, &IdScheme),
    state: &mut TargetState,
) -> Result<()> {
    let (cutting, ids) = chunking;
    let planned: HashMap<&str, &PlannedFile> =
        plan.files.iter().map(|f| (f.path.as_str(), f)).collect();
    // A file where the snapshot has a folder is removed before blobs are
    // copied, so it cannot be a copy source.
    let planned_dirs: HashSet<&str> = plan.dirs.iter().map(|d| d.path.as_str()).collect();
    state.existing_paths.extend(walked.paths.iter().cloned());
    let mut to_read = Vec::new();
    for (rel, facts) in &walked.files {
        state.files.insert(rel.clone(), *facts);
        let in_place = planned
            .get(rel.as_str())
            .is_some_and(|f| facts.matches(f.size, f.mtime_ns, f.mode));
        if in_place || planned_dirs.contains(rel.as_str()) {
            continue;
        }
        match walked.known.get(rel) {
            Some(k) if facts.matches(k.size, k.mtime_ns, k.mode) => {
                for (id, offset) in &k.chunks {
                    state
                        .local_blobs
                        .entry(*id)
                        .or_insert_with(|| (rel.clone(), *offset));
                }
            }
            _ => to_read.push(rel),
        }
    }
    let read: Vec<(&String, Vec<(Id, u64)>)> = to_read
        .par_iter()
        .map(|rel| -> Result<(&String, Vec<(Id, u64)>)> {
            // Replaced by something else since the stat: not a source.
            let Ok(mut file) = target.open_path_for_read(rel) else {
                return Ok((*rel, Vec::new()));
            };
            let planned = planned.get(rel.as_str()).copied();
            let chunks = cutter_for(&mut file, planned, cutting)
                .and_then(|cutter| {
                    file.seek(std::io::SeekFrom::Start(0))?;
                    chunk_file(&mut file, &cutter, cutting.params.max, ids)
                })
                .map_err(|e| Error::io(target_path.join(rel), e))?;
            Ok((*rel, chunks))
        })
        .collect::<Result<_>>()?;
    for (rel, chunks) in read {
        let updatable = planned.get(rel.as_str()).is_some_and(|f| {
            let one_link = state.files.get(rel).is_some_and(|x| x.links == 1);
            state.update_in_place && one_link && f.size >= IN_PLACE_MIN_BYTES
        });
        if updatable {
            state.found_chunks.insert(rel.clone(), chunks.clone());
        }
        for (id, offset) in chunks {
            state
                .local_blobs
                .entry(id)
                .or_insert_with(|| (rel.clone(), offset));
        }
    }
    Ok(())
}
