//! The FUSE requests of [`LayerFs`], each answered through the tree's
//! handles (see `fs.rs`); the ones that may wait on the snapshot or the
//! disk reply from the runtime.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use fuser::{
    AccessFlags, Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use rustix::fs::{AtFlags, Mode, OFlags};

use super::fs::{LayerFs, OpenFile, TTL};
use super::sys::{errno, own_xattr, proc_path, read_full, reply_empty, reply_sized};
use super::OWN_XATTRS;
impl Filesystem for LayerFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.look_up(parent, name) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let mut nodes = self.nodes.lock().unwrap();
        if let Some(node) = nodes.get_mut(&ino.0) {
            node.lookups = node.lookups.saturating_sub(nlookup);
            if node.lookups == 0 && ino.0 != 1 {
                nodes.remove(&ino.0);
            }
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.stat(ino) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        match self.set_attr(ino, mode, (uid, gid), size, (atime, mtime)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let target = self
            .fd(ino)
            .and_then(|fd| rustix::fs::readlinkat(&*fd, "", Vec::new()).map_err(errno));
        match target {
            Ok(t) => reply.data(t.as_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let made = self.fd(parent).and_then(|dir| {
            let kind = rustix::fs::FileType::from_raw_mode(mode);
            let perm = Mode::from_raw_mode(0o600);
            rustix::fs::mknodat(&*dir, name, kind, perm, u64::from(rdev)).map_err(errno)?;
            self.made(req, parent, name, Some(mode & !umask & 0o7777))
        });
        match made {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let made = self.fd(parent).and_then(|dir| {
            rustix::fs::mkdirat(&*dir, name, Mode::from_raw_mode(0o700)).map_err(errno)?;
            self.made(req, parent, name, Some(mode & !umask & 0o7777))
        });
        match made {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let done = self
            .fd(parent)
            .and_then(|dir| rustix::fs::unlinkat(&*dir, name, AtFlags::empty()).map_err(errno));
        reply_empty(reply, done);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let done = self
            .fd(parent)
            .and_then(|dir| rustix::fs::unlinkat(&*dir, name, AtFlags::REMOVEDIR).map_err(errno));
        reply_empty(reply, done);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let made = self.fd(parent).and_then(|dir| {
            rustix::fs::symlinkat(target, &*dir, link_name).map_err(errno)?;
            self.made(req, parent, link_name, None)
        });
        match made {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let done = self.fd(parent).and_then(|from| {
            let to = self.fd(newparent)?;
            let flags = rustix::fs::RenameFlags::from_bits_retain(flags.bits());
            rustix::fs::renameat_with(&*from, name, &*to, newname, flags).map_err(errno)
        });
        reply_empty(reply, done);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let made = self.fd(ino).and_then(|fd| {
            let dir = self.fd(newparent)?;
            rustix::fs::linkat(&*fd, "", &*dir, newname, AtFlags::EMPTY_PATH).map_err(errno)?;
            self.look_up(newparent, newname)
        });
        match made {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.open_file(ino, flags.0 & libc::O_TRUNC != 0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let open = match self.handle(fh) {
            Ok(o) => o,
            Err(e) => return reply.error(e),
        };
        let len = u64::from(size);
        let counters = self.counters.clone();
        let answer = move |open: &OpenFile, reply: ReplyData| {
            counters.read_count.fetch_add(1, Ordering::Relaxed);
            match read_full(&open.file, offset, size as usize) {
                Ok(bytes) => {
                    counters
                        .read_bytes
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    reply.data(&bytes)
                }
                Err(e) => reply.error(errno(e)),
            }
        };
        match open.fill.clone() {
            Some(fill) if !fill.readable(offset, len) => {
                let counters = self.counters.clone();
                self.runtime.spawn(async move {
                    match fill.for_read(offset, len).await {
                        Ok(()) => answer(&open, reply),
                        Err(e) => {
                            eprintln!("snapkeep mount: filling blocks at {offset}: {e}");
                            counters.failed_reads.fetch_add(1, Ordering::Relaxed);
                            reply.error(Errno::EIO)
                        }
                    }
                });
            }
            _ => answer(&open, reply),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let open = match self.handle(fh) {
            Ok(o) => o,
            Err(e) => return reply.error(e),
        };
        let len = data.len() as u32;
        let Some(fill) = open.fill.clone() else {
            return match open.file.write_all_at(data, offset) {
                Ok(()) => reply.written(len),
                Err(e) => reply.error(errno(e)),
            };
        };
        let data = data.to_vec();
        self.runtime.spawn(async move {
            match fill.write(offset, &data).await {
                Ok(()) => reply.written(len),
                Err(e) => {
                    eprintln!("snapkeep mount: writing at {offset}: {e}");
                    reply.error(errno(e))
                }
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
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
        if self.files.lock().unwrap().remove(&fh.0).is_some() {
            self.counters.close_count.fetch_add(1, Ordering::Relaxed);
        }
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let open = match self.handle(fh) {
            Ok(o) => o,
            Err(e) => return reply.error(e),
        };
        self.later(move || {
            // A full sync also makes the fill map's latest state durable.
            let synced = if datasync && open.fill.is_none() {
                open.file.sync_data()
            } else {
                open.file.sync_all()
            };
            reply_empty(reply, synced.map_err(errno));
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.read_dir(ino) {
            Ok(entries) => {
                let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
                self.dirs.lock().unwrap().insert(fh, Arc::new(entries));
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(entries) = self.dirs.lock().unwrap().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        for (i, e) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(e.ino), i as u64 + 1, e.kind, &e.name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.dirs.lock().unwrap().remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let fd = match self.fd(ino) {
            Ok(fd) => fd,
            Err(e) => return reply.error(e),
        };
        self.later(move || {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let synced = rustix::fs::open(proc_path(&fd), flags, Mode::empty())
                .and_then(|dir| rustix::fs::fsync(&dir));
            reply_empty(reply, synced.map_err(errno));
        });
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let st = self
            .fd(INodeNo(1))
            .and_then(|fd| rustix::fs::fstatvfs(&*fd).map_err(errno));
        match st {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        if own_xattr(name) {
            return reply.error(Errno::EPERM);
        }
        let done = self.fd(ino).and_then(|fd| {
            let flags = rustix::fs::XattrFlags::from_bits_retain(flags as u32);
            rustix::fs::setxattr(proc_path(&fd), name, value, flags).map_err(errno)
        });
        reply_empty(reply, done);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        if own_xattr(name) {
            return reply.error(Errno::NO_XATTR);
        }
        let value = self.fd(ino).and_then(|fd| {
            let mut buf = vec![0u8; 65536];
            let n = rustix::fs::getxattr(proc_path(&fd), name, &mut buf).map_err(errno)?;
            buf.truncate(n);
            Ok(buf)
        });
        match value {
            Ok(v) => reply_sized(reply, &v, size),
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let names = self.fd(ino).and_then(|fd| {
            let mut buf = vec![0u8; 65536];
            let n = rustix::fs::listxattr(proc_path(&fd), &mut buf).map_err(errno)?;
            let mut out = Vec::new();
            for name in buf[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
                if !name.starts_with(OWN_XATTRS.as_bytes()) {
                    out.extend_from_slice(name);
                    out.push(0);
                }
            }
            Ok(out)
        });
        match names {
            Ok(v) => reply_sized(reply, &v, size),
            Err(e) => reply.error(e),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        if own_xattr(name) {
            return reply.error(Errno::EPERM);
        }
        let done = self
            .fd(ino)
            .and_then(|fd| rustix::fs::removexattr(proc_path(&fd), name).map_err(errno));
        reply_empty(reply, done);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // `default_permissions`: the kernel has checked already.
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let created = self.fd(parent).and_then(|dir| {
            let how = OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC;
            match rustix::fs::openat(&*dir, name, how, Mode::from_raw_mode(0o600)) {
                Ok(_) => {
                    let a = self.made(req, parent, name, Some(mode & !umask & 0o7777))?;
                    Ok((a, self.open_file(a.ino, false)?))
                }
                // Made meanwhile by another caller: opened as it is.
                Err(rustix::io::Errno::EXIST) if flags & libc::O_EXCL == 0 => {
                    let a = self.look_up(parent, name)?;
                    Ok((a, self.open_file(a.ino, flags & libc::O_TRUNC != 0)?))
                }
                Err(e) => Err(errno(e)),
            }
        });
        match created {
            Ok((a, fh)) => {
                reply.created(&TTL, &a, Generation(0), FileHandle(fh), FopenFlags::empty())
            }
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let open = match self.handle(fh) {
            Ok(o) => o,
            Err(e) => return reply.error(e),
        };
        let change = move |file: &File| -> io::Result<()> {
            let flags = rustix::fs::FallocateFlags::from_bits_retain(mode as u32);
            Ok(rustix::fs::fallocate(file, flags, offset, length)?)
        };
        match open.fill.clone() {
            Some(fill) => {
                self.runtime.spawn(async move {
                    let done = fill.around(offset, length, change).await;
                    reply_empty(reply, done.map_err(errno));
                });
            }
            None => reply_empty(reply, change(&open.file).map_err(errno)),
        }
    }
}
