//! The two file-system steps of an atomic switch: a hard-linked copy of a
//! folder (new names, same inodes: no data is copied), and the exchange
//! of two folders in one `renameat2(RENAME_EXCHANGE)`.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{renameat_with, RenameFlags, CWD};

/// Makes `to` (which must not exist) a copy of the folder tree `from`
/// whose files are hard links to `from`'s: folders are new (with their
/// modes), symlinks are recreated, files share their inodes. Whoever
/// changes a file of `to` must replace it, never write into it.
pub fn link_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    fs::DirBuilder::new()
        .mode(meta.permissions().mode() & 0o7777)
        .create(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            link_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else {
            fs::hard_link(&src, &dst)?;
        }
    }
    Ok(())
}

/// Swaps the folders at `a` and `b` in one step: every path lookup sees
/// either both old or both new (Linux 3.15+; both on one file system).
pub fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(io::Error::from)
}
