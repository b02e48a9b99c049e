//! `restore`: writes selected indices (renamed if asked) and optionally the
//! global state into a target folder.
//!
//! Order of work, so a refusal never leaves anything half-written:
//! 1. load every tree and check every name (one path component, unique);
//! 2. check that no target index folder exists non-empty and no global-state
//!    entry already exists;
//! 3. create folders, write files in parallel (every chunk hash-verified
//!    before it is written), create symlinks;
//! 4. set modes and mtimes, deepest folder last.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use rayon::prelude::*;
use serde::Serialize;

use crate::core::id::Id;
use crate::core::index::RepoIndex;
use crate::core::keys;
use crate::core::manifest::Manifest;
use crate::core::naming::validate_name;
use crate::core::read_plan::{plan_reads, DEFAULT_MAX_GAP};
use crate::core::selection::{rename_all, Rename, Selection};
use crate::core::tree::{Node, NodeType};
use crate::native::error::{Error, Result};
use crate::native::progress::Progress;
use crate::native::repo::{decode_verified, Repo};
use crate::native::runtime::block_on;

/// Files are assembled in segments of at most this many plain bytes, so
/// memory stays bounded whatever the file size.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub snapshot: String,
    pub target: PathBuf,
    pub selection: Selection,
    pub rename: Option<Rename>,
    pub include_global_state: bool,
    pub progress: bool,
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
}

#[derive(Default)]
struct Plan {
    /// Folders to create, parents before children, with (mode, mtime).
    dirs: Vec<(PathBuf, Option<(u32, i64)>)>,
    files: Vec<(PathBuf, Node)>,
    links: Vec<(PathBuf, Node)>,
}

/// Loads and validates every tree under `tree`, adding what to create to
/// `plan`. Iterative, so a hostile, very deep tree cannot overflow the stack.
fn collect(
    repo: &Repo,
    index: &RepoIndex,
    tree: &Id,
    base: &Path,
    shown: &str,
    plan: &mut Plan,
) -> Result<()> {
    let mut stack = vec![(*tree, base.to_path_buf(), shown.to_string())];
    while let Some((tree, base, shown)) = stack.pop() {
        let t = repo.tree(index, &tree)?;
        t.validate().map_err(|reason| Error::UnsafePath {
            path: shown.clone(),
            reason,
        })?;
        for n in t.nodes {
            let path = base.join(&n.name);
            let shown = format!("{shown}/{}", n.name);
            match n.kind {
                NodeType::Dir => {
                    plan.dirs.push((path.clone(), Some((n.mode, n.mtime_ns))));
                    stack.push((n.subtree.expect("validated"), path, shown));
                }
                NodeType::File => plan.files.push((path, n)),
                NodeType::Symlink => plan.links.push((path, n)),
            }
        }
    }
    Ok(())
}

fn mtime(ns: i64) -> std::time::SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

fn is_empty_dir(p: &Path) -> Result<bool> {
    Ok(fs::read_dir(p)
        .map_err(|e| Error::io(p, e))?
        .next()
        .is_none())
}

pub fn restore(repo: &Repo, opts: &RestoreOptions) -> Result<RestoreOutcome> {
    let (root, index) = repo.root_and_index()?;
    let summary = root
        .snapshot(&opts.snapshot)
        .ok_or_else(|| Error::SnapshotMissing(opts.snapshot.clone()))?;
    let manifest: Manifest = repo.manifest(summary)?;

    let available: Vec<String> = manifest.indices.keys().cloned().collect();
    let selected = opts.selection.select(&available)?;
    let renamed = rename_all(&selected, opts.rename.as_ref())?;
    for (_, to) in &renamed {
        validate_name("index", to)?;
    }

    // Refuse before writing anything.
    match fs::symlink_metadata(&opts.target) {
        Ok(m) if !m.is_dir() => {
            return Err(Error::Usage(format!(
                "target {} is not a directory",
                opts.target.display()
            )))
        }
        _ => {}
    }
    let mut plan = Plan::default();
    for (from, to) in &renamed {
        let dir = opts.target.join(to);
        if let Ok(m) = fs::symlink_metadata(&dir) {
            if !m.is_dir() || !is_empty_dir(&dir)? {
                return Err(Error::TargetNotEmpty {
                    index: to.clone(),
                    path: dir,
                });
            }
        }
        let stats = &manifest.indices[from];
        let attrs = stats.root_mode.zip(stats.root_mtime_ns);
        plan.dirs.push((dir.clone(), attrs));
        if let Some(tree) = stats.tree {
            collect(repo, &index, &tree, &dir, to, &mut plan)?;
        }
    }
    let global = if opts.include_global_state {
        manifest.global_state.as_ref().and_then(|g| g.tree)
    } else {
        None
    };
    if let Some(tree) = global {
        let mut g = Plan::default();
        collect(repo, &index, &tree, &opts.target, "(global state)", &mut g)?;
        let tops = g
            .dirs
            .iter()
            .map(|d| &d.0)
            .chain(g.files.iter().map(|f| &f.0))
            .chain(g.links.iter().map(|l| &l.0));
        for p in tops.filter(|p| p.parent() == Some(opts.target.as_path())) {
            // Taken on disk, or by an index restored in this run (e.g. one
            // renamed to a global-state name).
            if fs::symlink_metadata(p).is_ok()
                || renamed.iter().any(|(_, to)| opts.target.join(to) == *p)
            {
                return Err(Error::GlobalStateConflict { path: p.clone() });
            }
        }
        plan.dirs.extend(g.dirs);
        plan.files.extend(g.files);
        plan.links.extend(g.links);
    }

    fs::create_dir_all(&opts.target).map_err(|e| Error::io(&opts.target, e))?;
    for (dir, _) in &plan.dirs {
        match fs::create_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(Error::io(dir, e))
            }
            _ => {}
        }
    }
    let total: u64 = plan.files.iter().map(|(_, n)| n.size).sum();
    let progress = Progress::bytes(opts.progress, total, "restore");
    plan.files
        .par_iter()
        .map(|(path, node)| write_file(repo, &index, path, node, &progress))
        .collect::<Result<Vec<()>>>()?;
    progress.finish();
    for (path, node) in &plan.links {
        std::os::unix::fs::symlink(node.target.as_deref().unwrap_or_default(), path)
            .map_err(|e| Error::io(path, e))?;
        let t = filetime::FileTime::from_system_time(mtime(node.mtime_ns));
        filetime::set_symlink_file_times(path, t, t).map_err(|e| Error::io(path, e))?;
    }
    for (dir, attrs) in plan.dirs.iter().rev() {
        if let Some((mode, mtime_ns)) = attrs {
            fs::set_permissions(dir, fs::Permissions::from_mode(*mode))
                .map_err(|e| Error::io(dir, e))?;
            let t = filetime::FileTime::from_system_time(mtime(*mtime_ns));
            filetime::set_file_mtime(dir, t).map_err(|e| Error::io(dir, e))?;
        }
    }
    Ok(RestoreOutcome {
        snapshot: manifest.snapshot.clone(),
        indices: renamed,
        global_state: global.is_some(),
        files: plan.files.len() as u64,
        dirs: plan.dirs.len() as u64,
        symlinks: plan.links.len() as u64,
        bytes: total,
    })
}

/// Writes one file from its chunks, verifying each before it is written.
fn write_file(
    repo: &Repo,
    index: &RepoIndex,
    path: &Path,
    node: &Node,
    progress: &Progress,
) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let mut written = 0u64;
    let mut rest: &[Id] = &node.chunks;
    while !rest.is_empty() {
        // Take chunks until the segment is full (at least one).
        let mut take = 0;
        let mut seg_bytes = 0u64;
        while take < rest.len() {
            let len = index.get(&rest[take]).map_or(0, |l| l.raw_len as u64);
            if take > 0 && seg_bytes + len > SEGMENT_BYTES {
                break;
            }
            seg_bytes += len;
            take += 1;
        }
        let (segment, tail) = rest.split_at(take);
        rest = tail;
        let reads = plan_reads(segment, index, DEFAULT_MAX_GAP).map_err(|m| Error::Integrity {
            id: m.0,
            detail: format!(
                "needed by {} but not in the repository index",
                path.display()
            ),
        })?;
        let mut blobs: HashMap<Id, Vec<u8>> = HashMap::with_capacity(segment.len());
        for r in reads {
            let bytes = block_on(
                repo.store
                    .get(&keys::pack(&r.pack), Some(r.offset..r.offset + r.length)),
            )?;
            for e in &r.blobs {
                let at = (e.offset - r.offset) as usize;
                let span = at.checked_add(e.stored_len as usize).map(|end| at..end);
                let stored = span
                    .and_then(|s| bytes.get(s))
                    .ok_or_else(|| Error::Integrity {
                        id: e.id,
                        detail: format!("pack {} is shorter than its index says", r.pack.short()),
                    })?;
                blobs.insert(e.id, decode_verified(e, stored)?);
            }
        }
        for id in segment {
            let data = &blobs[id];
            f.write_all(data).map_err(|e| Error::io(path, e))?;
            written += data.len() as u64;
            progress.inc(data.len() as u64);
        }
    }
    if written != node.size {
        return Err(Error::Integrity {
            id: node.chunks.first().copied().unwrap_or(Id([0; 32])),
            detail: format!(
                "{} restored {written} bytes, snapshot says {}",
                path.display(),
                node.size
            ),
        });
    }
    f.set_permissions(fs::Permissions::from_mode(node.mode))
        .map_err(|e| Error::io(path, e))?;
    f.set_modified(mtime(node.mtime_ns))
        .map_err(|e| Error::io(path, e))?;
    Ok(())
}
