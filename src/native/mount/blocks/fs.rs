//! [`LayerFs`]: the writable mount's FUSE filesystem, a pass-through to
//! the layer's tree (each inode held by an `O_PATH` handle, every change
//! made with the `*at` calls on it) in which a file that owes blocks to
//! the snapshot is filled through its [`Fill`] before a read or write
//! touches them. Names, owners, modes and links are the tree's own; the
//! kernel checks permissions (`default_permissions`) and this process,
//! running as root, gives new entries to the caller.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fuser::{Errno, FileAttr, FileHandle, FileType, INodeNo, Request, TimeOrNow};
use rustix::fs::{AtFlags, Mode, OFlags, Stat};

use super::hydrate::{Fill, Fills};
use super::sys::{attr, errno, kind_of_type, proc_path, timespec};
use super::Lower;
use crate::native::mount::fs::Counters;

/// The tree changes only through this mount, which keeps the kernel told.
pub const TTL: Duration = Duration::from_secs(1);

pub type Answer<T> = Result<T, Errno>;

/// The writable mount's filesystem.
pub struct LayerFs {
    pub(super) root_ino: u64,
    pub(super) dev: u64,
    pub(super) nodes: Mutex<HashMap<u64, NodeRef>>,
    pub(super) files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    pub(super) dirs: Mutex<HashMap<u64, Arc<Vec<DirEntry>>>>,
    pub(super) fills: Arc<Fills>,
    pub(super) next_fh: AtomicU64,
    pub(super) runtime: tokio::runtime::Handle,
    pub counters: Arc<Counters>,
}

pub struct NodeRef {
    pub fd: Arc<OwnedFd>,
    pub lookups: u64,
}

pub struct OpenFile {
    pub file: Arc<File>,
    pub fill: Option<Arc<Fill>>,
}

pub struct DirEntry {
    pub ino: u64,
    pub kind: FileType,
    pub name: OsString,
}

impl LayerFs {
    /// The filesystem of the layer tree at `tree`, filling from `lower`.
    pub fn new(tree: &Path, lower: Lower, runtime: tokio::runtime::Handle) -> io::Result<LayerFs> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let root = rustix::fs::open(tree, flags, Mode::empty())?;
        let st = rustix::fs::fstat(&root)?;
        let mut nodes = HashMap::new();
        nodes.insert(
            1,
            NodeRef {
                fd: Arc::new(root),
                lookups: u64::MAX / 2,
            },
        );
        Ok(LayerFs {
            root_ino: st.st_ino,
            dev: st.st_dev,
            nodes: Mutex::new(nodes),
            files: Mutex::default(),
            dirs: Mutex::default(),
            fills: Arc::new(Fills::new(Arc::new(lower))),
            next_fh: AtomicU64::new(1),
            runtime,
            counters: Arc::default(),
        })
    }

    pub(super) fn fd(&self, ino: INodeNo) -> Answer<Arc<OwnedFd>> {
        let nodes = self.nodes.lock().unwrap();
        nodes.get(&ino.0).map(|n| n.fd.clone()).ok_or(Errno::ESTALE)
    }

    pub(super) fn fuse_ino(&self, st: &Stat) -> Answer<u64> {
        match st.st_ino {
            _ if st.st_dev != self.dev => Err(Errno::EXDEV),
            ino if ino == self.root_ino => Ok(1),
            1 => Err(Errno::EIO),
            ino => Ok(ino),
        }
    }

    /// Takes `fd` (a handle on `name` just looked up or made) into the
    /// table, counting one lookup the kernel will forget.
    pub(super) fn remember(&self, fd: OwnedFd) -> Answer<FileAttr> {
        let st = rustix::fs::fstat(&fd).map_err(errno)?;
        let ino = self.fuse_ino(&st)?;
        let mut nodes = self.nodes.lock().unwrap();
        nodes
            .entry(ino)
            .or_insert_with(|| NodeRef {
                fd: Arc::new(fd),
                lookups: 0,
            })
            .lookups += 1;
        Ok(attr(ino, &st))
    }

    pub(super) fn look_up(&self, parent: INodeNo, name: &OsStr) -> Answer<FileAttr> {
        let dir = self.fd(parent)?;
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&*dir, name, flags, Mode::empty()).map_err(errno)?;
        self.remember(fd)
    }

    pub(super) fn stat(&self, ino: INodeNo) -> Answer<FileAttr> {
        let fd = self.fd(ino)?;
        let st = rustix::fs::fstat(&*fd).map_err(errno)?;
        Ok(attr(ino.0, &st))
    }

    /// Gives a new entry `name` in `parent` to the caller, with `mode`
    /// exactly (not less this process's umask), and looks it up.
    pub(super) fn made(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: Option<u32>,
    ) -> Answer<FileAttr> {
        let dir = self.fd(parent)?;
        let parent_st = rustix::fs::fstat(&*dir).map_err(errno)?;
        // A folder with the set-group-ID bit gives its group to new entries.
        let gid = if parent_st.st_mode & libc::S_ISGID != 0 {
            parent_st.st_gid
        } else {
            req.gid()
        };
        let uid = rustix::fs::Uid::from_raw(req.uid());
        let gid = rustix::fs::Gid::from_raw(gid);
        rustix::fs::chownat(&*dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(errno)?;
        if let Some(mode) = mode {
            rustix::fs::chmodat(&*dir, name, Mode::from_raw_mode(mode), AtFlags::empty())
                .map_err(errno)?;
        }
        self.look_up(parent, name)
    }

    /// The fill state of the file `ino`, shared by its open handles;
    /// `None` once it owes nothing.
    pub(super) fn fill_of(&self, ino: u64, file: &Arc<File>) -> Answer<Option<Arc<Fill>>> {
        self.fills.of(ino, file).map_err(errno)
    }

    /// The fill states, shared with a prewarm of the tree.
    pub fn fills(&self) -> Arc<Fills> {
        self.fills.clone()
    }

    /// A read-write handle on regular file `ino` of the tree.
    pub(super) fn reopen(&self, ino: INodeNo) -> Answer<Arc<File>> {
        let fd = self.fd(ino)?;
        let flags = OFlags::RDWR | OFlags::CLOEXEC;
        let file = rustix::fs::open(proc_path(&fd), flags, Mode::empty()).map_err(errno)?;
        Ok(Arc::new(File::from(file)))
    }

    pub(super) fn handle(&self, fh: FileHandle) -> Answer<Arc<OpenFile>> {
        let files = self.files.lock().unwrap();
        files.get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    /// Opens `ino` (its `O_TRUNC` honoured through its fill state) and
    /// hands out a file handle.
    pub(super) fn open_file(&self, ino: INodeNo, truncate: bool) -> Answer<u64> {
        let file = self.reopen(ino)?;
        let fill = self.fill_of(ino.0, &file)?;
        if truncate {
            self.truncate(&file, fill.as_deref(), 0)?;
        }
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.counters.open_count.fetch_add(1, Ordering::Relaxed);
        let open = Arc::new(OpenFile { file, fill });
        self.files.lock().unwrap().insert(fh, open);
        Ok(fh)
    }

    pub(super) fn truncate(&self, file: &File, fill: Option<&Fill>, size: u64) -> Answer<()> {
        match fill {
            Some(fill) => self.runtime.block_on(fill.truncate(size)).map_err(errno),
            None => file.set_len(size).map_err(errno),
        }
    }

    pub(super) fn set_attr(
        &self,
        ino: INodeNo,
        mode: Option<u32>,
        owner: (Option<u32>, Option<u32>),
        size: Option<u64>,
        times: (Option<TimeOrNow>, Option<TimeOrNow>),
    ) -> Answer<FileAttr> {
        let fd = self.fd(ino)?;
        let st = rustix::fs::fstat(&*fd).map_err(errno)?;
        let link = st.st_mode & libc::S_IFMT == libc::S_IFLNK;
        if let Some(size) = size {
            let file = self.reopen(ino)?;
            let fill = self.fill_of(ino.0, &file)?;
            self.truncate(&file, fill.as_deref(), size)?;
        }
        if let (Some(mode), false) = (mode, link) {
            rustix::fs::chmod(proc_path(&fd), Mode::from_raw_mode(mode & 0o7777)).map_err(errno)?;
        }
        if owner.0.is_some() || owner.1.is_some() {
            let uid = owner.0.map(rustix::fs::Uid::from_raw);
            let gid = owner.1.map(rustix::fs::Gid::from_raw);
            rustix::fs::chownat(&*fd, "", uid, gid, AtFlags::EMPTY_PATH).map_err(errno)?;
        }
        if (times.0.is_some() || times.1.is_some()) && !link {
            let stamps = rustix::fs::Timestamps {
                last_access: timespec(times.0),
                last_modification: timespec(times.1),
            };
            rustix::fs::utimensat(rustix::fs::CWD, proc_path(&fd), &stamps, AtFlags::empty())
                .map_err(errno)?;
        }
        self.stat(ino)
    }

    pub(super) fn read_dir(&self, ino: INodeNo) -> Answer<Vec<DirEntry>> {
        let fd = self.fd(ino)?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = rustix::fs::open(proc_path(&fd), flags, Mode::empty()).map_err(errno)?;
        let mut out = Vec::new();
        for entry in rustix::fs::Dir::read_from(&dir).map_err(errno)? {
            let entry = entry.map_err(errno)?;
            let name = {
                use std::os::unix::ffi::OsStrExt;
                OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string()
            };
            let ino = if entry.ino() == self.root_ino {
                1
            } else {
                entry.ino()
            };
            out.push(DirEntry {
                ino,
                kind: kind_of_type(entry.file_type()),
                name,
            });
        }
        Ok(out)
    }

    /// Runs `work` on the runtime's blocking threads and replies there:
    /// a slow disk (`fsync`) never holds up the mount's other requests.
    pub(super) fn later(&self, work: impl FnOnce() + Send + 'static) {
        self.runtime.spawn_blocking(work);
    }
}
