//! Conversions between the tree's system calls and FUSE's answers.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::FileExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{Errno, FileAttr, FileType, INodeNo, ReplyEmpty, TimeOrNow};
use rustix::fs::Stat;

use super::fs::Answer;
use super::OWN_XATTRS;
pub(super) use crate::native::mount::fs::reply_sized;

pub fn errno(e: impl Into<io::Error>) -> Errno {
    Errno::from(e.into())
}

pub fn reply_empty(reply: ReplyEmpty, done: Answer<()>) {
    match done {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

pub fn own_xattr(name: &OsStr) -> bool {
    use std::os::unix::ffi::OsStrExt;
    name.as_bytes().starts_with(OWN_XATTRS.as_bytes())
}

/// The path that reaches an `O_PATH` handle's file.
pub fn proc_path(fd: &impl AsFd) -> String {
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

/// Up to `len` bytes at `offset` (fewer only at the end of the file).
pub fn read_full(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

pub fn timespec(t: Option<TimeOrNow>) -> rustix::fs::Timespec {
    let omit = rustix::fs::Timespec {
        tv_sec: 0,
        tv_nsec: libc::UTIME_OMIT as _,
    };
    match t {
        None => omit,
        Some(TimeOrNow::Now) => rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW as _,
        },
        Some(TimeOrNow::SpecificTime(at)) => {
            let (secs, nanos) = match at.duration_since(UNIX_EPOCH) {
                Ok(d) => (d.as_secs() as i64, d.subsec_nanos() as i64),
                Err(e) => {
                    let d = e.duration();
                    let ns = -(d.as_nanos() as i128);
                    (
                        ns.div_euclid(1_000_000_000) as i64,
                        ns.rem_euclid(1_000_000_000) as i64,
                    )
                }
            };
            rustix::fs::Timespec {
                tv_sec: secs as _,
                tv_nsec: nanos as _,
            }
        }
    }
}

pub fn time_of(secs: i64, nanos: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos as u64)
    }
}

pub fn attr(ino: u64, st: &Stat) -> FileAttr {
    let mtime = time_of(st.st_mtime, st.st_mtime_nsec as i64);
    FileAttr {
        ino: INodeNo(ino),
        size: st.st_size as u64,
        blocks: st.st_blocks as u64,
        atime: time_of(st.st_atime, st.st_atime_nsec as i64),
        mtime,
        ctime: time_of(st.st_ctime, st.st_ctime_nsec as i64),
        crtime: mtime,
        kind: kind_of_mode(st.st_mode),
        perm: (st.st_mode & 0o7777) as u16,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev as u32,
        blksize: st.st_blksize as u32,
        flags: 0,
    }
}

pub fn kind_of_mode(mode: u32) -> FileType {
    kind_of_type(rustix::fs::FileType::from_raw_mode(mode))
}

pub fn kind_of_type(t: rustix::fs::FileType) -> FileType {
    use rustix::fs::FileType as T;
    match t {
        T::Directory => FileType::Directory,
        T::Symlink => FileType::Symlink,
        T::Fifo => FileType::NamedPipe,
        T::Socket => FileType::Socket,
        T::CharacterDevice => FileType::CharDevice,
        T::BlockDevice => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}
