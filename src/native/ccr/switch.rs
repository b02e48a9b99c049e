//! The two file-system steps of an atomic switch: a hard-linked copy of a
//! folder (new names, same inodes: no data is copied), and the exchange
//! of two folders in one `renameat2(RENAME_EXCHANGE)`.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use rayon::prelude::*;
use rustix::fs::{renameat_with, AtFlags, FileType, Mode, OFlags, RenameFlags, CWD};

/// Makes `to` (which must not exist) a copy of the folder tree `from`
/// whose files are hard links to `from`'s: folders are new (with their
/// modes), symlinks are recreated, files share their inodes. Whoever
/// changes a file of `to` must replace it, never write into it.
///
/// Names are resolved against open folder handles (no path walk per
/// file), and subfolders are linked in parallel: a follower makes this
/// copy of its whole folder at every apply.
pub fn link_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    fs::DirBuilder::new()
        .mode(meta.permissions().mode() & 0o7777)
        .create(to)?;
    link_dir(
        &open_dir(CWD, from.as_os_str())?,
        &open_dir(CWD, to.as_os_str())?,
    )
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

fn open_dir(at: impl AsFd, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(at, name, DIR_FLAGS, Mode::empty())?)
}

/// Links the entries of folder `src` into the empty folder `dst`.
fn link_dir(src: &OwnedFd, dst: &OwnedFd) -> io::Result<()> {
    let mut folders = Vec::new();
    let mut dir = rustix::fs::Dir::read_from(src)?;
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => {
                let st = rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW)?;
                FileType::from_raw_mode(st.st_mode)
            }
            k => k,
        };
        match kind {
            FileType::Directory => {
                let st = rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW)?;
                let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
                rustix::fs::mkdirat(dst, name, mode)?;
                folders.push(name.to_owned());
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(src, name, Vec::new())?;
                rustix::fs::symlinkat(target.as_c_str(), dst, name)?;
            }
            _ => rustix::fs::linkat(src, name, dst, name, AtFlags::empty())?,
        }
    }
    folders
        .par_iter()
        .try_for_each(|name| link_dir(&open_dir(src, name)?, &open_dir(dst, name)?))
}

/// Swaps the folders at `a` and `b` in one step: every path lookup sees
/// either both old or both new (Linux 3.15+; both on one file system).
pub fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    /// Every file of the copy is the original's inode, every folder a new
    /// one with the original's mode, every symlink points where it did.
    #[test]
    fn a_linked_copy_shares_files_and_copies_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        for d in ["a/b/c", "a/d", "e"] {
            fs::create_dir_all(from.join(d)).unwrap();
        }
        for (i, f) in ["top", "a/one", "a/b/two", "a/b/c/three", "a/d/four"]
            .iter()
            .enumerate()
        {
            fs::write(from.join(f), vec![i as u8; i * 100]).unwrap();
        }
        std::os::unix::fs::symlink("b/two", from.join("a/link")).unwrap();
        fs::set_permissions(from.join("a/d"), fs::Permissions::from_mode(0o700)).unwrap();
        let to = dir.path().join("to");
        link_tree(&from, &to).unwrap();

        let mut seen = 0;
        let mut walk = vec![std::path::PathBuf::new()];
        while let Some(rel) = walk.pop() {
            for e in fs::read_dir(from.join(&rel)).unwrap() {
                let rel = rel.join(e.unwrap().file_name());
                let (a, b) = (
                    fs::symlink_metadata(from.join(&rel)).unwrap(),
                    fs::symlink_metadata(to.join(&rel)).unwrap(),
                );
                assert_eq!(a.file_type(), b.file_type(), "{rel:?}");
                if a.is_dir() {
                    assert_ne!(a.ino(), b.ino(), "{rel:?}");
                    assert_eq!(a.mode(), b.mode(), "{rel:?}");
                    walk.push(rel);
                } else if a.file_type().is_symlink() {
                    let target = fs::read_link(to.join(&rel)).unwrap();
                    assert_eq!(fs::read_link(from.join(&rel)).unwrap(), target);
                } else {
                    assert_eq!(a.ino(), b.ino(), "{rel:?}");
                }
                seen += 1;
            }
        }
        assert_eq!(seen, 11);
        assert_eq!(fs::read_dir(&to).unwrap().count(), 3);
        // The copy must not exist beforehand.
        assert!(link_tree(&from, &to).is_err());
    }
}
