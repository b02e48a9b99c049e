//! `mount --writable --upper DIR` with block-level copy-on-write: the FUSE
//! filesystem of the mount is itself writable, over a full layout of the
//! snapshot in `DIR/tree` whose regular files start sparse and owe their
//! blocks to the snapshot (see [`crate::core::lazy::fill`]). Opening a
//! 1 GiB file for writing copies nothing, and rewriting one page of it
//! fills one block; overlayfs would copy the whole file on open.
//!
//! `DIR` holds `snapshot` (the uuid of the snapshot the layer is over),
//! `layout` (`blocks 1`, written once `tree` is complete) and `tree`. The
//! repository is never written; the layer stays after unmount and carries
//! over to the next writable mount of the same snapshot.

mod fs;
pub mod hydrate;
mod ops;
pub mod prewarm;
mod skeleton;
mod sys;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::core::format::index::RepoIndex;
use crate::core::format::tree::Node;
use crate::core::lazy::inodes::Inodes;
use crate::native::dirfd::DirFd;
use crate::native::error::{Error, Result};
use crate::native::lazy::DiskCache;
use crate::repo::RepoReader;

pub use fs::LayerFs;

/// The extended attribute a layer file's fill map is kept in (hidden from
/// the mount's users, who can neither read nor set it).
pub const FILL_XATTR: &str = "user.snapkeep.fill";
/// Names of extended attributes the mount keeps to itself.
pub const OWN_XATTRS: &str = "user.snapkeep.";

/// What `DIR/layout` says of a block layer.
const LAYOUT: &str = "blocks 1";
const LAYOUT_FILE: &str = "layout";
const TREE: &str = "tree";
/// Locked while a mount uses the layer; holds that mount's mount point.
const IN_USE: &str = "in-use";

/// Where the snapshot's bytes come from when a block is filled.
pub struct Lower {
    pub inodes: Arc<Inodes>,
    pub repo: RepoReader,
    pub index: Arc<RepoIndex>,
    pub cache: Arc<DiskCache>,
}

impl Lower {
    /// The snapshot's file at `path` (as the mount shows it).
    pub fn node_at(&self, path: &str) -> Option<&Node> {
        let mut ino = 1;
        for name in path.split('/').filter(|n| !n.is_empty()) {
            ino = self.inodes.lookup(ino, name)?;
        }
        Some(&self.inodes.get(ino)?.node)
    }
}

/// The tree folder of a block layer in `dir`.
pub fn tree_of(dir: &Path) -> PathBuf {
    dir.join(TREE)
}

/// Whether `dir` holds a block layer (rather than overlayfs's folders).
pub fn is_block_layer(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join(LAYOUT_FILE)).is_ok_and(|l| l.trim() == LAYOUT)
}

/// The layer's tree in `dir`, laid out from `inodes` the first time. A
/// layout cut short (a killed mount) is started again.
pub fn prepare(dir: &Path, inodes: &Inodes) -> Result<PathBuf> {
    let tree = tree_of(dir);
    let layout = dir.join(LAYOUT_FILE);
    let mark = || std::fs::write(&layout, format!("{LAYOUT}\n")).map_err(|e| Error::io(&layout, e));
    if is_block_layer(dir) {
        return Ok(tree);
    }
    // Renamed into place only once complete: a tree without its mark was
    // laid out by a mount killed just before writing the mark.
    if tree.is_dir() {
        mark()?;
        return Ok(tree);
    }
    let partial = dir.join("tree.partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    }
    std::fs::create_dir(&partial).map_err(|e| Error::io(&partial, e))?;
    let root = DirFd::open(&partial).map_err(|e| Error::io(&partial, e))?;
    skeleton::lay_out(inodes, 1, &root, "", &root, &mut HashMap::new()).map_err(|e| {
        Error::Usage(format!(
            "cannot lay out the writable layer in {}: {e}",
            partial.display()
        ))
    })?;
    if let Some(top) = inodes.get(1) {
        let node = &top.node;
        let _ = rustix::fs::chown(
            &partial,
            node.uid.map(rustix::fs::Uid::from_raw),
            node.gid.map(rustix::fs::Gid::from_raw),
        );
        root.set_meta(node.mode & 0o7777, node.mtime_ns)
            .map_err(|e| Error::io(&partial, e))?;
    }
    std::fs::rename(&partial, &tree).map_err(|e| Error::io(&tree, e))?;
    mark()?;
    Ok(tree)
}

/// A mount's hold on its layer: one mount at a time, and no materialize
/// while it lasts. The lock goes with the process, however it ends.
pub struct InUse(#[allow(dead_code)] std::fs::File);

impl InUse {
    pub fn take(dir: &Path, mountpoint: &Path) -> Result<InUse> {
        let path = dir.join(IN_USE);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            return Err(Error::Usage(format!(
                "the writable layer in {} is in use by the mount at {}: one mount at a time",
                dir.display(),
                std::fs::read_to_string(&path).unwrap_or_default().trim()
            )));
        }
        file.set_len(0).map_err(|e| Error::io(&path, e))?;
        std::io::Write::write_all(&mut &file, mountpoint.to_string_lossy().as_bytes())
            .map_err(|e| Error::io(&path, e))?;
        Ok(InUse(file))
    }
}

/// Where a mount that uses the layer in `dir` is mounted, if one does.
pub fn mounted_at(dir: &Path) -> Option<String> {
    let path = dir.join(IN_USE);
    let file = std::fs::File::open(&path).ok()?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Ok(()) => None,
        Err(_) => Some(std::fs::read_to_string(&path).unwrap_or_default()),
    }
}
