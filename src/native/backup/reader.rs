//! Reading one file: chunk, hash, dedup and store its contents, and prove the
//! file did not change while it was read.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rayon::prelude::*;

use crate::core::blob::BlobKind;
use crate::core::chunker::ChunkerParams;
use crate::core::id::Id;
use crate::native::backup::packer::{Added, Packer};
use crate::native::error::Error;
use crate::native::progress::Progress;

/// The facts that must not move while a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
}

impl Stamp {
    pub fn of(m: &Metadata) -> Stamp {
        Stamp {
            size: m.len(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            inode: m.ino(),
        }
    }
}

#[derive(Debug)]
pub struct FileRead {
    pub stamp: Stamp,
    pub chunks: Vec<Id>,
    pub added: Added,
}

#[derive(Debug)]
pub enum ReadError {
    /// The file changed while it was read. What the read stored anyway
    /// (the chunks stay in the packs, unreferenced) is still this
    /// snapshot's cost.
    Changed(Added),
    /// The file could not be read.
    Io(io::Error),
    /// Storing its data failed: this fails the whole snapshot.
    Store(Error),
}

/// Reads `path` once. Data is stored as it is chunked; if the file turns out
/// to have changed, the stored chunks are merely unreferenced.
///
/// Large files are read in windows, double-buffered: while the chunks of
/// one window are hashed, compressed and packed (in parallel), the next
/// window is read, so a single large file keeps every core busy.
pub fn read_file(
    path: &Path,
    params: &ChunkerParams,
    packer: &Packer,
    progress: &Progress,
) -> Result<FileRead, ReadError> {
    let mut f = File::open(path).map_err(ReadError::Io)?;
    let before = Stamp::of(&f.metadata().map_err(ReadError::Io)?);
    // A window longer than the largest chunk always yields at least one cut,
    // and only its last, unfinished chunk is read again with the next one. The
    // buffer starts at the file's size (most files are small) and grows to
    // the full window only if the file is, or becomes, that large.
    let window = (params.max as usize * 3 / 2).max(1 << 20);
    let mut buf = vec![0u8; (before.size as usize).saturating_add(1).min(window)];
    let mut spare: Vec<u8> = Vec::new();
    let mut filled = read_full(&mut f, &mut buf).map_err(ReadError::Io)?;
    let mut total = filled as u64;
    let mut chunks = Vec::new();
    let mut added = Added::default();
    // Cuts of `buf` already found while the previous window was stored.
    let mut cut: Option<Vec<std::ops::Range<usize>>> = None;
    loop {
        if cut.is_none() && filled == buf.len() && buf.len() < window {
            // The file is larger than it said: grow towards a full window.
            let grown = (buf.len() * 2).clamp(64 * 1024, window);
            buf.resize(grown, 0);
            let n = read_full(&mut f, &mut buf[filled..]).map_err(ReadError::Io)?;
            filled += n;
            total += n as u64;
            continue;
        }
        let eof = filled < buf.len();
        let ranges = cut
            .take()
            .unwrap_or_else(|| params.split(&buf[..filled], eof));
        let consumed = ranges.last().map_or(0, |r| r.end);
        let store = |data: &[u8]| -> Result<Vec<(Id, Added)>, ReadError> {
            ranges
                .par_iter()
                .map(|r| {
                    let chunk = &data[r.clone()];
                    let id = Id::of(chunk);
                    packer.add(id, BlobKind::Data, chunk).map(|a| (id, a))
                })
                .collect::<Result<Vec<_>, Error>>()
                .map_err(ReadError::Store)
        };
        let stored = if eof {
            store(&buf[..filled])?
        } else {
            // The unconsumed tail moves to the spare buffer, which the rest
            // of the window is read into, and cut, while this window is
            // stored.
            spare.resize(buf.len(), 0);
            let tail = filled - consumed;
            let (stored, next) = rayon::join(
                || store(&buf[..filled]),
                || -> std::io::Result<(usize, Vec<std::ops::Range<usize>>)> {
                    spare[..tail].copy_from_slice(&buf[consumed..filled]);
                    let n = tail + read_full(&mut f, &mut spare[tail..])?;
                    Ok((n, params.split(&spare[..n], n < spare.len())))
                },
            );
            let (next, next_cut) = next.map_err(ReadError::Io)?;
            total += (next - tail) as u64;
            std::mem::swap(&mut buf, &mut spare);
            filled = next;
            cut = Some(next_cut);
            stored?
        };
        for (id, a) in stored {
            chunks.push(id);
            added.plain += a.plain;
            added.stored += a.stored;
        }
        progress.inc(consumed as u64);
        if eof {
            break;
        }
    }
    let after = Stamp::of(&f.metadata().map_err(ReadError::Io)?);
    let now = std::fs::symlink_metadata(path).map(|m| Stamp::of(&m)).ok();
    if before != after || total != before.size || now != Some(after) {
        return Err(ReadError::Changed(added));
    }
    Ok(FileRead {
        stamp: after,
        chunks,
        added,
    })
}

/// Fills `buf` unless the file ends first; returns the bytes read.
fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
