//! Restore planning: what a restore will create, which pack ranges it reads,
//! and what stands in its way, computed from values alone (the snapshot's
//! trees, the repository index, and what the target already holds). The CLI
//! executes the plan; the browser inspector shows the same plan.
//!
//! Every blob is fetched once, however many files (or places in one file)
//! need it; neighbouring blobs of a pack are read in one range when the gap
//! between them is small.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::core::chunking::Chunking;
use crate::core::format::blob::BlobEntry;
use crate::core::format::id::{Id, IdMap, IdSet};
use crate::core::format::index::RepoIndex;
pub use crate::core::format::manifest::EntryAttrs;
use crate::core::format::manifest::SharedAttrs;
use crate::core::format::tree::{NodeType, Tree, UnsafeEntry};
use crate::core::plan::read::{plan_reads, MissingBlob};
use crate::core::plan::shape::{check_declared, EntryProblem, ShapeError, Shapes};
use crate::core::plan::subset::{keep_included, source_of};
use crate::core::policy::include::PathFilter;

/// One index to restore, after selection and renaming.
#[derive(Debug, Clone)]
pub struct IndexToRestore {
    pub source: String,
    pub target: String,
    pub tree: Option<Id>,
    pub mode: Option<u32>,
    pub mtime_ns: Option<i64>,
    /// Owner and extended attributes of the index's own folder.
    pub attrs: Option<Arc<EntryAttrs>>,
    /// What the manifest declares of the index: its trees may expand to no
    /// more (see [`crate::core::plan::shape`]).
    pub declared: Declared,
}

/// Files and folders a manifest declares for one index (or the global
/// state).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Declared {
    pub files: u64,
    pub dirs: u64,
}

/// What the target folder already holds, as far as planning needs it.
#[derive(Debug, Clone, Default)]
pub struct TargetState {
    /// Index folders (by target name) that exist and are not empty, or exist
    /// and are not folders.
    pub occupied_index_dirs: HashSet<String>,
    /// Names present at the top level of the target.
    pub top_level: HashSet<String>,
    /// The target holds an interrupted run of this same restore: occupied
    /// folders are expected, and the sets below say what is already done.
    pub resuming: bool,
    /// Files that exist at planned file paths, with what is known of them:
    /// one whose size, mtime and mode match the snapshot is left alone.
    pub files: HashMap<String, FileFacts>,
    /// Files with a partial temporary file from the interrupted run.
    pub partial_files: HashSet<String>,
    /// Blob placements already written and verified: (file path, offset).
    pub written: HashSet<(String, u64)>,
    /// `--overwrite`: restore into existing index folders, reusing what is
    /// there and removing what the snapshot does not have.
    pub overwrite: bool,
    /// Blobs found in files already in the target: id -> (path, offset).
    pub local_blobs: HashMap<Id, (String, u64)>,
    /// Blobs a local chunk cache holds (a mount's, `restore --cache`):
    /// taken from it instead of fetched. The shell checks each against its
    /// id when it reads it and fetches any that fail (see
    /// [`reads_for`]).
    pub cached_blobs: IdSet,
    /// Every path under the overwritten folders (and, with global state,
    /// the target's top level), to find what the snapshot does not have.
    pub existing_paths: Vec<String>,
    /// `--overwrite`: a large file that mostly holds the snapshot's chunks
    /// at their places may be updated in place (see [`IN_PLACE_MIN_BYTES`])
    /// instead of written anew beside it.
    pub update_in_place: bool,
    /// The chunks found in files at planned paths that could be updated
    /// in place (one link, at least [`IN_PLACE_MIN_BYTES`] long): path ->
    /// each chunk and its offset.
    pub found_chunks: HashMap<String, Vec<(Id, u64)>>,
}

/// An overwriting restore updates a file in place when that spares at
/// least this many bytes: the chunks it already holds at their places.
/// Other changed files are written anew in the staging folder and renamed
/// over the old ones, which costs little more for them and never leaves a
/// file half-updated.
pub const IN_PLACE_MIN_BYTES: u64 = 1 << 20;

/// What the target says about an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFacts {
    pub size: u64,
    pub mtime_ns: i64,
    pub mode: u32,
    /// The file's owner and group ids, where the shell read them.
    pub owner: Option<(u32, u32)>,
    /// How many names the file has (0: not known). Only a file with one
    /// is updated in place: the others would change with it.
    #[serde(default)]
    pub links: u64,
}

impl FileFacts {
    /// Whether a file with these facts already is the snapshot's file: the
    /// same fast rule a snapshot uses to skip unchanged files.
    pub fn matches(&self, size: u64, mtime_ns: i64, mode: u32) -> bool {
        self.size == size && self.mtime_ns == mtime_ns && self.mode == mode
    }
}

#[derive(Debug, Clone)]
pub struct PlanRequest<'a> {
    pub indices: Vec<IndexToRestore>,
    pub global_state: Option<Id>,
    pub global_declared: Declared,
    /// Every tree reachable from the roots above.
    pub trees: &'a HashMap<Id, Tree>,
    pub index: &'a RepoIndex,
    pub target: TargetState,
    pub max_gap: u64,
    /// Longest coalesced range (see [`crate::core::plan::read`]).
    pub max_range: u64,
    /// `--include`: restore only the paths it selects (paths in the
    /// snapshot, before renaming), with the folders that lead to them.
    pub include: Option<&'a PathFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("refusing to restore {path}: {reason}")]
    Unsafe { path: String, reason: UnsafeEntry },
    #[error("tree {0} was not loaded")]
    MissingTree(Id),
    #[error("indices [{first}] and [{second}] would both be restored as [{target}]")]
    RenameCollision {
        first: String,
        second: String,
        target: String,
    },
    #[error("{0}")]
    MissingBlob(#[from] MissingBlob),
    #[error("{path}: its chunks hold {chunks} bytes but the snapshot records {size}")]
    SizeMismatch {
        path: String,
        chunks: u64,
        size: u64,
    },
    #[error("index [{index}]: {source}")]
    Shape { index: String, source: ShapeError },
    /// `--include` selects no path of what the restore covers.
    #[error("no path matches --include {0}")]
    NothingIncluded(String),
}

/// Something in the target that stops the restore (nothing is written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Conflict {
    /// The index folder exists and is not empty.
    TargetNotEmpty { index: String, path: String },
    /// A global-state entry exists in the target, or an index is restored
    /// under a global-state entry's name.
    GlobalStateExists { path: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedDir {
    pub path: String,
    pub mode: Option<u32>,
    pub mtime_ns: Option<i64>,
    #[serde(skip)]
    pub attrs: Option<Arc<EntryAttrs>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedFile {
    pub path: String,
    pub size: u64,
    pub mode: u32,
    pub mtime_ns: i64,
    /// Already complete in the target: left untouched.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
    /// For a done file, the owner and group ids it has (as the target's
    /// facts said): the shell need not set them again.
    #[serde(skip)]
    pub found_owner: Option<(u32, u32)>,
    /// Continue the partial temporary file of an interrupted run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resume: bool,
    /// The file's chunks, in order (where each comes from is in `reads`).
    #[serde(skip)]
    pub chunks: Vec<Id>,
    /// The file had holes: its zero blocks are left unwritten.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sparse: bool,
    /// How the snapshot's file was cut (`None`: by content): an existing
    /// file at its path is cut the same way to find its chunks.
    #[serde(skip)]
    pub chunking: Option<Chunking>,
    /// The file in the target is updated in place: only the chunks it
    /// lacks at their places are written into it, then it is cut to size.
    /// These are its facts when it was read, which it must still have when
    /// the restore opens it (else it changed since, and the restore stops).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<FileFacts>,
    #[serde(skip)]
    pub attrs: Option<Arc<EntryAttrs>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedLink {
    pub path: String,
    pub target: String,
    pub mtime_ns: i64,
    #[serde(skip)]
    pub attrs: Option<Arc<EntryAttrs>>,
}

/// A second (or later) path of a restored file's inode: linked, not
/// written. `to` is a file this plan restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedHardLink {
    pub path: String,
    pub to: String,
}

/// A fifo, socket or device, recreated with `mknod` (sockets are skipped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedSpecial {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: NodeType,
    pub mode: u32,
    pub mtime_ns: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdev: Option<u64>,
    #[serde(skip)]
    pub attrs: Option<Arc<EntryAttrs>>,
}

/// Where one blob's bytes go: file number (into `files`) and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub file: u32,
    pub offset: u64,
}

/// Where one blob goes. Nearly every blob goes to one place, which is kept
/// inline: a vector per blob was one allocation per chunk of the snapshot,
/// held for the whole restore.
pub type Places = SmallVec<[Placement; 1]>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedBlob {
    #[serde(skip)]
    pub entry: BlobEntry,
    pub id: Id,
    pub places: Places,
}

/// A blob copied from a file already in the target instead of fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalCopy {
    pub id: Id,
    pub from: String,
    pub from_offset: u64,
    pub length: u64,
    pub places: Places,
}

/// A blob taken from a local chunk cache instead of fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CachedCopy {
    pub id: Id,
    /// Plain bytes.
    pub length: u64,
    pub places: Places,
}

/// One ranged read of a pack and what to do with the blobs it yields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedRead {
    pub pack: Id,
    pub offset: u64,
    pub length: u64,
    pub blobs: Vec<PlannedBlob>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanSummary {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Hard links to restored files (tree encoding 2).
    #[serde(skip_serializing_if = "is_zero")]
    pub hard_links: u64,
    /// Fifos, sockets and devices (tree encoding 2).
    #[serde(skip_serializing_if = "is_zero")]
    pub specials: u64,
    /// Plain bytes the restored files will hold.
    pub bytes: u64,
    /// Stored bytes to read from the repository (ranges, gaps included).
    pub bytes_to_fetch: u64,
    /// Range requests.
    pub requests: u64,
    /// Distinct blobs fetched.
    pub blobs: u64,
    pub conflicts: u64,
    /// Files left as they are (complete from an interrupted run).
    pub files_unchanged: u64,
    /// Files updated in place: only their changed chunks are written.
    #[serde(skip_serializing_if = "is_zero")]
    pub files_updated_in_place: u64,
    /// Plain bytes already in the target that need no fetch.
    pub bytes_in_place: u64,
    /// Plain bytes copied from other places in the target.
    pub bytes_copied_locally: u64,
    /// Plain bytes taken from a local chunk cache, and how many blobs
    /// (each counted once, however many places it goes).
    #[serde(skip_serializing_if = "is_zero")]
    pub bytes_from_cache: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub blobs_from_cache: u64,
    pub deletes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestorePlan {
    /// (index in the snapshot, folder it is restored as).
    pub indices: Vec<(String, String)>,
    /// Folders to create, parents before children. Paths are relative to
    /// the target and use `/`.
    pub dirs: Vec<PlannedDir>,
    pub files: Vec<PlannedFile>,
    pub symlinks: Vec<PlannedLink>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hard_links: Vec<PlannedHardLink>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub specials: Vec<PlannedSpecial>,
    pub reads: Vec<PlannedRead>,
    /// Blobs copied from files already in the target (with --overwrite).
    pub local_copies: Vec<LocalCopy>,
    /// Blobs taken from a local chunk cache (with a cache).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cached_copies: Vec<CachedCopy>,
    /// Paths in the target the snapshot does not have (with --overwrite),
    /// removed at the end.
    pub deletes: Vec<String>,
    pub conflicts: Vec<Conflict>,
    /// Whether the snapshot's global state is part of the restore.
    pub global_state: bool,
    /// What identifies this restore to a later run that resumes it (the
    /// shell writes it into the target while the restore runs).
    #[serde(skip)]
    pub marker: String,
    pub summary: PlanSummary,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

struct Builder<'a> {
    trees: &'a HashMap<Id, Tree>,
    plan: RestorePlan,
    /// blob -> where it goes
    uses: IdMap<Places>,
    /// Where the global state's entries start in the plan's dirs, files
    /// and symlinks (everything before belongs to an index).
    global_from: (usize, usize, usize),
    attrs: SharedAttrs,
}

impl Builder<'_> {
    /// Adds everything under `tree` at `base`, validating every level.
    fn walk(&mut self, tree: Id, base: &str) -> Result<(), PlanError> {
        let root = base.to_string();
        let mut stack = vec![(tree, base.to_string())];
        while let Some((id, base)) = stack.pop() {
            let t = self.trees.get(&id).ok_or(PlanError::MissingTree(id))?;
            t.validate().map_err(|reason| PlanError::Unsafe {
                path: if base.is_empty() {
                    "(global state)".into()
                } else {
                    base.clone()
                },
                reason,
            })?;
            for n in &t.nodes {
                let path = join(&base, &n.name);
                match n.kind {
                    NodeType::Dir => {
                        self.plan.dirs.push(PlannedDir {
                            path: path.clone(),
                            mode: Some(n.mode),
                            mtime_ns: Some(n.mtime_ns),
                            attrs: self.attrs.of(n),
                        });
                        stack.push((n.subtree.expect("validated"), path));
                    }
                    NodeType::Symlink => self.plan.symlinks.push(PlannedLink {
                        path,
                        target: n.target().expect("validated").to_string(),
                        mtime_ns: n.mtime_ns,
                        attrs: self.attrs.of(n),
                    }),
                    NodeType::File if n.link().is_some() => {
                        let to = join(&root, n.link().expect("matched"));
                        self.plan.hard_links.push(PlannedHardLink { path, to });
                    }
                    NodeType::Fifo | NodeType::Socket | NodeType::Chardev | NodeType::Blockdev => {
                        self.plan.specials.push(PlannedSpecial {
                            path,
                            kind: n.kind,
                            mode: n.mode,
                            mtime_ns: n.mtime_ns,
                            rdev: n.rdev(),
                            attrs: self.attrs.of(n),
                        })
                    }
                    NodeType::File => {
                        self.plan.files.push(PlannedFile {
                            path,
                            size: n.size,
                            mode: n.mode,
                            mtime_ns: n.mtime_ns,
                            done: false,
                            found_owner: None,
                            resume: false,
                            chunks: n.chunks.clone(),
                            sparse: n.sparse,
                            chunking: n.chunking,
                            update: None,
                            attrs: self.attrs.of(n),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Records where every blob goes and which files are already done or
    /// resumed; returns the plain bytes already in place.
    fn place_blobs(&mut self, req: &PlanRequest) -> Result<u64, PlanError> {
        let mut in_place = 0u64;
        for file in 0..self.plan.files.len() {
            let planned = &self.plan.files[file];
            let found = req.target.files.get(&planned.path);
            let done =
                found.is_some_and(|f| f.matches(planned.size, planned.mtime_ns, planned.mode));
            let resume = !done && req.target.partial_files.contains(&planned.path);
            let mut offset = 0u64;
            for c in &planned.chunks {
                let loc = req.index.get(c).ok_or(MissingBlob(*c))?;
                let written =
                    resume && req.target.written.contains(&(planned.path.clone(), offset));
                if done || written {
                    in_place += loc.raw_len as u64;
                } else {
                    self.uses.entry(*c).or_default().push(Placement {
                        file: file as u32,
                        offset,
                    });
                }
                offset += loc.raw_len as u64;
            }
            if offset != planned.size {
                return Err(PlanError::SizeMismatch {
                    path: planned.path.clone(),
                    chunks: offset,
                    size: planned.size,
                });
            }
            let owner = found.and_then(|f| f.owner).filter(|_| done);
            let f = &mut self.plan.files[file];
            f.done = done;
            f.found_owner = owner;
            f.resume = resume;
        }
        Ok(in_place)
    }
}

/// The chunks of `f` that `found` (chunk, offset) holds at their places:
/// offset -> (chunk, length).
fn chunks_in_place(
    f: &PlannedFile,
    found: &[(Id, u64)],
    index: &RepoIndex,
) -> HashMap<u64, (Id, u64)> {
    let found: HashMap<u64, Id> = found.iter().map(|(id, at)| (*at, *id)).collect();
    let mut same = HashMap::new();
    let mut offset = 0u64;
    for c in &f.chunks {
        let len = index.get(c).map_or(0, |l| u64::from(l.raw_len));
        if found.get(&offset) == Some(c) {
            same.insert(offset, (*c, len));
        }
        offset += len;
    }
    same
}

/// The folder part of `a/b/name` (`a/b`).
fn split_dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Checks, before anything is expanded, that every tree to restore holds no
/// more than its manifest declares and no entry a restore would refuse.
fn check_shapes(req: &PlanRequest) -> Result<(), PlanError> {
    let mut shapes = Shapes::new();
    let tree = |id: &Id| req.trees.get(id);
    let chunk_len = |id: &Id| req.index.get(id).map(|l| l.raw_len as u64);
    let roots = req
        .indices
        .iter()
        .filter_map(|i| i.tree.map(|t| (i.source.as_str(), t, i.declared)))
        .chain(req.global_state.map(|g| {
            (
                crate::core::format::manifest::GLOBAL_STATE,
                g,
                req.global_declared,
            )
        }));
    for (index, root, declared) in roots {
        shapes.of(root, &tree, &chunk_len);
        check_declared(&shapes, &root, declared.files, declared.dirs).map_err(
            |source| match source {
                ShapeError::Entry {
                    path,
                    problem: EntryProblem::Unsafe(reason),
                } => PlanError::Unsafe {
                    path: join(index, split_dir(&path)),
                    reason,
                },
                ShapeError::Entry {
                    problem: EntryProblem::MissingChunk(id),
                    ..
                } => PlanError::MissingBlob(MissingBlob(id)),
                ShapeError::Entry {
                    path,
                    problem: EntryProblem::SizeMismatch { chunks, size },
                } => PlanError::SizeMismatch {
                    path: join(index, &path),
                    chunks,
                    size,
                },
                source => PlanError::Shape {
                    index: index.to_string(),
                    source,
                },
            },
        )?;
    }
    Ok(())
}

/// Computes the restore plan.
pub fn plan_restore(req: &PlanRequest) -> Result<RestorePlan, PlanError> {
    check_shapes(req)?;
    let mut b = Builder {
        trees: req.trees,
        plan: RestorePlan::default(),
        uses: IdMap::default(),
        global_from: (0, 0, 0),
        attrs: SharedAttrs::default(),
    };
    b.add_indices(req)?;
    b.global_from = (b.plan.dirs.len(), b.plan.files.len(), b.plan.symlinks.len());
    if let Some(tree) = req.global_state {
        b.add_global_state(req, tree)?;
    }
    if let Some(filter) = req.include {
        keep_included(&mut b.plan, req, b.global_from, filter)?;
    }
    b.plan.check_hard_links()?;
    let mut in_place = b.place_blobs(req)?;
    if req.target.update_in_place {
        in_place += b.update_in_place(req);
    }
    let copied = b.copy_local_blobs(req);
    b.take_cached_blobs(req);
    if req.target.overwrite {
        b.plan.deletes = b.unwanted_paths(req);
    }
    let blobs = b.add_reads(req)?;
    b.plan.summary = b.plan.summarize(blobs, in_place, copied);
    Ok(b.plan)
}

impl Builder<'_> {
    /// Adds every index folder and what it holds, noting the folders that
    /// would be restored over.
    fn add_indices(&mut self, req: &PlanRequest) -> Result<(), PlanError> {
        for (i, ix) in req.indices.iter().enumerate() {
            if let Some(other) = req.indices[..i].iter().find(|o| o.target == ix.target) {
                return Err(PlanError::RenameCollision {
                    first: other.source.clone(),
                    second: ix.source.clone(),
                    target: ix.target.clone(),
                });
            }
            self.plan
                .indices
                .push((ix.source.clone(), ix.target.clone()));
            if req.target.occupied_index_dirs.contains(&ix.target)
                && !req.target.resuming
                && !req.target.overwrite
            {
                self.plan.conflicts.push(Conflict::TargetNotEmpty {
                    index: ix.target.clone(),
                    path: ix.target.clone(),
                });
            }
            self.plan.dirs.push(PlannedDir {
                path: ix.target.clone(),
                mode: ix.mode,
                mtime_ns: ix.mtime_ns,
                attrs: ix.attrs.clone(),
            });
            if let Some(tree) = ix.tree {
                self.walk(tree, &ix.target)?;
            }
        }
        Ok(())
    }

    /// Adds the global state at the target's top level, noting every entry
    /// that would replace something the target holds or an index folder.
    fn add_global_state(&mut self, req: &PlanRequest, tree: Id) -> Result<(), PlanError> {
        self.plan.global_state = true;
        let t = req.trees.get(&tree).ok_or(PlanError::MissingTree(tree))?;
        let targets: HashSet<&String> = req.indices.iter().map(|i| &i.target).collect();
        for n in &t.nodes {
            let in_place = req
                .target
                .files
                .get(&n.name)
                .is_some_and(|f| f.matches(n.size, n.mtime_ns, n.mode));
            let resumed = req.target.resuming
                && (in_place || req.target.partial_files.contains(&n.name) || n.is_dir());
            if (req.target.top_level.contains(&n.name) && !resumed && !req.target.overwrite)
                || targets.contains(&n.name)
            {
                self.plan.conflicts.push(Conflict::GlobalStateExists {
                    path: n.name.clone(),
                });
            }
        }
        self.walk(tree, "")
    }

    /// Picks the files an overwriting restore updates in place: one link,
    /// at least [`IN_PLACE_MIN_BYTES`] of chunks found at their places, and
    /// no part a local copy reads that the update would overwrite (copies
    /// run after the fetch). Those chunks are taken out of `uses`; returns
    /// their bytes.
    fn update_in_place(&mut self, req: &PlanRequest) -> u64 {
        let mut read_from: HashMap<&str, Vec<u64>> = HashMap::new();
        for id in self.uses.keys() {
            if let Some((path, at)) = req.target.local_blobs.get(id) {
                read_from.entry(path.as_str()).or_default().push(*at);
            }
        }
        let mut kept = 0;
        for file in 0..self.plan.files.len() {
            let f = &self.plan.files[file];
            let facts = req.target.files.get(&f.path).filter(|x| x.links == 1);
            let found = req.target.found_chunks.get(&f.path);
            let (Some(facts), Some(found)) = (facts, found) else {
                continue;
            };
            if f.done || f.resume {
                continue;
            }
            let same = chunks_in_place(f, found, req.index);
            let bytes: u64 = same.values().map(|(_, len)| len).sum();
            let read = read_from.get(f.path.as_str()).map_or(&[][..], |v| v);
            if bytes < IN_PLACE_MIN_BYTES || read.iter().any(|at| !same.contains_key(at)) {
                continue;
            }
            for (offset, (id, _)) in &same {
                let places = self.uses.get_mut(id).expect("placed by place_blobs");
                places.retain(|p| !(p.file as usize == file && p.offset == *offset));
                if places.is_empty() {
                    self.uses.remove(id);
                }
            }
            kept += bytes;
            self.plan.files[file].update = Some(*facts);
        }
        kept
    }

    /// Blobs present in the target are copied locally, not fetched: moves
    /// them from `uses` to local copies; returns the bytes they write.
    fn copy_local_blobs(&mut self, req: &PlanRequest) -> u64 {
        let mut copied = 0u64;
        let mut local: Vec<Id> = self
            .uses
            .keys()
            .filter(|id| req.target.local_blobs.contains_key(*id))
            .copied()
            .collect();
        local.sort();
        for id in local {
            let places = self.uses.remove(&id).expect("listed above");
            let (from, from_offset) = req.target.local_blobs[&id].clone();
            let length = req.index.get(&id).map_or(0, |l| l.raw_len as u64);
            copied += length * places.len() as u64;
            self.plan.local_copies.push(LocalCopy {
                id,
                from,
                from_offset,
                length,
                places,
            });
        }
        copied
    }

    /// Blobs a local cache holds (and the target does not) are read from
    /// it, not fetched: moves them from `uses` to cached copies.
    fn take_cached_blobs(&mut self, req: &PlanRequest) {
        let mut cached: Vec<(Id, u64)> = self
            .uses
            .keys()
            .filter(|id| req.target.cached_blobs.contains(*id))
            .filter_map(|id| req.index.get(id).map(|l| (*id, l.raw_len as u64)))
            .collect();
        cached.sort_unstable();
        for (id, length) in cached {
            let places = self.uses.remove(&id).expect("listed above");
            self.plan
                .cached_copies
                .push(CachedCopy { id, length, places });
        }
    }

    /// What an overwriting restore removes: every existing path the plan
    /// does not write, children before their folders.
    fn unwanted_paths(&self, req: &PlanRequest) -> Vec<String> {
        let wanted: HashSet<&str> = self
            .plan
            .dirs
            .iter()
            .map(|d| d.path.as_str())
            .chain(self.plan.files.iter().map(|f| f.path.as_str()))
            .chain(self.plan.symlinks.iter().map(|l| l.path.as_str()))
            .chain(self.plan.hard_links.iter().map(|l| l.path.as_str()))
            .chain(self.plan.specials.iter().map(|l| l.path.as_str()))
            .collect();
        // A subset restore removes only what its filter covers.
        let covered = |p: &str| req.include.is_none_or(|f| f.selects(&source_of(req, p)));
        let mut deletes: Vec<String> = req
            .target
            .existing_paths
            .iter()
            .filter(|p| !wanted.contains(p.as_str()) && covered(p))
            .cloned()
            .collect();
        deletes.sort_by(|a, b| b.cmp(a));
        deletes
    }

    /// Groups the blobs still to fetch into range reads of their packs;
    /// returns how many blobs are fetched.
    fn add_reads(&mut self, req: &PlanRequest) -> Result<u64, PlanError> {
        let ids: Vec<Id> = self.uses.keys().copied().collect();
        for r in plan_reads(&ids, req.index, req.max_gap, req.max_range)? {
            let blobs = r
                .blobs
                .iter()
                .map(|e| PlannedBlob {
                    entry: *e,
                    id: e.id,
                    places: self.uses.remove(&e.id).unwrap_or_default(),
                })
                .collect();
            self.plan.reads.push(PlannedRead {
                pack: r.pack,
                offset: r.offset,
                length: r.length,
                blobs,
            });
        }
        Ok(ids.len() as u64)
    }
}

/// The pack reads that fetch `copies` (cached copies whose cache entry
/// turned out missing or corrupt), coalesced as a plan's reads are.
pub fn reads_for(
    copies: &[&CachedCopy],
    index: &RepoIndex,
    max_gap: u64,
    max_range: u64,
) -> Result<Vec<PlannedRead>, MissingBlob> {
    let places: IdMap<&Places> = copies.iter().map(|c| (c.id, &c.places)).collect();
    let ids: Vec<Id> = copies.iter().map(|c| c.id).collect();
    Ok(plan_reads(&ids, index, max_gap, max_range)?
        .into_iter()
        .map(|r| PlannedRead {
            pack: r.pack,
            offset: r.offset,
            length: r.length,
            blobs: r
                .blobs
                .iter()
                .map(|e| PlannedBlob {
                    entry: *e,
                    id: e.id,
                    places: places.get(&e.id).map_or_else(Places::new, |p| (*p).clone()),
                })
                .collect(),
        })
        .collect())
}

impl RestorePlan {
    /// Takes the fetched blobs in `ids` from a chunk cache filled after
    /// this plan was made, as a plan made with `cached_blobs: ids` would:
    /// they become cached copies, and the reads of the rest are planned
    /// again (with the gap and range limits the plan was made with).
    pub fn take_cached(
        &mut self,
        ids: &IdSet,
        index: &RepoIndex,
        max_gap: u64,
        max_range: u64,
    ) -> Result<(), MissingBlob> {
        let mut rest = Vec::new();
        let fetched = std::mem::take(&mut self.reads);
        for b in fetched.into_iter().flat_map(|r| r.blobs) {
            let copy = CachedCopy {
                id: b.id,
                length: u64::from(b.entry.raw_len),
                places: b.places,
            };
            if ids.contains(&copy.id) {
                self.cached_copies.push(copy);
            } else {
                rest.push(copy);
            }
        }
        self.cached_copies.sort_unstable_by_key(|c| c.id);
        self.reads = reads_for(&rest.iter().collect::<Vec<_>>(), index, max_gap, max_range)?;
        let s = &mut self.summary;
        s.bytes_to_fetch = self.reads.iter().map(|r| r.length).sum();
        s.requests = self.reads.len() as u64;
        s.blobs = rest.len() as u64;
        s.bytes_from_cache = self
            .cached_copies
            .iter()
            .map(|c| c.length * c.places.len() as u64)
            .sum();
        s.blobs_from_cache = self.cached_copies.len() as u64;
        Ok(())
    }

    /// Every hard link must name a regular file this plan writes (in the
    /// same index or global state: paths start at its root), so a link can
    /// never reach outside the restored tree, nor at another link.
    fn check_hard_links(&self) -> Result<(), PlanError> {
        if self.hard_links.is_empty() {
            return Ok(());
        }
        let files: HashSet<&str> = self.files.iter().map(|f| f.path.as_str()).collect();
        match self
            .hard_links
            .iter()
            .find(|l| !files.contains(l.to.as_str()))
        {
            None => Ok(()),
            Some(l) => {
                let (dir, name) = l.path.rsplit_once('/').unwrap_or(("", &l.path));
                Err(PlanError::Unsafe {
                    path: dir.to_string(),
                    reason: UnsafeEntry::BadLink(name.to_string()),
                })
            }
        }
    }

    /// The plan's totals, from its parts and what planning measured.
    fn summarize(&self, blobs: u64, in_place: u64, copied: u64) -> PlanSummary {
        PlanSummary {
            files: self.files.len() as u64,
            dirs: self.dirs.len() as u64,
            symlinks: self.symlinks.len() as u64,
            hard_links: self.hard_links.len() as u64,
            specials: self.specials.len() as u64,
            bytes: self.files.iter().map(|f| f.size).sum(),
            bytes_to_fetch: self.reads.iter().map(|r| r.length).sum(),
            requests: self.reads.len() as u64,
            blobs,
            conflicts: self.conflicts.len() as u64,
            files_unchanged: self.files.iter().filter(|f| f.done).count() as u64,
            files_updated_in_place: self.files.iter().filter(|f| f.update.is_some()).count() as u64,
            bytes_in_place: in_place,
            bytes_copied_locally: copied,
            bytes_from_cache: self
                .cached_copies
                .iter()
                .map(|c| c.length * c.places.len() as u64)
                .sum(),
            blobs_from_cache: self.cached_copies.len() as u64,
            deletes: self.deletes.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::tree::Node;
    use crate::core::testing::{self, entry, store};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn file(name: &str, chunks: &[&[u8]]) -> Node {
        testing::file(name, chunks).with_mtime(5)
    }

    fn fixture() -> (HashMap<Id, Tree>, RepoIndex, Id, Id) {
        let (a, b, c): (&[u8], &[u8], &[u8]) = (b"aaaa", b"bbbb", b"cccc");
        let mut index = RepoIndex::new();
        // a and b are neighbours in pack 1; c is far away in pack 1.
        index.add_pack(
            Id::of(b"p1"),
            &[entry(a, 8), entry(b, 12), entry(c, 1_000_000)],
        );
        let sub = Tree::new(vec![file("copy", &[a, a])]);
        let dir = testing::dir("sub", sub.id()).with_mtime(1);
        let top = Tree::new(vec![
            file("x", &[a, b]),
            file("y", &[c]),
            file("empty", &[]),
            dir,
        ]);
        let global = Tree::new(vec![file("settings.json", &[b])]);
        let trees: HashMap<Id, Tree> = [
            (sub.id(), sub),
            (top.id(), top.clone()),
            (global.id(), global.clone()),
        ]
        .into_iter()
        .collect();
        (trees, index, top.id(), global.id())
    }

    fn request<'a>(
        trees: &'a HashMap<Id, Tree>,
        index: &'a RepoIndex,
        top: Id,
        global: Option<Id>,
        target: TargetState,
    ) -> PlanRequest<'a> {
        PlanRequest {
            indices: vec![IndexToRestore {
                source: "logs".into(),
                target: "restored".into(),
                tree: Some(top),
                mode: Some(0o750),
                mtime_ns: Some(9),
                attrs: None,
                declared: Declared {
                    files: 100,
                    dirs: 100,
                },
            }],
            global_state: global,
            global_declared: Declared {
                files: 100,
                dirs: 100,
            },
            trees,
            index,
            target,
            max_gap: 1024,
            max_range: u64::MAX,
            include: None,
        }
    }

    #[test]
    fn each_blob_is_fetched_once_and_neighbours_share_a_range() {
        let (trees, index, top, _) = fixture();
        let plan =
            plan_restore(&request(&trees, &index, top, None, TargetState::default())).unwrap();
        assert_eq!(plan.summary.files, 4);
        assert_eq!(
            plan.summary.blobs, 3,
            "a is used three times but fetched once"
        );
        assert_eq!(plan.summary.requests, 2, "a+b coalesced, c alone");
        assert_eq!(plan.summary.bytes_to_fetch, 8 + 4);
        // x (a+b) + y (c) + empty + sub/copy (a+a)
        assert_eq!(plan.summary.bytes, 20);
        let a = plan
            .reads
            .iter()
            .flat_map(|r| &r.blobs)
            .find(|b| b.id == Id::of(b"aaaa"))
            .unwrap();
        assert_eq!(a.places.len(), 3);
        let copy = plan
            .files
            .iter()
            .position(|f| f.path == "restored/sub/copy")
            .unwrap() as u32;
        assert!(a.places.contains(&Placement {
            file: copy,
            offset: 4
        }));
        assert_eq!(plan.dirs[0].path, "restored");
        assert!(plan.conflicts.is_empty());
    }

    #[test]
    fn occupied_targets_and_global_state_collisions_are_conflicts() {
        let (trees, index, top, global) = fixture();
        let target = TargetState {
            occupied_index_dirs: ["restored".to_string()].into_iter().collect(),
            top_level: ["settings.json".to_string()].into_iter().collect(),
            ..Default::default()
        };
        let plan = plan_restore(&request(&trees, &index, top, Some(global), target)).unwrap();
        assert_eq!(plan.conflicts.len(), 2);
        assert_eq!(plan.summary.conflicts, 2);
    }

    #[test]
    fn unsafe_trees_missing_blobs_and_wrong_sizes_are_errors() {
        let (mut trees, index, _, _) = fixture();
        let bad = store(
            &mut trees,
            Tree {
                nodes: vec![file("../x", &[b"aaaa"])],
            },
        );
        assert!(matches!(
            plan_restore(&request(&trees, &index, bad, None, TargetState::default())),
            Err(PlanError::Unsafe { .. })
        ));
        let missing = store(&mut trees, Tree::new(vec![file("m", &[b"not stored"])]));
        assert!(matches!(
            plan_restore(&request(
                &trees,
                &index,
                missing,
                None,
                TargetState::default()
            )),
            Err(PlanError::MissingBlob(_))
        ));
        let lying = file("l", &[]).with_chunks(vec![Id::of(b"aaaa")], 99);
        let lie = store(&mut trees, Tree::new(vec![lying]));
        assert!(matches!(
            plan_restore(&request(&trees, &index, lie, None, TargetState::default())),
            Err(PlanError::SizeMismatch { .. })
        ));
    }

    /// The target's facts for a complete `restored/y`, and for a
    /// `restored/x` that differs.
    fn y_in_place() -> HashMap<String, FileFacts> {
        let facts = |size| FileFacts {
            size,
            mtime_ns: 5,
            mode: 0o644,
            owner: None,
            links: 1,
        };
        [
            ("restored/y".to_string(), facts(4)),
            ("restored/x".to_string(), facts(7)),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn two_indices_restored_under_one_name_are_refused() {
        let (trees, index, top, _) = fixture();
        let mut req = request(&trees, &index, top, None, TargetState::default());
        let mut second = req.indices[0].clone();
        second.source = "metrics".into();
        req.indices.push(second);
        assert_eq!(
            plan_restore(&req),
            Err(PlanError::RenameCollision {
                first: "logs".into(),
                second: "metrics".into(),
                target: "restored".into()
            })
        );
    }

    #[test]
    fn a_resumed_restore_fetches_only_what_is_missing() {
        let (trees, index, top, _) = fixture();
        let target = TargetState {
            occupied_index_dirs: ["restored".to_string()].into_iter().collect(),
            resuming: true,
            files: y_in_place(),
            partial_files: ["restored/x".to_string()].into_iter().collect(),
            written: [("restored/x".to_string(), 0u64)].into_iter().collect(),
            ..Default::default()
        };
        let plan = plan_restore(&request(&trees, &index, top, None, target)).unwrap();
        assert!(
            plan.conflicts.is_empty(),
            "an interrupted run of the same restore is no conflict"
        );
        assert_eq!(plan.summary.files_unchanged, 1);
        assert_eq!(plan.summary.bytes_in_place, 4 + 4);
        // c (only in y) is not fetched; a is still needed by sub/copy, b by x.
        let fetched: Vec<Id> = plan
            .reads
            .iter()
            .flat_map(|r| r.blobs.iter().map(|b| b.id))
            .collect();
        assert!(!fetched.contains(&Id::of(b"cccc")));
        assert!(fetched.contains(&Id::of(b"bbbb")));
        let x = plan.files.iter().find(|f| f.path == "restored/x").unwrap();
        assert!(x.resume && !x.done);
    }

    /// A snapshot of one file `big` of four 1 MiB chunks m0..m3, and its
    /// index.
    fn big_file() -> (HashMap<Id, Tree>, RepoIndex, Id, [Id; 4]) {
        let ids = [0u8, 1, 2, 3].map(|i| Id::of(&[b'm', i]));
        let mut index = RepoIndex::new();
        let entries: Vec<BlobEntry> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| BlobEntry {
                id: *id,
                offset: i as u64 * (1 << 20),
                stored_len: 1 << 20,
                raw_len: 1 << 20,
                kind: crate::core::format::blob::BlobKind::Data,
                codec: crate::core::format::codec::Codec::Raw,
            })
            .collect();
        index.add_pack(Id::of(b"p1"), &entries);
        let big = file("big", &[]).with_chunks(ids.to_vec(), 4 << 20);
        let mut trees = HashMap::new();
        let top = store(&mut trees, Tree::new(vec![big]));
        (trees, index, top, ids)
    }

    /// The target's `restored/big` as changed after the snapshot: holding
    /// `found` (chunk, offset), with `links` names.
    fn big_found(found: Vec<(Id, u64)>, links: u64) -> TargetState {
        let path = "restored/big".to_string();
        let facts = FileFacts {
            size: 4 << 20,
            mtime_ns: 77,
            mode: 0o644,
            owner: None,
            links,
        };
        TargetState {
            occupied_index_dirs: ["restored".to_string()].into_iter().collect(),
            overwrite: true,
            update_in_place: true,
            files: [(path.clone(), facts)].into_iter().collect(),
            local_blobs: found
                .iter()
                .map(|(id, at)| (*id, (path.clone(), *at)))
                .collect(),
            found_chunks: [(path, found)].into_iter().collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_file_holding_its_chunks_at_their_places_is_updated_in_place() {
        let (trees, index, top, m) = big_file();
        let other = Id::of(b"changed");
        // m1 was overwritten; m0, m2 and m3 are where the snapshot has them.
        let found = vec![
            (m[0], 0),
            (other, 1 << 20),
            (m[2], 2 << 20),
            (m[3], 3 << 20),
        ];
        let plan = plan_restore(&request(&trees, &index, top, None, big_found(found, 1))).unwrap();
        let big = &plan.files[0];
        assert_eq!(big.update.map(|f| f.mtime_ns), Some(77), "{big:?}");
        assert_eq!(plan.summary.files_updated_in_place, 1);
        assert_eq!(plan.summary.bytes_in_place, 3 << 20);
        assert!(plan.local_copies.is_empty(), "{:?}", plan.local_copies);
        let fetched: Vec<(Id, u64)> = plan
            .reads
            .iter()
            .flat_map(|r| r.blobs.iter())
            .flat_map(|b| b.places.iter().map(|p| (b.id, p.offset)))
            .collect();
        assert_eq!(fetched, vec![(m[1], 1 << 20)], "only m1 is written");

        // The same without in-place updates: the file is written anew,
        // every chunk copied or fetched.
        let mut target = big_found(vec![(m[0], 0), (other, 1 << 20), (m[2], 2 << 20)], 1);
        target.update_in_place = false;
        let plan = plan_restore(&request(&trees, &index, top, None, target)).unwrap();
        assert!(plan.files[0].update.is_none());
        assert_eq!(plan.summary.bytes_copied_locally, 2 << 20);
        assert_eq!(plan.summary.bytes_in_place, 0);
    }

    #[test]
    fn a_file_is_not_updated_in_place_where_that_would_change_a_copy_source_or_another_name() {
        let (trees, index, top, m) = big_file();
        // m1 sits where m3 goes: copying it from there after m3's place
        // was overwritten would copy the wrong bytes.
        let moved = vec![(m[0], 0), (m[1], 3 << 20), (m[2], 2 << 20)];
        let plan = plan_restore(&request(&trees, &index, top, None, big_found(moved, 1))).unwrap();
        assert!(plan.files[0].update.is_none(), "{:?}", plan.files[0]);
        assert_eq!(plan.summary.bytes_copied_locally, 3 << 20);

        // Two names: the other one would change too.
        let found = vec![(m[0], 0), (m[1], 1 << 20), (m[2], 2 << 20)];
        let plan = plan_restore(&request(&trees, &index, top, None, big_found(found, 2))).unwrap();
        assert!(plan.files[0].update.is_none());

        // Less than a mebibyte in place: written anew.
        let found = vec![(Id::of(b"x"), 0), (m[3], 3 << 20)];
        let mut target = big_found(found, 1);
        target.found_chunks.values_mut().for_each(|f| f.truncate(1));
        let plan = plan_restore(&request(&trees, &index, top, None, target)).unwrap();
        assert!(plan.files[0].update.is_none());
    }

    #[test]
    fn cached_blobs_are_not_fetched_and_a_failed_one_is_fetched_alone() {
        let (trees, index, top, _) = fixture();
        let (a, c) = (Id::of(b"aaaa"), Id::of(b"cccc"));
        let target = TargetState {
            cached_blobs: [a, c].into_iter().collect(),
            ..Default::default()
        };
        let plan = plan_restore(&request(&trees, &index, top, None, target)).unwrap();
        let fetched: Vec<Id> = plan
            .reads
            .iter()
            .flat_map(|r| r.blobs.iter().map(|b| b.id))
            .collect();
        assert_eq!(fetched, vec![Id::of(b"bbbb")], "only b is fetched");
        assert_eq!(plan.summary.requests, 1, "c's far range is not requested");
        assert_eq!(plan.summary.blobs_from_cache, 2);
        // a goes to x and twice to sub/copy; c to y.
        assert_eq!(plan.summary.bytes_from_cache, 3 * 4 + 4);
        let copy_a = plan.cached_copies.iter().find(|c| c.id == a).unwrap();
        assert_eq!(copy_a.places.len(), 3);
        // The cache's a turns out corrupt: a read of a alone, to its places.
        let again = reads_for(&[copy_a], &index, 1 << 20, 8 << 20).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].blobs.len(), 1);
        assert_eq!(again[0].blobs[0].places, copy_a.places);
    }

    #[test]
    fn a_cache_filled_after_planning_gives_the_plan_a_cache_gives() {
        let (trees, index, top, _) = fixture();
        for cached in [
            vec![Id::of(b"aaaa"), Id::of(b"cccc")],
            vec![Id::of(b"bbbb")],
            vec![Id::of(b"aaaa"), Id::of(b"bbbb"), Id::of(b"cccc")],
            vec![],
        ] {
            let ids: IdSet = cached.into_iter().collect();
            let target = TargetState {
                cached_blobs: ids.clone(),
                ..Default::default()
            };
            let with = plan_restore(&request(&trees, &index, top, None, target)).unwrap();
            let mut after =
                plan_restore(&request(&trees, &index, top, None, TargetState::default())).unwrap();
            after.take_cached(&ids, &index, 1024, u64::MAX).unwrap();
            assert_eq!(after, with, "cached {ids:?}");
        }
    }

    #[test]
    fn overwrite_copies_local_blobs_and_deletes_what_the_snapshot_lacks() {
        let (trees, index, top, _) = fixture();
        let target = TargetState {
            occupied_index_dirs: ["restored".to_string()].into_iter().collect(),
            overwrite: true,
            files: y_in_place(),
            // "aaaa" sits in an old file that the snapshot does not have.
            local_blobs: [(Id::of(b"aaaa"), ("restored/old".to_string(), 100u64))]
                .into_iter()
                .collect(),
            existing_paths: vec![
                "restored".into(),
                "restored/old".into(),
                "restored/x".into(),
                "restored/y".into(),
            ],
            ..Default::default()
        };
        let plan = plan_restore(&request(&trees, &index, top, None, target)).unwrap();
        assert!(plan.conflicts.is_empty());
        // a is copied locally to its three places; only b is fetched.
        assert_eq!(plan.local_copies.len(), 1);
        assert_eq!(plan.local_copies[0].places.len(), 3);
        assert_eq!(plan.local_copies[0].from, "restored/old");
        let fetched: Vec<Id> = plan
            .reads
            .iter()
            .flat_map(|r| r.blobs.iter().map(|b| b.id))
            .collect();
        assert_eq!(fetched, vec![Id::of(b"bbbb")]);
        assert_eq!(plan.summary.bytes_copied_locally, 12);
        assert_eq!(plan.summary.bytes_to_fetch, 4);
        assert_eq!(plan.deletes, vec!["restored/old".to_string()]);
    }

    #[test]
    fn plans_serialize_for_other_shells() {
        let (trees, index, top, _) = fixture();
        let plan =
            plan_restore(&request(&trees, &index, top, None, TargetState::default())).unwrap();
        let v = serde_json::to_value(&plan).unwrap();
        assert_eq!(v["summary"]["requests"], 2);
        let place = &v["reads"][0]["blobs"][0]["places"][0];
        assert!(place["file"].as_u64().unwrap() < plan.files.len() as u64);
        assert!(place["offset"].is_u64());
        assert_eq!(v["files"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn hard_links_must_name_a_file_of_the_same_restore_and_specials_are_listed() {
        let (mut trees, index, _, _) = fixture();
        let link_to = |to: &str| {
            let mut n = file("second", &[]);
            n.rare_mut().link = Some(to.into());
            n
        };
        let mut fifo = file("pipe", &[]);
        fifo.kind = NodeType::Fifo;
        fifo.mode = 0o640;
        let sub = store(&mut trees, Tree::new(vec![link_to("x")]));
        let top = store(
            &mut trees,
            Tree::new(vec![
                file("x", &[b"aaaa", b"bbbb"]),
                testing::dir("d", sub),
                fifo,
            ]),
        );
        let plan =
            plan_restore(&request(&trees, &index, top, None, TargetState::default())).unwrap();
        assert_eq!(
            plan.hard_links,
            vec![PlannedHardLink {
                path: "restored/d/second".into(),
                to: "restored/x".into()
            }]
        );
        assert_eq!(plan.specials.len(), 1);
        assert_eq!(plan.specials[0].path, "restored/pipe");
        assert_eq!(plan.specials[0].kind, NodeType::Fifo);
        assert_eq!((plan.summary.hard_links, plan.summary.specials), (1, 1));
        assert_eq!(plan.summary.files, 1, "the link is not written");

        // A link to nothing the restore writes (a folder, a missing path,
        // or another index's file) is refused.
        for to in ["d", "nope", "../logs/x", "d/second"] {
            let sub = store(&mut trees, Tree::new(vec![link_to(to)]));
            let top = store(
                &mut trees,
                Tree::new(vec![file("x", &[b"aaaa"]), testing::dir("d", sub)]),
            );
            let err = plan_restore(&request(&trees, &index, top, None, TargetState::default()));
            assert!(
                matches!(
                    err,
                    Err(PlanError::Unsafe {
                        reason: UnsafeEntry::BadLink(_),
                        ..
                    })
                ),
                "{to}: {err:?}"
            );
        }
    }
}
