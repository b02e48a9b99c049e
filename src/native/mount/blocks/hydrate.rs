//! [`Fill`]: one file of the layer that still owes blocks to the snapshot,
//! shared by every handle open on it. Every change to the file's bytes
//! that could meet an unfilled block runs under its lock, in this order:
//! the snapshot's bytes of the blocks the change needs are written into
//! the layer's file, the change is made, and the map is saved. A block is
//! never filled over bytes a service wrote, and a killed mount leaves at
//! worst a block filled but not marked, which the next fill writes again
//! with the same bytes.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use tokio::sync::{Mutex, OnceCell};

use crate::core::lazy::fill::FillMap;
use crate::core::lazy::reader::ReadAhead;
use crate::native::lazy::LazyFile;

use super::{Lower, FILL_XATTR};

/// Most bytes one fill reads from the snapshot and writes at once (a run
/// of unfilled blocks: a sequential reader's request, or a whole file
/// being filled by `materialize`).
const FILL_RUN: u64 = 4 << 20;

/// A layer file's fill state and the snapshot file its blocks come from.
pub struct Fill {
    map: Mutex<FillMap>,
    /// The layer's file, open for reading and writing.
    file: Arc<File>,
    lower: Arc<Lower>,
    source: OnceCell<LazyFile>,
}

impl Fill {
    /// The fill state `file` carries, if it owes anything.
    pub fn of(file: Arc<File>, lower: Arc<Lower>) -> io::Result<Option<Fill>> {
        let Some(map) = load(&file)? else {
            return Ok(None);
        };
        if map.complete() {
            save(&file, &map)?;
            return Ok(None);
        }
        Ok(Some(Fill {
            map: Mutex::new(map),
            file,
            lower,
            source: OnceCell::new(),
        }))
    }

    /// Whether `offset..offset + len` can be read from the layer's file
    /// as it is (false also when another change holds the map).
    pub fn readable(&self, offset: u64, len: u64) -> bool {
        self.map
            .try_lock()
            .is_ok_and(|m| m.to_read(offset, len).is_empty())
    }

    /// Fills what a read of `offset..offset + len` needs.
    pub async fn for_read(&self, offset: u64, len: u64) -> io::Result<()> {
        let mut map = self.map.lock().await;
        let ranges = map.to_read(offset, len);
        self.fill(&mut map, ranges).await
    }

    /// Writes `data` at `offset`, filling first the blocks it covers in
    /// part.
    pub async fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut map = self.map.lock().await;
        let ranges = map.to_write(offset, data.len() as u64);
        self.fill(&mut map, ranges).await?;
        self.file.write_all_at(data, offset)?;
        if map.written(offset, data.len() as u64) {
            save(&self.file, &map)?;
        }
        Ok(())
    }

    /// Cuts (or grows) the file to `size`.
    pub async fn truncate(&self, size: u64) -> io::Result<()> {
        let mut map = self.map.lock().await;
        let ranges = map.to_truncate(size).into_iter().collect();
        self.fill(&mut map, ranges).await?;
        self.file.set_len(size)?;
        map.truncated(size);
        save(&self.file, &map)
    }

    /// Fills up to `most` bytes of what the file owes, from its start;
    /// returns the bytes filled (0 once nothing is owed). The lock is held
    /// for this part only, so a service's requests go between the parts.
    pub async fn fill_some(&self, most: u64) -> io::Result<u64> {
        let mut map = self.map.lock().await;
        let mut ranges = map.to_read(0, u64::MAX);
        let mut total = 0;
        ranges.retain(|r| {
            total += r.end - r.start;
            total - (r.end - r.start) < most
        });
        let filled = ranges.iter().map(|r| r.end - r.start).sum();
        self.fill(&mut map, ranges).await?;
        Ok(filled)
    }

    /// Runs `change` (which may punch holes or allocate anywhere in
    /// `offset..offset + len`) once every block there is filled.
    pub async fn around(
        &self,
        offset: u64,
        len: u64,
        change: impl FnOnce(&File) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut map = self.map.lock().await;
        let ranges = map.to_read(offset, len);
        self.fill(&mut map, ranges).await?;
        change(&self.file)
    }

    async fn fill(&self, map: &mut FillMap, ranges: Vec<Range<u64>>) -> io::Result<()> {
        if ranges.is_empty() {
            return Ok(());
        }
        let source = self
            .source
            .get_or_try_init(|| async { self.open_source(&map.origin) })
            .await?;
        // Filling is not a change: the file keeps its mtime.
        let mtime = rustix::fs::fstat(&*self.file)?;
        for run in FillMap::runs(&ranges, FILL_RUN) {
            let bytes = source
                .read_at(run.start, run.end - run.start)
                .await
                .map_err(|e| io::Error::other(format!("{}: {e}", map.origin)))?;
            if bytes.len() as u64 != run.end - run.start {
                return Err(io::Error::other(format!(
                    "{}: the snapshot gave {} bytes at {} where {} were owed",
                    map.origin,
                    bytes.len(),
                    run.start,
                    run.end - run.start
                )));
            }
            self.file.write_all_at(&bytes, run.start)?;
            for r in ranges
                .iter()
                .filter(|r| run.start <= r.start && r.end <= run.end)
            {
                map.filled(r);
            }
        }
        let stamps = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT as _,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: mtime.st_mtime as _,
                tv_nsec: mtime.st_mtime_nsec as _,
            },
        };
        rustix::fs::futimens(&*self.file, &stamps)?;
        save(&self.file, map)
    }

    fn open_source(&self, origin: &str) -> io::Result<LazyFile> {
        let lower = &self.lower;
        let node = lower.node_at(origin).ok_or_else(|| {
            io::Error::other(format!(
                "{origin} owes blocks to the snapshot, which has no such file"
            ))
        })?;
        LazyFile::open(
            lower.repo.clone(),
            lower.cache.clone(),
            &lower.index,
            node,
            ReadAhead::DEFAULT,
        )
        .map_err(|e| io::Error::other(format!("{origin}: {e}")))
    }
}

/// The fill state of each file of the tree some handle or prewarm holds,
/// by inode number: one [`Fill`] (one lock) per file, however many use it.
pub struct Fills {
    table: std::sync::Mutex<std::collections::HashMap<u64, std::sync::Weak<Fill>>>,
    lower: Arc<Lower>,
}

impl Fills {
    pub fn new(lower: Arc<Lower>) -> Fills {
        Fills {
            table: Default::default(),
            lower,
        }
    }

    /// The fill state of file `ino` (opened as `file`), `None` once it
    /// owes nothing.
    pub fn of(&self, ino: u64, file: &Arc<File>) -> io::Result<Option<Arc<Fill>>> {
        let mut table = self.table.lock().unwrap();
        if let Some(fill) = table.get(&ino).and_then(std::sync::Weak::upgrade) {
            return Ok(Some(fill));
        }
        let fill = Fill::of(file.clone(), self.lower.clone())?.map(Arc::new);
        match &fill {
            Some(f) => table.insert(ino, Arc::downgrade(f)),
            None => table.remove(&ino),
        };
        Ok(fill)
    }
}

/// Fills every block the file at `path` owes (a file of a layer no mount
/// uses), reading through `lower`. Returns the bytes filled.
pub async fn fill_whole(path: &std::path::Path, lower: Arc<Lower>) -> io::Result<u64> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let Some(fill) = Fill::of(Arc::new(file), lower)? else {
        return Ok(0);
    };
    let owed = {
        let map = fill.map.lock().await;
        map.to_read(0, u64::MAX)
            .iter()
            .map(|r| r.end - r.start)
            .sum()
    };
    fill.for_read(0, u64::MAX).await?;
    Ok(owed)
}

/// The fill map `file` carries, if any.
pub fn load(file: &File) -> io::Result<Option<FillMap>> {
    let mut buf = vec![0u8; 8192];
    match rustix::fs::fgetxattr(file, FILL_XATTR, &mut buf) {
        Ok(n) => FillMap::decode(&buf[..n])
            .map(Some)
            .map_err(|e| io::Error::other(e.to_string())),
        Err(rustix::io::Errno::NODATA) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Saves `map` on `file`, or removes it once nothing is owed.
pub fn save(file: &File, map: &FillMap) -> io::Result<()> {
    if map.complete() {
        return match rustix::fs::fremovexattr(file, FILL_XATTR) {
            Ok(()) | Err(rustix::io::Errno::NODATA) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    rustix::fs::fsetxattr(
        file,
        FILL_XATTR,
        &map.encode(),
        rustix::fs::XattrFlags::empty(),
    )?;
    Ok(())
}
