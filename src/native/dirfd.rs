//! File operations relative to an open directory handle that never follow a
//! symbolic link below it.
//!
//! Restore writes into folders that other users (or the snapshot itself) may
//! have filled with links. Every path below a [`DirFd`] is resolved one
//! component at a time with `O_NOFOLLOW|O_DIRECTORY`, files are created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW` after what stood there was removed (never
//! opened), and metadata is set on handles or with no-follow calls. A link
//! planted anywhere below the handle therefore makes an operation fail or
//! replaces the link itself; it is never followed out of the tree.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, CWD};

/// An open directory.
#[derive(Debug)]
pub struct DirFd(OwnedFd);

/// What a name below a directory is, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    /// A FIFO, socket or device: never opened for reading.
    Other,
}

/// What `lstat` says of a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub size: u64,
    pub mtime_ns: i64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Names the inode has (`st_nlink`).
    pub links: u64,
}

fn kind_of(t: FileType) -> Kind {
    match t {
        FileType::Directory => Kind::Dir,
        FileType::RegularFile => Kind::File,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Other,
    }
}

/// Nanoseconds since the epoch as a timespec (negative times included).
pub fn timespec(ns: i64) -> Timespec {
    Timespec {
        tv_sec: ns.div_euclid(1_000_000_000),
        tv_nsec: ns.rem_euclid(1_000_000_000) as _,
    }
}

fn times(mtime_ns: i64) -> Timestamps {
    // atime = mtime, as a snapshot records only the mtime.
    Timestamps {
        last_access: timespec(mtime_ns),
        last_modification: timespec(mtime_ns),
    }
}

/// Splits `a/b/c` into (`a/b`, `c`); a single name has an empty parent.
pub fn split_parent(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

fn not_a_dir(rel: &str) -> io::Error {
    io::Error::other(format!(
        "{rel} is not a folder (a link or file stands on the way)"
    ))
}

impl DirFd {
    /// Opens the folder at `path` (a path the user chose: links in it are
    /// the user's to follow).
    pub fn open(path: &Path) -> io::Result<DirFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Ok(DirFd(rustix::fs::open(path, flags, Mode::empty())?))
    }

    /// Opens the folder `rel` below this one, one component at a time,
    /// refusing links. An empty `rel` is this folder.
    pub fn dir(&self, rel: &str) -> io::Result<DirFd> {
        let mut current = DirFd(self.0.try_clone()?);
        for name in rel.split('/').filter(|n| !n.is_empty()) {
            current = current.child_dir(name).map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR)
                {
                    not_a_dir(rel)
                } else {
                    e
                }
            })?;
        }
        Ok(current)
    }

    /// Opens the child folder `name`, refusing a link.
    pub fn child_dir(&self, name: impl AsRef<OsStr>) -> io::Result<DirFd> {
        Ok(DirFd(rustix::fs::openat(
            &self.0,
            name.as_ref(),
            DIR_FLAGS,
            Mode::empty(),
        )?))
    }

    /// What `name` is, without following it; `None` when it does not exist.
    pub fn kind(&self, name: impl AsRef<OsStr>) -> io::Result<Option<Kind>> {
        Ok(self.meta(name)?.map(|m| m.kind))
    }

    /// `name`'s metadata, without following it; `None` when it does not
    /// exist.
    pub fn meta(&self, name: impl AsRef<OsStr>) -> io::Result<Option<Meta>> {
        match rustix::fs::statat(&self.0, name.as_ref(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Meta {
                kind: kind_of(FileType::from_raw_mode(st.st_mode)),
                size: st.st_size as u64,
                mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec as i64,
                mode: st.st_mode & 0o7777,
                uid: st.st_uid,
                gid: st.st_gid,
                links: st.st_nlink,
            })),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates `name` as a new, empty regular file (mode 0600 until its
    /// metadata is set). Fails if anything stands there, a link included.
    pub fn create_new(&self, name: &str) -> io::Result<File> {
        self.create_new_with_mode(name, 0o600)
    }

    /// Creates `name` as a new, empty regular file with `mode` (less the
    /// umask). Fails if anything stands there, a link included.
    pub fn create_new_with_mode(&self, name: &str, mode: u32) -> io::Result<File> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.0, name, flags, Mode::from_raw_mode(mode))?;
        Ok(File::from(fd))
    }

    /// Creates `name` as a new regular file (mode 0600), removing whatever
    /// stood there first.
    pub fn replace_with_new(&self, name: &str) -> io::Result<File> {
        self.replace_with_new_with_mode(name, 0o600)
    }

    /// Creates `name` as a new regular file with `mode` (less the umask),
    /// removing whatever stood there first. The create is tried first: it
    /// fails on anything standing there (`O_EXCL`, a link included), and
    /// most names are new.
    pub fn replace_with_new_with_mode(&self, name: &str, mode: u32) -> io::Result<File> {
        match self.create_new_with_mode(name, mode) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.remove(name)?;
                self.create_new_with_mode(name, mode)
            }
            r => r,
        }
    }

    /// Opens the existing regular file `name` for writing; a link, FIFO or
    /// device there is refused (and never opened).
    pub fn open_existing_for_write(&self, name: &str) -> io::Result<File> {
        let flags = OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.0, name, flags, Mode::empty())?;
        require_regular(fd)
    }

    /// Opens the regular file `name` for reading. Links are refused and
    /// FIFOs cannot block the open (`O_NONBLOCK`) and are refused after it.
    pub fn open_for_read(&self, name: &str) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.0, name, flags, Mode::empty())?;
        require_regular(fd)
    }

    /// Opens the regular file at `rel` below this folder for reading,
    /// following no link on the way.
    pub fn open_path_for_read(&self, rel: &str) -> io::Result<File> {
        let (parent, name) = split_parent(rel);
        self.dir(parent)?.open_for_read(name)
    }

    /// Makes `name` a folder: an existing folder is kept, anything else
    /// (file, link) is removed first. A new folder gets `mode` (less the
    /// umask).
    pub fn ensure_dir(&self, name: &str, mode: u32) -> io::Result<()> {
        match self.kind(name)? {
            Some(Kind::Dir) => return Ok(()),
            Some(_) => self.remove(name)?,
            None => {}
        }
        match rustix::fs::mkdirat(&self.0, name, Mode::from_raw_mode(mode)) {
            Err(rustix::io::Errno::EXIST) if self.kind(name)? == Some(Kind::Dir) => Ok(()),
            r => r.map_err(Into::into),
        }
    }

    /// Creates the new folder `name`; fails if anything stands there.
    pub fn create_dir(&self, name: &str, mode: u32) -> io::Result<()> {
        Ok(rustix::fs::mkdirat(
            &self.0,
            name,
            Mode::from_raw_mode(mode),
        )?)
    }

    /// Removes `name` whatever it is (a folder with everything in it),
    /// following no link; nothing there is not an error.
    pub fn remove(&self, name: impl AsRef<OsStr>) -> io::Result<()> {
        let name = name.as_ref();
        match self.kind(name)? {
            None => Ok(()),
            Some(Kind::Dir) => {
                let child = self.child_dir(name)?;
                child.remove_contents()?;
                unlink(&self.0, name, AtFlags::REMOVEDIR)
            }
            Some(_) => unlink(&self.0, name, AtFlags::empty()),
        }
    }

    /// Removes everything in this folder.
    pub fn remove_contents(&self) -> io::Result<()> {
        for name in self.names()? {
            self.remove(&name)?;
        }
        Ok(())
    }

    /// The names in this folder (without `.` and `..`).
    pub fn names(&self) -> io::Result<Vec<std::ffi::OsString>> {
        let mut out = Vec::new();
        let mut dir = rustix::fs::Dir::read_from(&self.0)?;
        while let Some(entry) = dir.read() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                out.push(OsStr::from_bytes(name).to_owned());
            }
        }
        Ok(out)
    }

    /// Moves `from` (in this folder) to `to` in `dest`, replacing a file or
    /// link there (never following it).
    pub fn rename_to(&self, from: &str, dest: &DirFd, to: &str) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.0, from, &dest.0, to)?)
    }

    /// Moves the file `from` (in this folder) to `to` in `dest`, replacing
    /// whatever stands there: a file or link by the rename itself, a
    /// folder (with everything in it) removed first. The rename is tried
    /// first: a file cannot replace a folder (`EISDIR`), and most names
    /// are new or files.
    pub fn move_file_to(&self, from: &str, dest: &DirFd, to: &str) -> io::Result<()> {
        match self.rename_to(from, dest, to) {
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
                dest.remove(to)?;
                self.rename_to(from, dest, to)
            }
            r => r,
        }
    }

    /// The group id this folder has.
    pub fn group(&self) -> io::Result<u32> {
        Ok(rustix::fs::fstat(&self.0)?.st_gid)
    }

    /// Creates the symbolic link `name` pointing at `target`, replacing
    /// what stood there, with its mtime (the link's own, not its target's).
    pub fn symlink(&self, name: &str, target: &str, mtime_ns: i64) -> io::Result<()> {
        self.remove(name)?;
        rustix::fs::symlinkat(target, &self.0, name)?;
        rustix::fs::utimensat(&self.0, name, &times(mtime_ns), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }

    /// Sets this folder's own mode and mtime.
    pub fn set_meta(&self, mode: u32, mtime_ns: i64) -> io::Result<()> {
        set_meta(&self.0, mode, mtime_ns)
    }

    /// This folder's device and inode.
    pub fn identity(&self) -> io::Result<(u64, u64)> {
        let st = rustix::fs::fstat(&self.0)?;
        Ok((st.st_dev, st.st_ino))
    }
}

impl AsFd for DirFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// What a special file is, for [`DirFd::mknod`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Fifo,
    CharDevice,
    BlockDevice,
}

impl DirFd {
    /// Makes `name` a hard link to `from` in `src`, replacing what stood
    /// at `name`. Neither name is followed if it is a link.
    pub fn hard_link(&self, name: &str, src: &DirFd, from: &str) -> io::Result<()> {
        self.remove(name)?;
        Ok(rustix::fs::linkat(
            &src.0,
            from,
            &self.0,
            name,
            AtFlags::empty(),
        )?)
    }

    /// Creates the fifo or device `name` (private until its mode is set),
    /// replacing what stood there.
    pub fn mknod(&self, name: &str, kind: Special, rdev: u64) -> io::Result<()> {
        self.remove(name)?;
        let file_type = match kind {
            Special::Fifo => FileType::Fifo,
            Special::CharDevice => FileType::CharacterDevice,
            Special::BlockDevice => FileType::BlockDevice,
        };
        let mode = Mode::from_raw_mode(0o600);
        Ok(rustix::fs::mknodat(
            &self.0, name, file_type, mode, rdev as _,
        )?)
    }

    /// Sets the owner of `name` itself (a link is not followed).
    pub fn chown_at(&self, name: &str, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        let uid = uid.map(rustix::fs::Uid::from_raw);
        let gid = gid.map(rustix::fs::Gid::from_raw);
        Ok(rustix::fs::chownat(
            &self.0,
            name,
            uid,
            gid,
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Sets the mode and mtime of `name`, which must not be a link: it is
    /// opened as a path only (`O_PATH|O_NOFOLLOW`, which neither blocks on
    /// a fifo nor opens a device) and changed through that handle.
    pub fn set_meta_at(&self, name: &str, mode: u32, mtime_ns: i64) -> io::Result<()> {
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.0, name, flags, Mode::empty())?;
        if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) == FileType::Symlink {
            return Err(io::Error::other(format!("{name} became a link")));
        }
        let by_handle = format!("/proc/self/fd/{}", fd.as_raw_fd());
        rustix::fs::chmod(&by_handle, Mode::from_raw_mode(mode))?;
        rustix::fs::utimensat(&self.0, name, &times(mtime_ns), AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }
}

fn unlink(dir: &OwnedFd, name: &OsStr, flags: AtFlags) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, flags) {
        Err(rustix::io::Errno::NOENT) => Ok(()),
        r => r.map_err(Into::into),
    }
}

fn require_regular(fd: OwnedFd) -> io::Result<File> {
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(File::from(fd))
}

/// Sets the mode and mtime of an open file or folder.
pub fn set_meta(fd: impl AsFd, mode: u32, mtime_ns: i64) -> io::Result<()> {
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    set_mtime(fd, mtime_ns)
}

/// Sets the mtime (and atime) of an open file or folder.
pub fn set_mtime(fd: impl AsFd, mtime_ns: i64) -> io::Result<()> {
    Ok(rustix::fs::futimens(&fd, &times(mtime_ns))?)
}

/// Whether `path` exists (without following a final link), for callers
/// outside a handle.
pub fn exists_nofollow(path: &Path) -> bool {
    rustix::fs::statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn links_on_the_way_are_refused_and_links_in_place_replaced() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"keep").unwrap();
        let root = t.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("via")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("file")).unwrap();
        let d = DirFd::open(&root).unwrap();

        assert!(d.dir("via").is_err());
        assert!(d.open_path_for_read("via/secret").is_err());
        assert!(d.create_new("file").is_err(), "O_EXCL refuses the link");
        assert!(d.open_existing_for_write("file").is_err());
        let mut f = d.replace_with_new("file").unwrap();
        f.write_all(b"new").unwrap();
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"keep");
        assert_eq!(std::fs::read(root.join("file")).unwrap(), b"new");

        d.ensure_dir("via", 0o755).unwrap();
        assert!(root.join("via").is_dir() && !root.join("via").is_symlink());
        assert!(outside.join("secret").exists());
        d.symlink("via", "/etc", 5).unwrap();
        d.remove("via").unwrap();
        assert!(
            outside.join("secret").exists(),
            "removing a link keeps its target"
        );
    }

    #[test]
    fn a_moved_file_replaces_a_file_a_link_or_a_whole_folder_there() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"keep").unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("stage")).unwrap();
        std::fs::write(root.join("file"), b"old").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("link")).unwrap();
        std::fs::create_dir_all(root.join("folder/deeper")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("folder/deeper/out")).unwrap();
        let d = DirFd::open(&root).unwrap();
        let stage = d.child_dir("stage").unwrap();
        for name in ["file", "link", "folder", "new"] {
            let mut f = stage.replace_with_new_with_mode("temp", 0o640).unwrap();
            f.write_all(name.as_bytes()).unwrap();
            stage.move_file_to("temp", &d, name).unwrap();
            let path = root.join(name);
            assert!(!path.is_symlink() && path.is_file(), "{name}");
            assert_eq!(std::fs::read(&path).unwrap(), name.as_bytes());
        }
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"keep");
        assert!(stage.names().unwrap().is_empty());
    }

    #[test]
    fn a_new_file_replaces_what_stood_there_with_the_mode_asked() {
        let t = tempfile::tempdir().unwrap();
        let d = DirFd::open(t.path()).unwrap();
        std::fs::create_dir_all(t.path().join("was-a-folder/inside")).unwrap();
        std::fs::write(t.path().join("was-a-file"), b"old").unwrap();
        let umask = crate::native::owners::umask().unwrap();
        for name in ["was-a-folder", "was-a-file", "new"] {
            let f = d.replace_with_new_with_mode(name, 0o640).unwrap();
            let mode = f.metadata().unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, 0o640 & !umask, "{name}");
            assert_eq!(f.metadata().unwrap().len(), 0);
        }
    }

    #[test]
    fn fifos_are_never_opened_for_reading() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let d = DirFd::open(t.path()).unwrap();
        assert!(d.open_for_read("fifo").is_err());
        assert_eq!(d.kind("fifo").unwrap(), Some(Kind::Other));
    }

    #[test]
    fn removal_of_a_tree_does_not_follow_links_inside_it() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("x"), b"1").unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a/b/link")).unwrap();
        let d = DirFd::open(&root).unwrap();
        d.remove("a").unwrap();
        assert!(!root.join("a").exists());
        assert!(outside.join("x").exists());
    }

    #[test]
    fn negative_times_split_into_seconds_and_nanoseconds() {
        let ts = timespec(-1);
        assert_eq!((ts.tv_sec, ts.tv_nsec), (-1, 999_999_999));
        let ts = timespec(1_500_000_000);
        assert_eq!((ts.tv_sec, ts.tv_nsec), (1, 500_000_000));
    }
}
