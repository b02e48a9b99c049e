//! Writing a new file's bytes around the page cache (`O_DIRECT`), for the
//! large objects of a local repository (packs).
//!
//! A put syncs its file before it is published, so the page cache's copy of
//! a pack buys nothing: it costs a copy into freshly allocated cache pages
//! (the largest system cost of a snapshot, measured in docs/PERFORMANCE.md),
//! kernel writeback work at the fsync, and evicts the data the machine is
//! actually using. Direct writes send the bytes from an aligned staging
//! buffer to the device instead.
//!
//! Direct IO needs the buffer, the file offset and the length aligned to the
//! device's block size. Every write here is a whole number of [`ALIGN`]-byte
//! blocks at an aligned offset; the last block is zero-padded and the file
//! truncated to its real length afterwards. Filesystems without direct IO
//! (or with stricter rules) answer `EINVAL`, and the file is then written
//! the ordinary way: correctness never depends on direct IO.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Alignment of buffer, offsets and lengths: at least every common logical
/// block size (512 B or 4 KiB).
pub const DIRECT_ALIGN: usize = 4096;
const ALIGN: usize = DIRECT_ALIGN;
/// Bytes staged per write.
const STAGE: usize = 2 << 20;
/// Objects smaller than this are written through the page cache: a direct
/// write's setup costs more than the copy it saves.
pub const DIRECT_MIN: usize = 1 << 20;

thread_local! {
    /// One staging buffer per writing thread, reused across puts, so a pack
    /// costs no page faults for its staging.
    static STAGING: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Creates `path` (which must not exist), writes `data` to it and syncs it.
pub fn create_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    if data.len() >= DIRECT_MIN {
        if let Some(f) = open_direct(path)? {
            match write_direct(&f, data) {
                Ok(()) => return f.sync_all(),
                // Not supported after all: start over the ordinary way.
                Err(e) if e.raw_os_error() == Some(EINVAL) => drop(f),
                Err(e) => return Err(e),
            }
            let mut f = OpenOptions::new().write(true).truncate(true).open(path)?;
            f.write_all(data)?;
            return f.sync_all();
        }
    }
    let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(target_os = "linux")]
const EINVAL: i32 = libc::EINVAL;
#[cfg(not(target_os = "linux"))]
const EINVAL: i32 = 22;

/// Opens a new file for direct writes; `None` if the filesystem refuses
/// direct IO (and then no file is left behind).
#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> io::Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.raw_os_error() == Some(EINVAL) => {
            // Some filesystems create the file before refusing the flag.
            match std::fs::remove_file(path) {
                Ok(()) => Ok(None),
                Err(r) if r.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(r) => Err(r),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> io::Result<Option<File>> {
    Ok(None)
}

/// Writes `data` in aligned blocks, then cuts the padding of the last
/// block off. Data that starts at an aligned address goes to the device
/// straight from where it is, but for its last partial block; other data
/// is copied through the staging buffer.
fn write_direct(mut f: &File, data: &[u8]) -> io::Result<()> {
    let rest = if data.as_ptr().align_offset(ALIGN) == 0 {
        let whole = data.len() - data.len() % ALIGN;
        f.write_all(&data[..whole])?;
        &data[whole..]
    } else {
        data
    };
    if rest.is_empty() {
        return Ok(());
    }
    STAGING.with(|cell| {
        let mut staging = cell.borrow_mut();
        // Only as large as needed: an aligned pack stages just its tail.
        let size = rest.len().next_multiple_of(ALIGN).min(STAGE);
        if staging.len() < size + ALIGN {
            *staging = vec![0; size + ALIGN];
        }
        let start = staging.as_ptr().align_offset(ALIGN);
        let stage = &mut staging[start..start + size];
        for piece in rest.chunks(size) {
            let padded = piece.len().next_multiple_of(ALIGN);
            stage[..piece.len()].copy_from_slice(piece);
            stage[piece.len()..padded].fill(0);
            // A short direct write would leave the next one unaligned;
            // write_all then fails with EINVAL and the caller starts over.
            f.write_all(&stage[..padded])?;
        }
        Ok::<(), io::Error>(())
    })?;
    if data.len() % ALIGN != 0 {
        f.set_len(data.len() as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn every_length_reads_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            0,
            1,
            DIRECT_MIN - 1,
            DIRECT_MIN,
            DIRECT_MIN + 1,
            STAGE,
            STAGE + ALIGN - 1,
            3 * STAGE + 17,
        ] {
            let path = dir.path().join(format!("f{len}"));
            let data = pattern(len);
            create_synced(&path, &data).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), data, "{len} bytes");
        }
    }

    /// Data at an aligned address is written from where it is; its
    /// unaligned tail still goes through the staging buffer.
    #[test]
    fn aligned_data_reads_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let backing = pattern(3 * STAGE + 2 * ALIGN);
        let start = backing.as_ptr().align_offset(ALIGN);
        for len in [DIRECT_MIN, DIRECT_MIN + 1, 3 * STAGE + ALIGN - 1] {
            let data = &backing[start..start + len];
            assert_eq!(data.as_ptr().align_offset(ALIGN), 0);
            let path = dir.path().join(format!("a{len}"));
            create_synced(&path, data).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), data, "{len} bytes");
        }
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"kept").unwrap();
        for len in [10, DIRECT_MIN + 5] {
            let err = create_synced(&path, &pattern(len)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
            assert_eq!(std::fs::read(&path).unwrap(), b"kept");
        }
    }
}
