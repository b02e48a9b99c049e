//! `snapkeep materialize`: what a writable mount showed, as a plain local
//! folder. The snapshot is restored into the target (taking every chunk
//! the mount cache holds, see `restore --cache`), then the writable
//! layer's changes (`--upper DIR`'s `upper` folder, overlayfs's format)
//! are laid over it:
//!
//! - a regular file, symlink, fifo or device replaces what stood at its
//!   path (a file is copied, so the layer stays as it was);
//! - a folder is merged into the folder at its path, or replaces what
//!   else stood there; an *opaque* folder (`trusted.overlay.opaque=y`:
//!   deleted and made again through the mount) replaces the folder whole;
//! - a whiteout (a character device 0/0) deletes the path.
//!
//! A file the layer holds under several names (hard links) is copied once
//! and linked at its other names. Each entry keeps the layer's owner, mode, mtime and extended attributes
//! (overlayfs's own `trusted.overlay.*` left out); folders get theirs
//! after their contents. Everything in the target is reached through
//! folder handles that follow no link. Renamed folders
//! (`trusted.overlay.redirect`) and metadata-only copies
//! (`trusted.overlay.metacopy`) need the lower layer to resolve: snapkeep's
//! writable mount turns both off, and a layer holding them (from another
//! overlay mount) is refused before anything is written.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::native::dirfd::{set_meta, DirFd, Special};
use crate::native::error::{Error, Result};
use crate::native::lazy::DiskCache;
use crate::native::mount::blocks;
use crate::native::mount::overlay::{check_stamp, Layers};
use crate::native::mount::Shown;
use crate::native::repo::Repo;
use crate::native::restore::{restore, RestoreOptions, RestoreOutcome};
use crate::native::runtime::block_on;
use crate::native::xattrs;
use std::sync::Arc;

/// overlayfs's own attributes, never copied into the target.
const OVERLAY_XATTRS: &str = "trusted.overlay.";
const OPAQUE: &str = "trusted.overlay.opaque";
/// Attributes a layer must not hold: they point into the lower layer.
const NEEDS_LOWER: [&str; 2] = ["trusted.overlay.redirect", "trusted.overlay.metacopy"];

/// What to materialize.
#[derive(Debug, Clone)]
pub struct MaterializeOptions {
    /// The mount's `--index` options (empty: every index).
    pub indices: Vec<String>,
    /// The restore (snapshot, target, indices, cache, overwrite).
    pub restore: RestoreOptions,
    /// The writable mount's `--upper` folder.
    pub upper: PathBuf,
    /// The index the mount showed at its root (one `--index`): the layer
    /// goes over that index's folder; otherwise over the target.
    pub single_index: Option<String>,
}

/// What the layer changed in the restored folder.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LayerApplied {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Further names of a file the layer holds under several (hard links).
    pub hard_links: u64,
    pub specials: u64,
    /// Paths a whiteout deleted.
    pub deleted: u64,
    /// Bytes a block layer still owed the snapshot, filled (from the
    /// cache, or the repository) before the copy.
    pub filled_bytes: u64,
    /// Folders an opaque folder replaced.
    pub replaced_dirs: u64,
    /// What could not be set as the layer had it (extended attributes,
    /// sockets).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Materialized {
    /// The restore under an overlayfs layer (a block layer holds the whole
    /// tree and needs none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreOutcome>,
    pub layer: LayerApplied,
}

/// Restores the snapshot and lays the writable layer over it.
pub fn materialize(repo: &Repo, opts: &MaterializeOptions) -> Result<Materialized> {
    let snapshot = &opts.restore.snapshot;
    let manifest = block_on(async {
        let root = repo.reader().root().await?;
        crate::repo::views::manifest_named(repo.reader(), &root, snapshot).await
    })?;
    check_stamp(&opts.upper, &manifest.uuid, &manifest.snapshot)?;
    if blocks::is_block_layer(&opts.upper) {
        return materialize_blocks(repo, opts);
    }
    let layer = Layers::at(&opts.upper).upper;
    if let Some(at) = mounted_over(&layer) {
        return Err(Error::Usage(format!(
            "the writable layer in {} is still mounted at {at}: stop the service and \
             `umount {at}` first (overlayfs's upper folder must not change while it is read)",
            opts.upper.display()
        )));
    }
    check_layer(&layer)?;
    let restored = restore(repo, &opts.restore)?;
    let base = match &opts.single_index {
        Some(index) => opts.restore.target.join(index),
        None => opts.restore.target.clone(),
    };
    let dir = DirFd::open(&base).map_err(|e| Error::io(&base, e))?;
    let mut applied = LayerApplied::default();
    apply_dir(&layer, &dir, &base, &mut applied, &mut HashMap::new())?;
    finish(&layer, Entry::Open(dir.as_fd()), &base, &mut applied)?;
    Ok(Materialized {
        restore: Some(restored),
        layer: applied,
    })
}

/// A block layer's tree, its owed blocks filled, copied to the target.
fn materialize_blocks(repo: &Repo, opts: &MaterializeOptions) -> Result<Materialized> {
    if let Some(at) = blocks::mounted_at(&opts.upper) {
        return Err(Error::Usage(format!(
            "the writable layer in {} is still mounted at {at}: stop the service and \
             `umount {at}` first (the layer must not change while it is read)",
            opts.upper.display()
        )));
    }
    let tree = blocks::tree_of(&opts.upper);
    check_layer(&tree)?;
    let mut applied = LayerApplied {
        filled_bytes: fill_layer(repo, opts, &tree)?,
        ..LayerApplied::default()
    };
    let base = match &opts.single_index {
        Some(index) => opts.restore.target.join(index),
        None => opts.restore.target.clone(),
    };
    fs::create_dir_all(&base).map_err(|e| Error::io(&base, e))?;
    let dir = DirFd::open(&base).map_err(|e| Error::io(&base, e))?;
    if !dir.names().map_err(|e| Error::io(&base, e))?.is_empty() {
        if !opts.restore.overwrite {
            return Err(Error::Usage(format!(
                "{} is not empty: give --overwrite to replace what it holds",
                base.display()
            )));
        }
        dir.remove_contents().map_err(|e| Error::io(&base, e))?;
    }
    apply_dir(&tree, &dir, &base, &mut applied, &mut HashMap::new())?;
    finish(&tree, Entry::Open(dir.as_fd()), &base, &mut applied)?;
    Ok(Materialized {
        restore: None,
        layer: applied,
    })
}

/// The least cache a fill reads through (read-ahead windows and their
/// chunks).
const FILL_CACHE: u64 = 256 << 20;

/// Fills every block the layer's files still owe the snapshot, through
/// the mount's cache (or a cache of its own). Returns the bytes filled.
fn fill_layer(repo: &Repo, opts: &MaterializeOptions, tree: &Path) -> Result<u64> {
    let reader = repo.reader();
    let shown = block_on(Shown::load(reader, &opts.restore.snapshot, &opts.indices))?;
    let own_cache = opts.upper.join("fill-cache");
    let slack = reader.config.pack_size;
    let cache = match &opts.restore.cache {
        // The mount's cache is read and topped up, never grown past what
        // it holds already (its bound is the mount's to set).
        Some(dir) => {
            let held = DiskCache::open(dir, u64::MAX / 2, slack)?.total();
            DiskCache::open(dir, held.max(FILL_CACHE), slack)?
        }
        None => DiskCache::open(&own_cache, FILL_CACHE, slack)?,
    };
    let lower = Arc::new(blocks::Lower {
        inodes: shown.inodes,
        repo: reader.clone(),
        index: shown.index,
        cache: Arc::new(cache.keyed_by(reader.sealing().ids())),
    });
    let filled = block_on(fill_dir(tree, &lower));
    lower.cache.flush();
    let _ = fs::remove_dir_all(&own_cache);
    filled
}

async fn fill_dir(dir: &Path, lower: &Arc<blocks::Lower>) -> Result<u64> {
    let mut filled = 0;
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if kind.is_dir() {
            filled += Box::pin(fill_dir(&path, lower)).await?;
        } else if kind.is_file() {
            filled += blocks::hydrate::fill_whole(&path, lower.clone())
                .await
                .map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(filled)
}

/// Where an overlay with upper folder `layer` is mounted, if one is.
fn mounted_over(layer: &Path) -> Option<String> {
    let layer = fs::canonicalize(layer).ok()?;
    // /proc/self/mounts escapes spaces, tabs, newlines and backslashes.
    let escaped = layer
        .to_string_lossy()
        .replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
        .replace('\n', "\\012");
    let wanted = format!("upperdir={escaped}");
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter(|l| l.starts_with("overlay "))
        .find(|l| {
            let options = l.split(' ').nth(3).unwrap_or_default();
            options.split(',').any(|o| o == wanted)
        })
        .and_then(|l| l.split(' ').nth(1).map(str::to_string))
}

/// Refuses a layer with entries that point into the lower layer, or
/// names that are not UTF-8, before anything is written.
fn check_layer(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.file_name().and_then(|n| n.to_str()).is_none() {
            return Err(Error::UnsupportedLayer {
                path,
                what: "a name that is not UTF-8".into(),
            });
        }
        let attrs = xattrs::read(&path).map_err(|e| Error::io(&path, e))?;
        if let Some(a) = NEEDS_LOWER.iter().find(|a| attrs.contains_key(**a)) {
            return Err(Error::UnsupportedLayer {
                path,
                what: format!(
                    "overlayfs recorded it with {a} (a renamed folder or a metadata-only copy), \
                     which materialize cannot apply; copy the mounted folder instead (`cp -a`)"
                ),
            });
        }
        let meta = fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.is_dir() {
            check_layer(&path)?;
        }
    }
    Ok(())
}

/// A whiteout: overlayfs's mark of a deleted path.
fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// The first target place of each layer file with more than one link,
/// by (device, inode): its other names are linked to it, as they were.
type Linked = HashMap<(u64, u64), (DirFd, String)>;

/// Lays the layer's folder `from` over the target folder `to` (at
/// `to_path`, for messages).
fn apply_dir(
    from: &Path,
    to: &DirFd,
    to_path: &Path,
    applied: &mut LayerApplied,
    linked: &mut Linked,
) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(from)
        .map_err(|e| Error::io(from, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(from, e))?;
    names.sort();
    for name in names {
        let src = from.join(&name);
        let name = name.to_str().expect("checked by check_layer");
        let dest = to_path.join(name);
        let err = |e| Error::io(&dest, e);
        let meta = fs::symlink_metadata(&src).map_err(|e| Error::io(&src, e))?;
        let kind = meta.file_type();
        if is_whiteout(&meta) {
            to.remove(name).map_err(err)?;
            applied.deleted += 1;
        } else if kind.is_dir() {
            let attrs = xattrs::read(&src).map_err(|e| Error::io(&src, e))?;
            if opaque(&attrs) && to.kind(name).map_err(err)?.is_some() {
                to.remove(name).map_err(err)?;
                applied.replaced_dirs += 1;
            }
            to.ensure_dir(name, 0o700).map_err(err)?;
            let child = to.child_dir(name).map_err(err)?;
            apply_dir(&src, &child, &dest, applied, linked)?;
            finish(&src, Entry::Open(child.as_fd()), &dest, applied)?;
            applied.dirs += 1;
        } else if let Some((dir, first)) = linked.get(&(meta.dev(), meta.ino())) {
            to.hard_link(name, dir, first).map_err(err)?;
            applied.hard_links += 1;
        } else if kind.is_file() {
            if meta.nlink() > 1 {
                let here = to.dir("").map_err(err)?;
                linked.insert((meta.dev(), meta.ino()), (here, name.to_string()));
            }
            let mut input = fs::File::open(&src).map_err(|e| Error::io(&src, e))?;
            let mut out = to.replace_with_new(name).map_err(err)?;
            std::io::copy(&mut input, &mut out).map_err(err)?;
            finish(&src, Entry::Open(out.as_fd()), &dest, applied)?;
            applied.files += 1;
        } else if kind.is_symlink() {
            let target = fs::read_link(&src).map_err(|e| Error::io(&src, e))?;
            let Some(target) = target.to_str() else {
                return Err(Error::UnsupportedLayer {
                    path: src,
                    what: "a link target that is not UTF-8".into(),
                });
            };
            to.symlink(name, target, mtime_ns(&meta)).map_err(err)?;
            to.chown_at(name, Some(meta.uid()), Some(meta.gid()))
                .map_err(err)?;
            applied.symlinks += 1;
        } else if let Some(special) = special(&kind) {
            to.mknod(name, special, meta.rdev()).map_err(err)?;
            finish(&src, Entry::At(to, name), &dest, applied)?;
            applied.specials += 1;
        } else {
            applied
                .notes
                .push(format!("{}: a socket, not materialized", dest.display()));
        }
    }
    Ok(())
}

fn opaque(attrs: &BTreeMap<String, String>) -> bool {
    // Values are base64: "y" is "eQ==".
    attrs.get(OPAQUE).is_some_and(|v| v == "eQ==")
}

fn special(kind: &fs::FileType) -> Option<Special> {
    if kind.is_fifo() {
        Some(Special::Fifo)
    } else if kind.is_char_device() {
        Some(Special::CharDevice)
    } else if kind.is_block_device() {
        Some(Special::BlockDevice)
    } else {
        None
    }
}

fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.mtime() * 1_000_000_000 + meta.mtime_nsec()
}

/// A target entry to finish: open, or a name in a folder (fifos and
/// devices, never opened).
enum Entry<'a> {
    Open(BorrowedFd<'a>),
    At(&'a DirFd, &'a str),
}

/// Gives the target entry the layer entry's owner, extended attributes
/// (overlayfs's own left out), mode and mtime, in that order (a `chown`
/// clears set-id bits and `security.capability`).
fn finish(src: &Path, entry: Entry, dest: &Path, applied: &mut LayerApplied) -> Result<()> {
    let meta = fs::symlink_metadata(src).map_err(|e| Error::io(src, e))?;
    let mut attrs = xattrs::read(src).map_err(|e| Error::io(src, e))?;
    attrs.retain(|k, _| !k.starts_with(OVERLAY_XATTRS) && !k.starts_with(blocks::OWN_XATTRS));
    let (uid, gid) = (Some(meta.uid()), Some(meta.gid()));
    let (mode, mtime) = (meta.mode() & 0o7777, mtime_ns(&meta));
    let failed = match entry {
        Entry::Open(fd) => (|| {
            let to_uid = uid.map(rustix::fs::Uid::from_raw);
            let to_gid = gid.map(rustix::fs::Gid::from_raw);
            rustix::fs::fchown(fd, to_uid, to_gid)?;
            let failed = xattrs::set_on(fd, &attrs);
            set_meta(fd, mode, mtime)?;
            Ok(failed)
        })(),
        Entry::At(dir, name) => (|| {
            dir.chown_at(name, uid, gid)?;
            let failed = xattrs::set_at(dir, name, &attrs);
            dir.set_meta_at(name, mode, mtime)?;
            Ok(failed)
        })(),
    }
    .map_err(|e: std::io::Error| Error::io(dest, e))?;
    for f in failed {
        applied.notes.push(format!(
            "{}: extended attribute not set: {f}",
            dest.display()
        ));
    }
    Ok(())
}
