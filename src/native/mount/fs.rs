//! [`SnapshotFs`]: the FUSE filesystem of a mount (the `fuser` shell
//! around the core's [`Inodes`] and [`LazyFile`] reads). Metadata answers
//! come from the inode table at once; a read runs on the tokio runtime and
//! replies from there, so one slow fetch never holds up another reader.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyXattr, Request,
};

use crate::core::format::index::RepoIndex;
use crate::core::format::tree::{Node, NodeType};
use crate::core::lazy::inodes::{Inode, Inodes};
use crate::core::lazy::reader::ReadAhead;
use crate::native::lazy::{DiskCache, LazyFile};
use crate::repo::RepoReader;

/// A snapshot never changes under a mount: the kernel may keep what it
/// was told for a long time.
const TTL: Duration = Duration::from_secs(3600);

/// What a mount serves from.
pub struct SnapshotFs {
    pub inodes: Arc<Inodes>,
    pub repo: RepoReader,
    pub index: Arc<RepoIndex>,
    pub cache: Arc<DiskCache>,
    /// Owner shown for entries the snapshot recorded none for.
    pub uid: u32,
    pub gid: u32,
    pub runtime: tokio::runtime::Handle,
    open: Mutex<HashMap<u64, Arc<LazyFile>>>,
    next_fh: AtomicU64,
    pub counters: Arc<Counters>,
}

/// What a mount's readers did (`_searchable_snapshots/stats`).
#[derive(Debug, Default, serde::Serialize)]
pub struct Counters {
    pub open_count: AtomicU64,
    pub close_count: AtomicU64,
    pub read_count: AtomicU64,
    pub read_bytes: AtomicU64,
    /// Reads that failed (each also said on stderr).
    pub failed_reads: AtomicU64,
}

impl SnapshotFs {
    pub fn new(
        inodes: Arc<Inodes>,
        repo: RepoReader,
        index: Arc<RepoIndex>,
        cache: Arc<DiskCache>,
        runtime: tokio::runtime::Handle,
    ) -> SnapshotFs {
        SnapshotFs {
            inodes,
            repo,
            index,
            cache,
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
            runtime,
            open: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            counters: Arc::default(),
        }
    }

    fn attr(&self, ino: u64, e: &Inode) -> FileAttr {
        let n = &e.node;
        let size = match n.kind {
            NodeType::File => n.size,
            NodeType::Symlink => n.target().map_or(0, |t| t.len() as u64),
            _ => 0,
        };
        let mtime = time_of(n.mtime_ns);
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: mtime,
            mtime,
            ctime: mtime,
            crtime: mtime,
            kind: kind_of(n.kind),
            perm: (n.mode & 0o7777) as u16,
            nlink: e.nlink,
            uid: n.uid.unwrap_or(self.uid),
            gid: n.gid.unwrap_or(self.gid),
            rdev: n.rdev().unwrap_or(0) as u32,
            blksize: 4096,
            flags: 0,
        }
    }

    fn inode(&self, ino: INodeNo) -> Result<&Inode, Errno> {
        self.inodes.get(ino.0).ok_or(Errno::ENOENT)
    }

    fn file(&self, fh: FileHandle) -> Option<Arc<LazyFile>> {
        self.open.lock().unwrap().get(&fh.0).cloned()
    }
}

/// Largest read the kernel is asked to send (and to read ahead).
const MAX_READ: u32 = 1024 * 1024;

impl Filesystem for SnapshotFs {
    fn init(&mut self, _req: &Request, config: &mut fuser::KernelConfig) -> std::io::Result<()> {
        // Larger requests and read-ahead: fewer round trips through the
        // kernel on sequential reads. Where the kernel offers less, its
        // most is taken.
        if let Err(most) = config.set_max_readahead(MAX_READ) {
            let _ = config.set_max_readahead(most);
        }
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = name
            .to_str()
            .and_then(|name| self.inodes.lookup(parent.0, name))
            .and_then(|ino| Some((ino, self.inodes.get(ino)?)));
        match found {
            Some((ino, e)) => reply.entry(&TTL, &self.attr(ino, e), Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.inode(ino) {
            Ok(e) => reply.attr(&TTL, &self.attr(ino.0, e)),
            Err(errno) => reply.error(errno),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.inode(ino).map(|e| e.node.target()) {
            Ok(Some(target)) => reply.data(target.as_bytes()),
            Ok(None) => reply.error(Errno::EINVAL),
            Err(errno) => reply.error(errno),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let e = match self.inode(ino) {
            Ok(e) => e,
            Err(errno) => return reply.error(errno),
        };
        match LazyFile::open(
            self.repo.clone(),
            self.cache.clone(),
            &self.index,
            &e.node,
            ReadAhead::DEFAULT,
        ) {
            Ok(file) => {
                let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
                self.counters.open_count.fetch_add(1, Ordering::Relaxed);
                self.open.lock().unwrap().insert(fh, Arc::new(file));
                // The bytes behind an inode never change: the kernel's page
                // cache stays valid across opens.
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
            }
            Err(err) => {
                eprintln!("snapkeep mount: cannot open {}: {err}", e.node.name);
                self.counters.failed_reads.fetch_add(1, Ordering::Relaxed);
                reply.error(Errno::EIO);
            }
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(file) = self.file(fh) else {
            return reply.error(Errno::EBADF);
        };
        let counters = self.counters.clone();
        let answered = move |bytes: &[u8], reply: ReplyData| {
            counters.read_count.fetch_add(1, Ordering::Relaxed);
            counters
                .read_bytes
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            reply.data(bytes)
        };
        let ready = {
            let _runtime = self.runtime.enter();
            file.read_ready(offset, u64::from(size))
        };
        if let Some(bytes) = ready {
            return answered(&bytes, reply);
        }
        let name = self.inodes.get(ino.0).map(|e| e.node.name.clone());
        let counters = self.counters.clone();
        self.runtime.spawn(async move {
            match file.read_at(offset, u64::from(size)).await {
                Ok(bytes) => answered(&bytes, reply),
                Err(err) => {
                    eprintln!(
                        "snapkeep mount: reading {} at {offset}: {err}",
                        name.unwrap_or_default()
                    );
                    counters.failed_reads.fetch_add(1, Ordering::Relaxed);
                    reply.error(Errno::EIO);
                }
            }
        });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if self.open.lock().unwrap().remove(&fh.0).is_some() {
            self.counters.close_count.fetch_add(1, Ordering::Relaxed);
        }
        reply.ok();
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let e = match self.inode(ino) {
            Ok(e) if e.node.is_dir() => e,
            Ok(_) => return reply.error(Errno::ENOTDIR),
            Err(errno) => return reply.error(errno),
        };
        let dots = [(ino.0, "."), (e.parent, "..")];
        let dots = dots.iter().map(|(i, n)| (*i, FileType::Directory, *n));
        let children = e.children.iter().map(|(name, child)| {
            let kind = self
                .inodes
                .get(*child)
                .map_or(FileType::RegularFile, |c| kind_of(c.node.kind));
            (*child, kind, name.as_str())
        });
        for (i, (child, kind, name)) in dots.chain(children).enumerate().skip(offset as usize) {
            // The offset handed back is where the next call starts.
            if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(0, 0, 0, self.inodes.len() as u64, 0, 4096, 255, 4096);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let value = self.inode(ino).map(|e| xattr_value(&e.node, name));
        match value {
            Ok(Some(v)) => reply_sized(reply, &v, size),
            Ok(None) => reply.error(Errno::NO_XATTR),
            Err(errno) => reply.error(errno),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.inode(ino) {
            Ok(e) => {
                let mut names = Vec::new();
                for name in e.node.xattrs().keys() {
                    names.extend_from_slice(name.as_bytes());
                    names.push(0);
                }
                reply_sized(reply, &names, size);
            }
            Err(errno) => reply.error(errno),
        }
    }
}

/// An xattr answer: its size when asked for the size (0), else the value
/// if it fits.
pub(crate) fn reply_sized(reply: ReplyXattr, value: &[u8], size: u32) {
    if size == 0 {
        reply.size(value.len() as u32);
    } else if value.len() <= size as usize {
        reply.data(value);
    } else {
        reply.error(Errno::ERANGE);
    }
}

fn xattr_value(node: &Node, name: &OsStr) -> Option<Vec<u8>> {
    let encoded = node.xattrs().get(name.to_str()?)?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
}

fn kind_of(kind: NodeType) -> FileType {
    match kind {
        NodeType::File => FileType::RegularFile,
        NodeType::Dir => FileType::Directory,
        NodeType::Symlink => FileType::Symlink,
        NodeType::Fifo => FileType::NamedPipe,
        NodeType::Socket => FileType::Socket,
        NodeType::Chardev => FileType::CharDevice,
        NodeType::Blockdev => FileType::BlockDevice,
    }
}

fn time_of(ns: i64) -> SystemTime {
    let d = Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}
