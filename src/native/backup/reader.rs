//! Reading one file: chunk, hash, dedup and store its contents, and prove the
//! file did not change while it was read.

use std::cell::RefCell;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use crate::core::chunker::ChunkerParams;
use crate::core::chunking::detect::HEAD_BYTES;
use crate::core::chunking::{Chunking, Cutting};
use crate::core::format::id::Id;
use crate::native::backup::packer::{Added, Packer};
use crate::native::backup::read_error::ReadError;
use crate::native::backup::windows::Windows;
use crate::native::progress::Progress;

/// The facts that must not move while a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    pub dev: u64,
}

impl Stamp {
    pub fn of(m: &Metadata) -> Stamp {
        Stamp {
            size: m.len(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            inode: m.ino(),
            dev: m.dev(),
        }
    }
}

#[derive(Debug)]
pub struct FileRead {
    pub stamp: Stamp,
    pub chunks: Vec<Id>,
    pub added: Added,
    /// How the file was cut, as its node records it (`None`: by content).
    pub chunking: Option<Chunking>,
}

/// The longest read window: longer than the largest chunk, so it always
/// yields at least one cut. A window grows to this only while no cut is
/// found in it (a chunk longer than [`window_len`]). Files longer than this
/// stream one at a time (see `jobs`).
pub fn largest_window(params: &ChunkerParams) -> usize {
    (params.max as usize * 3 / 2).max(1 << 20)
}

/// The usual read window: a few average chunks (2 MiB by default), so the
/// two live windows of a streaming file stay small; only the last,
/// unfinished chunk of a window is read again with the next one.
pub fn window_len(params: &ChunkerParams) -> usize {
    (params.avg as usize * 4).clamp(1 << 20, largest_window(params))
}

/// Reads `path` once. Data is stored as it is chunked; if the file turns out
/// to have changed, the stored chunks are merely unreferenced.
///
/// `walked` is a stamp taken before the file was opened (the walk's
/// `lstat`), saving a `stat` per file; without one the open file is
/// stat'ed. The read is consistent if the open file's stamp after reading
/// equals it and the path still names that file.
///
/// Files shorter than a window are read whole on the calling thread
/// ([`read_whole`]). Longer files stream through [`Windows`]: while the
/// chunks of earlier windows are hashed, compressed and packed on every
/// core, the next window is read and cut, so a single large file keeps all
/// cores busy.
///
/// `previous` is the parent snapshot's chunks of the file by place, if it
/// was cut into page groups: each new chunk is offered to the packer as a
/// patch over the one at its place ([`Packer::claim_data`]).
pub fn read_file(
    path: &Path,
    walked: Option<Stamp>,
    cutting: &Cutting,
    packer: &Packer,
    progress: &Progress,
    previous: Option<Arc<[Id]>>,
) -> Result<FileRead, ReadError> {
    let (mut f, before) = open_regular(path, walked)?;
    let params = &cutting.params;
    let (window, largest) = (window_len(params), largest_window(params));
    if (before.size as usize) < window {
        let (chunks, added, total, chunking) = read_whole(
            &mut f,
            before.size as usize,
            cutting,
            packer,
            progress,
            previous.as_deref(),
        )?;
        return check_unchanged(&f, path, before, total)
            .map(|stamp| FileRead {
                stamp,
                chunks,
                added,
                chunking,
            })
            .map_err(|e| e.with_added(added));
    }
    // The first buffer is the file's size, at most one window.
    let first_len = (before.size as usize).saturating_add(1).min(window);
    // A file that reads to its stated size is taken to end there (the
    // stamp taken after the read proves the size did not change), which
    // saves the `read` that would return end-of-file.
    let expected = before.size as usize;
    let windows = Windows::over(previous);
    // The cutter is chosen from the first window (it holds the file's
    // head); `offset` is where each window starts in the file, which page
    // groups cut by.
    let mut cutter = None;
    let mut offset = 0u64;
    let (chunks, added, total) = windows.run(packer, progress, |first, carry, buf| {
        let start = if first {
            first_len
        } else {
            window.max(carry.len() + window / 2)
        };
        buf.resize(start, 0);
        buf[..carry.len()].copy_from_slice(carry);
        let limit = if first { expected } else { usize::MAX };
        let mut filled = carry.len() + read_full(&mut f, &mut buf[carry.len()..], limit)?;
        let cut = *cutter
            .get_or_insert_with(|| cutting.for_file(before.size, &buf[..filled.min(HEAD_BYTES)]));
        loop {
            let eof = filled < buf.len();
            let cuts = cut.split(offset, &buf[..filled], eof);
            if eof || !cuts.is_empty() || buf.len() >= largest {
                offset += cuts.last().map_or(0, |r| r.end) as u64;
                return Ok((filled, cuts));
            }
            // No cut yet: a chunk longer than the window, or a file longer
            // than it said. Read more into a larger buffer.
            let grown = (buf.len() * 2).clamp(64 * 1024, largest);
            buf.resize(grown, 0);
            filled += read_full(&mut f, &mut buf[filled..], usize::MAX)?;
        }
    })?;
    let stamp = check_unchanged(&f, path, before, total).map_err(|e| e.with_added(added))?;
    Ok(FileRead {
        stamp,
        chunks,
        added,
        chunking: cutter.and_then(|c| c.recorded()),
    })
}

/// Opens `path` for reading only if it is still the regular file the walk
/// saw, and returns it with its "before" stamp.
///
/// The open never blocks and never follows a link: between the walk's
/// `lstat` and this open the name may have been replaced, and a plain
/// `open` of a FIFO waits for a writer forever. `O_NONBLOCK` makes it
/// return at once (it has no effect on reads of regular files, the only
/// kind read here), `O_NOFOLLOW` refuses a symlink (`ELOOP`). The handle is
/// then `fstat`ed: anything but a regular file, or a different file than
/// the walked one (device and inode), is reported as changed, as is a
/// symlink; the caller's retry then opens without a walked stamp and meets
/// the same checks.
fn open_regular(path: &Path, walked: Option<Stamp>) -> Result<(File, Stamp), ReadError> {
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(ReadError::Changed(Added::default()))
        }
        Err(e) => return Err(ReadError::Io(e)),
    };
    let meta = f.metadata().map_err(ReadError::Io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::Changed(Added::default()));
    }
    let opened = Stamp::of(&meta);
    match walked {
        Some(w) if (w.dev, w.inode) != (opened.dev, opened.inode) => {
            Err(ReadError::Changed(Added::default()))
        }
        Some(w) => Ok((f, w)),
        None => Ok((f, opened)),
    }
}

thread_local! {
    /// The buffer small files are read into, one per pipeline thread: it
    /// grows to the largest such file (at most one window) and is reused.
    static SMALL: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads a file shorter than a window with one `read` into the thread's
/// buffer and stores its chunks on this thread: the pool already runs one
/// small file per core, so streaming it through [`Windows`] would only add
/// locking and wake-ups (one of each per file, 50,000 for the benchmark's
/// tree).
fn read_whole(
    f: &mut File,
    size: usize,
    cutting: &Cutting,
    packer: &Packer,
    progress: &Progress,
    previous: Option<&[Id]>,
) -> Result<(Vec<Id>, Added, u64, Option<Chunking>), ReadError> {
    SMALL.with(|cell| {
        let mut buf = cell.borrow_mut();
        // Exactly the stated size: a file that grew or shrank meanwhile
        // fails the stamp check afterwards, so nothing is silently cut.
        if buf.len() < size {
            buf.resize(size, 0);
        }
        let filled = read_full(f, &mut buf[..size], size).map_err(ReadError::Io)?;
        let data = &buf[..filled];
        let mut chunks = Vec::with_capacity(1);
        let mut added = Added::default();
        let cutter = cutting.for_file(filled as u64, &data[..filled.min(HEAD_BYTES)]);
        // Claimed first, so the bases of the chunks to patch are read
        // together, then stored.
        let mut claims = Vec::new();
        for (k, range) in cutter.split(0, data, true).into_iter().enumerate() {
            let id = packer.id_of(&data[range.clone()]);
            let before = previous.and_then(|p| p.get(k));
            let claim = packer.claim_data(id, before).map_err(ReadError::Store)?;
            claims.push((id, range, claim));
            chunks.push(id);
        }
        let wanted: Vec<Id> = claims.iter().filter_map(|(_, _, c)| c.base()).collect();
        let bases = packer.read_bases(&wanted);
        for (id, range, claim) in claims {
            let chunk = &data[range];
            let a = packer
                .store_claimed(id, chunk, claim, &bases)
                .map_err(ReadError::Store)?;
            progress.inc(chunk.len() as u64);
            added.plain += a.plain;
            added.stored += a.stored;
        }
        Ok((chunks, added, filled as u64, cutter.recorded()))
    })
}

/// The open file's stamp after reading, if the read is consistent: the
/// file's stamp equals the one taken before it was opened, the bytes read
/// equal its size, and the path still names it.
fn check_unchanged(f: &File, path: &Path, before: Stamp, total: u64) -> Result<Stamp, ReadError> {
    let after = Stamp::of(&f.metadata().map_err(ReadError::Io)?);
    let now = std::fs::symlink_metadata(path).map(|m| Stamp::of(&m)).ok();
    if before != after || total != before.size || now != Some(after) {
        return Err(ReadError::Changed(Added::default()));
    }
    Ok(after)
}

/// Fills `buf` unless the file ends first, or stops once `enough` bytes
/// are in; returns the bytes read.
pub(crate) fn read_full(f: &mut File, buf: &mut [u8], enough: usize) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() && n < enough {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::format::config::RepoConfig;
    use crate::core::format::id::IdSet;
    use crate::core::format::index::RepoIndex;
    use crate::native::repo::Repo;
    use crate::storage::faulty::{Fault, FaultyStore, Op, When};
    use crate::storage::memory::MemoryStore;
    use crate::storage::{Storage, StorageError};

    /// Small chunks, so a few MiB span several 1 MiB windows with many
    /// chunks each, and small packs, so several uploads happen.
    fn repo(store: Arc<dyn Storage>) -> Repo {
        let mut config = RepoConfig::new("t".into(), 0);
        config.chunker = ChunkerParams {
            min: 4 << 10,
            avg: 16 << 10,
            max: 64 << 10,
            ..ChunkerParams::default()
        };
        config.pack_size = 256 << 10;
        Repo::init_in(store, config).unwrap()
    }

    fn data(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Half noise, half text, so some blobs compress.
                if (i >> 15) % 2 == 0 {
                    (x >> 32) as u8
                } else {
                    b"snapkeep "[i % 9]
                }
            })
            .collect()
    }

    #[test]
    fn a_multi_window_file_streams_to_the_same_chunks_as_one_split() {
        let repo = repo(Arc::new(MemoryStore::new()));
        let index = RepoIndex::new();
        let packer = Packer::new(&repo, &index);
        let dir = tempfile::tempdir().unwrap();
        let params = repo.config.chunker;
        for len in [0, 1, 100_000, (5 << 20) + 12_345] {
            let bytes = data(len);
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &bytes).unwrap();
            let read = read_file(
                &path,
                None,
                &Cutting::cdc(params),
                &packer,
                &Progress::hidden(),
                None,
            )
            .unwrap();
            let want: Vec<Id> = params
                .split_all(&bytes)
                .into_iter()
                .map(|r| Id::of(&bytes[r]))
                .collect();
            assert_eq!(read.chunks, want, "{len} bytes");
            assert_eq!(read.stamp.size, len as u64);
        }
        let totals = packer.finish().unwrap();
        assert!(totals.packs_written > 3, "{}", totals.packs_written);
        let stored: usize = totals.index.packs.iter().map(|(_, e)| e.len()).sum();
        let mut distinct = IdSet::default();
        for len in [1, 100_000, (5 << 20) + 12_345] {
            let bytes = data(len);
            for r in params.split_all(&bytes) {
                distinct.insert(Id::of(&bytes[r]));
            }
        }
        assert_eq!(stored, distinct.len());
    }

    /// Chunks longer than the usual window (runs of zeros cut only at the
    /// maximum) make windows grow, and the cuts stay those of one split.
    #[test]
    fn windows_grow_for_chunks_longer_than_a_window() {
        let mut config = RepoConfig::new("t".into(), 0);
        config.pack_size = 4 << 20;
        let repo = Repo::init_in(Arc::new(MemoryStore::new()), config).unwrap();
        let params = repo.config.chunker;
        assert!(window_len(&params) < params.max as usize);
        let index = RepoIndex::new();
        let packer = Packer::new(&repo, &index);
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = vec![0u8; 21 << 20];
        bytes[(13 << 20)..(15 << 20)].copy_from_slice(&data(2 << 20));
        let path = dir.path().join("zeros");
        std::fs::write(&path, &bytes).unwrap();
        let read = read_file(
            &path,
            None,
            &Cutting::cdc(params),
            &packer,
            &Progress::hidden(),
            None,
        )
        .unwrap();
        let cuts = params.split_all(&bytes);
        assert!(
            cuts.iter().any(|r| r.len() > window_len(&params)),
            "{cuts:?}"
        );
        let want: Vec<Id> = cuts.into_iter().map(|r| Id::of(&bytes[r])).collect();
        assert_eq!(read.chunks, want);
        packer.finish().unwrap();
    }

    #[test]
    fn a_stale_walk_stamp_makes_the_read_report_a_change() {
        let repo = repo(Arc::new(MemoryStore::new()));
        let index = RepoIndex::new();
        let packer = Packer::new(&repo, &index);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, data(3 << 20)).unwrap();
        let mut walked = Stamp::of(&std::fs::metadata(&path).unwrap());
        walked.size -= 1;
        let err = read_file(
            &path,
            Some(walked),
            &Cutting::cdc(params(&repo)),
            &packer,
            &Progress::hidden(),
            None,
        );
        assert!(matches!(err, Err(ReadError::Changed(_))), "{err:?}");
    }

    /// Reads `path` as if the walk had seen `walked` there, on a thread of
    /// its own: a read that blocks fails the test instead of hanging it.
    fn read_within_10s(path: std::path::PathBuf, walked: Option<Stamp>) -> String {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let repo = repo(Arc::new(MemoryStore::new()));
            let index = RepoIndex::new();
            let packer = Packer::new(&repo, &index);
            let out = read_file(
                &path,
                walked,
                &Cutting::cdc(params(&repo)),
                &packer,
                &Progress::hidden(),
                None,
            );
            let _ = tx.send(match out {
                Ok(_) => "read".to_string(),
                Err(ReadError::Changed(_)) => "changed".to_string(),
                Err(e) => format!("{e:?}"),
            });
        });
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the read returned within 10 s")
    }

    #[test]
    fn a_walked_file_replaced_by_a_fifo_a_symlink_or_another_file_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, data(1000)).unwrap();
        let walked = Stamp::of(&std::fs::symlink_metadata(&path).unwrap());
        // Keeps the walked inode alive, so a replacement cannot reuse it.
        let keep = dir.path().join("walked");
        std::fs::hard_link(&path, &keep).unwrap();

        // A FIFO with no writer: a blocking open would wait forever.
        std::fs::remove_file(&path).unwrap();
        assert!(std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success());
        assert_eq!(read_within_10s(path.clone(), Some(walked)), "changed");
        // Without a walked stamp (the retry) the FIFO is refused as well.
        assert_eq!(read_within_10s(path.clone(), None), "changed");

        // A symlink to the very file the walk saw is still not followed.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&keep, &path).unwrap();
        assert_eq!(read_within_10s(path.clone(), Some(walked)), "changed");
        assert_eq!(read_within_10s(path.clone(), None), "changed");

        // Another regular file with the same size under the walked name.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, data(1000)).unwrap();
        let now = std::fs::symlink_metadata(&path).unwrap();
        assert_ne!(now.ino(), walked.inode);
        assert_eq!(read_within_10s(path.clone(), Some(walked)), "changed");
        // ... which a fresh read takes as it is.
        assert_eq!(read_within_10s(path.clone(), None), "read");
        // The walked file under its other name: same device and inode
        // (its ctime moved with the unlinks, so the stamp is taken anew).
        let kept = Stamp::of(&std::fs::symlink_metadata(&keep).unwrap());
        assert_eq!((kept.dev, kept.inode), (walked.dev, walked.inode));
        assert_eq!(read_within_10s(keep.clone(), Some(kept)), "read");
    }

    fn params(repo: &Repo) -> ChunkerParams {
        repo.config.chunker
    }

    #[test]
    fn a_failing_pack_upload_fails_the_read_and_the_packer() {
        let inner: Arc<dyn Storage> = Arc::new(MemoryStore::new());
        let repo = repo(Arc::new(FaultyStore::new(
            inner,
            vec![Fault {
                op: Op::Put,
                key_prefix: "packs/".into(),
                skip: 1,
                times: 1000,
                when: When::Before,
                error: StorageError::Io {
                    key: "packs/x".into(),
                    detail: "injected failure".into(),
                },
            }],
        )));
        let index = RepoIndex::new();
        let packer = Packer::new(&repo, &index);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, data(8 << 20)).unwrap();
        let err = read_file(
            &path,
            None,
            &Cutting::cdc(params(&repo)),
            &packer,
            &Progress::hidden(),
            None,
        )
        .unwrap_err();
        let ReadError::Store(e) = err else {
            panic!("{err:?}")
        };
        assert!(e.to_string().contains("injected failure"), "{e}");
        assert!(packer.finish().is_err());
    }
}
