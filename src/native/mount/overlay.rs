//! `mount --writable --writable-layer overlayfs --upper DIR`: Linux overlayfs over the read-only
//! snapshot mount, so a service can start on a backup at once and write
//! while its data streams in. `DIR` holds three folders: `lower` (where the
//! FUSE mount goes), `upper` (every change: new and modified files,
//! whiteouts for deletions) and `work` (overlayfs's own). The repository is
//! never written; the changes stay in `DIR/upper` after unmount and carry
//! over to the next writable mount of the same snapshot.

use std::fs;
use std::path::{Path, PathBuf};

use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

use crate::native::error::{Error, Result};

/// Names the snapshot whose changes `DIR/upper` holds.
const STAMP: &str = "snapshot";

/// The folders of a writable mount.
#[derive(Debug, Clone)]
pub struct Layers {
    pub lower: PathBuf,
    pub upper: PathBuf,
    work: PathBuf,
}

impl Layers {
    /// The folders of a writable mount over `dir` (not created).
    pub fn at(dir: &Path) -> Layers {
        Layers {
            lower: dir.join("lower"),
            upper: dir.join("upper"),
            work: dir.join("work"),
        }
    }

    /// Creates (or reuses) the folders in `dir`.
    pub fn prepare(dir: &Path) -> Result<Layers> {
        let text = dir.to_string_lossy();
        if text.contains(',') || text.contains(':') {
            return Err(Error::Usage(format!(
                "--upper {text}: overlayfs cannot take a path with ',' or ':'"
            )));
        }
        let layers = Layers::at(dir);
        for d in [&layers.lower, &layers.upper, &layers.work] {
            fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        Ok(layers)
    }
}

/// Creates `dir` if need be and marks it as holding changes over snapshot
/// `uuid` (`name` for messages); refuses a `dir` that holds changes over
/// another snapshot.
pub fn stamp(dir: &Path, uuid: &str, name: &str) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    match check_stamp(dir, uuid, name) {
        Err(Error::NoWritableLayer { .. }) => {
            let stamp = dir.join(STAMP);
            fs::write(&stamp, uuid).map_err(|e| Error::io(&stamp, e))
        }
        other => other,
    }
}

/// Whether `dir` holds a writable layer's changes over snapshot `uuid`
/// (`name` for messages): `NoWritableLayer` when it holds none, `Usage`
/// when they are over another snapshot.
pub fn check_stamp(dir: &Path, uuid: &str, name: &str) -> Result<()> {
    let text = dir.display();
    match fs::read_to_string(dir.join(STAMP)) {
        Ok(held) if held.trim() != uuid => Err(Error::Usage(format!(
            "--upper {text} holds changes over another snapshot (uuid {}), not [{name}]: \
             give another folder, or remove it to start afresh",
            held.trim()
        ))),
        Ok(_) => Ok(()),
        Err(_) => Err(Error::NoWritableLayer {
            dir: dir.to_path_buf(),
        }),
    }
}

/// A mounted overlay; detached when dropped (open files keep working
/// until closed).
pub struct Overlay {
    target: PathBuf,
}

impl Overlay {
    /// Mounts the overlay; its root takes the lower root's owner and mode
    /// (overlayfs shows the upper folder's, and a service such as
    /// PostgreSQL refuses a data folder it does not own).
    pub fn mount(layers: &Layers, target: &Path) -> Result<Overlay> {
        let lower = fs::metadata(&layers.lower).map_err(|e| Error::io(&layers.lower, e))?;
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let upper = &layers.upper;
            std::os::unix::fs::chown(upper, Some(lower.uid()), Some(lower.gid()))
                .map_err(|e| Error::io(upper, e))?;
            fs::set_permissions(upper, fs::Permissions::from_mode(lower.mode() & 0o7777))
                .map_err(|e| Error::io(upper, e))?;
        }
        // No redirects or metadata-only copies, whatever the kernel's
        // defaults: both point into the lower layer, so `materialize`
        // could not lay the upper folder over a restore (a folder renamed
        // through the mount is then copied, as `mv` does across file
        // systems).
        let options = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off",
            layers.lower.display(),
            layers.upper.display(),
            layers.work.display()
        );
        let options = std::ffi::CString::new(options)
            .map_err(|_| Error::Usage("a layer path holds a NUL byte".into()))?;
        mount(
            "overlay",
            target,
            "overlay",
            MountFlags::empty(),
            options.as_c_str(),
        )
        .map_err(|e| {
            Error::Usage(format!(
                "cannot mount the writable layer (overlayfs) on {}: {e} (it needs root, or a user \
                 namespace that allows it)",
                target.display()
            ))
        })?;
        Ok(Overlay {
            // As /proc/self/mounts names it.
            target: fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf()),
        })
    }
}

impl Overlay {
    /// Whether the overlay is still mounted (`umount` from outside ends
    /// the mount).
    pub fn is_mounted(&self) -> bool {
        let target = self.target.to_string_lossy();
        fs::read_to_string("/proc/self/mounts").is_ok_and(|m| {
            m.lines()
                .any(|l| l.starts_with("overlay ") && l.split(' ').nth(1) == Some(&target))
        })
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = unmount(&self.target, UnmountFlags::DETACH);
    }
}
