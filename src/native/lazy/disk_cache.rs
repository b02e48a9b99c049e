//! [`DiskCache`]: chunks kept in a folder, one file per chunk named by its
//! id (`ab/abcdef…`), so the same chunk is cached once however many
//! snapshots (or mounts) read it. Every entry is checked against its id
//! when read: a corrupt one is dropped and fetched again. What to keep is
//! the core's [`CachePolicy`]'s decision.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;

use crate::core::crypto::content_ids::IdScheme;
use crate::core::format::id::Id;
use crate::core::lazy::cache::{Admission, CachePolicy, CacheStats};
use crate::core::lazy::serve::ChunkStore;
use crate::error::{Error, Result};

use super::cache_entry::{block_sum, chunk_of, Layout, BLOCK, SUM_BYTES, TAIL};
use super::cache_writer::{CacheWriter, PARTIAL};

/// Sidecars of block sums that earlier caches kept beside their entries
/// (SHA-256, then XXH3-128): removed when a cache opens. Their entries
/// stay; one larger than a block, which now carries its sums inside,
/// reads as corrupt once and is fetched again.
const OLD_SIDECARS: [&str; 2] = [".sums", ".xxh3"];

/// A bounded cache of verified chunks in a folder.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    state: Mutex<CacheState>,
}

/// The policy and the folder it decides for, locked together.
#[derive(Debug)]
pub(super) struct CacheState {
    pub policy: CachePolicy,
    pub store: ChunkFiles,
}

impl DiskCache {
    /// Opens (creating) the cache folder `dir`, keeping at most `bound`
    /// bytes (`bound + slack` while open files pin entries; give one pack).
    /// Entries already there are taken in, oldest first, and leftovers of
    /// interrupted writes removed; entries past the bound are evicted.
    /// Entries are checked against chunk ids computed as `ids` does (an
    /// encrypted repository's keyed ids) instead of format v1's plain
    /// SHA-256, which [`DiskCache::open`] starts with.
    pub fn keyed_by(self, ids: IdScheme) -> DiskCache {
        self.lock().store.ids.clear();
        self.accept(ids);
        self
    }

    /// Also accepts entries named by `ids` (a cache shared by mounts of
    /// repositories with different keys, as the node's is). Safe to mix:
    /// an entry is served only if one scheme names its bytes exactly as
    /// the file is named, which no one can arrange for a scheme's name of
    /// other bytes.
    pub fn accept(&self, ids: IdScheme) {
        let schemes = &mut self.lock().store.ids;
        let probe = ids.id_of(SCHEME_PROBE);
        if !schemes.iter().any(|(p, _)| *p == probe) {
            schemes.push((probe, ids));
        }
    }

    pub fn open(dir: &Path, bound: u64, slack: u64) -> Result<DiskCache> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut found = existing_entries(dir)?;
        found.sort_by_key(|(_, _, mtime)| *mtime);
        // Block sums and their tail take at most 1/2048 of what they cover
        // (16 bytes per 64 KiB block and 16 more, only for chunks of more
        // than one block): the policy keeps 1/1024 of the bound free for
        // them.
        let mut state = CacheState {
            policy: CachePolicy::new(bound - bound / 1024, slack - slack / 1024),
            store: ChunkFiles {
                dir: dir.to_path_buf(),
                hot: HotChunks::default(),
                writer: Arc::new(CacheWriter::start()),
                ids: vec![(IdScheme::Plain.id_of(SCHEME_PROBE), IdScheme::Plain)],
            },
        };
        for (id, size, _) in found {
            match state.policy.admit(id, size) {
                Admission::Admitted { evict } => evict.iter().for_each(|v| state.store.remove(v)),
                Admission::Refused => state.store.remove(&id),
            }
        }
        Ok(DiskCache {
            dir: dir.to_path_buf(),
            state: Mutex::new(state),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Hits, misses, bytes from the cache and from the repository,
    /// evictions.
    pub fn stats(&self) -> CacheStats {
        self.lock().policy.stats()
    }

    /// Bytes the cache holds.
    pub fn total(&self) -> u64 {
        self.lock().policy.total()
    }

    /// The most it may ever hold (its bound plus the slack).
    pub fn limit(&self) -> u64 {
        self.lock().policy.limit()
    }

    /// Waits until every admitted chunk is in the folder (they are
    /// written in the background; until then they are served from memory).
    pub fn flush(&self) {
        // Not under the cache lock: the writer never takes it.
        let writer = self.lock().store.writer.clone();
        writer.flush();
    }

    /// Removes every entry no open file pins (`cache/clear`).
    pub fn clear(&self) {
        let mut state = self.lock();
        for id in state.policy.clear() {
            state.store.remove(&id);
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The files one level below `dir`'s subfolders (where entries, partial
/// writes and block sums live), with their names.
pub(super) fn entry_files(dir: &Path) -> Result<Vec<(String, fs::DirEntry)>> {
    let mut out = Vec::new();
    for sub in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let sub = sub.map_err(|e| Error::io(dir, e))?.path();
        if !sub.is_dir() {
            continue;
        }
        for f in fs::read_dir(&sub).map_err(|e| Error::io(&sub, e))? {
            let f = f.map_err(|e| Error::io(&sub, e))?;
            out.push((f.file_name().to_string_lossy().into_owned(), f));
        }
    }
    Ok(out)
}

/// The entries in `dir`: (id, size, mtime); partial writes and older
/// versions' block sums are removed, and files that are not entries left
/// alone.
fn existing_entries(dir: &Path) -> Result<Vec<(Id, u64, SystemTime)>> {
    let mut found = Vec::new();
    for (name, f) in entry_files(dir)? {
        if name.ends_with(PARTIAL) || OLD_SIDECARS.iter().any(|s| name.ends_with(s)) {
            let _ = fs::remove_file(f.path());
            continue;
        }
        let (Ok(id), Ok(meta)) = (name.parse::<Id>(), f.metadata()) else {
            continue;
        };
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        found.push((id, meta.len(), mtime));
    }
    Ok(found)
}

/// The folder's files as the core's [`ChunkStore`]. Write failures (a full
/// disk) are not errors: the entry then fails its check when read and is
/// fetched again.
#[derive(Debug)]
pub(super) struct ChunkFiles {
    dir: PathBuf,
    /// The last chunks verified, in memory: a file read in 128 KiB
    /// requests would otherwise read and hash each chunk once per request.
    hot: HotChunks,
    /// Writes admitted chunks to the folder off the read path.
    writer: Arc<CacheWriter>,
    /// How the repositories reading through this cache name chunks, to
    /// verify entries against their names (keyed in an encrypted
    /// repository), each with its id of [`SCHEME_PROBE`] that tells
    /// schemes apart; the one that matched last comes first.
    ids: Vec<(Id, IdScheme)>,
}

/// Bytes whose id tells one id scheme from another (two schemes that name
/// them alike name everything alike).
const SCHEME_PROBE: &[u8] = b"snapkeep cache: which id scheme is this";

/// Bytes of verified chunks kept in memory.
const HOT_BYTES: u64 = 64 * 1024 * 1024;

/// A small LRU of verified chunks (a few dozen: a linear scan finds the
/// oldest).
#[derive(Debug, Default)]
struct HotChunks {
    chunks: std::collections::HashMap<Id, (Bytes, u64)>,
    bytes: u64,
    tick: u64,
}

impl HotChunks {
    fn get(&mut self, id: &Id) -> Option<Bytes> {
        self.tick += 1;
        let tick = self.tick;
        self.chunks.get_mut(id).map(|(b, used)| {
            *used = tick;
            b.clone()
        })
    }

    fn put(&mut self, id: Id, bytes: Bytes) {
        if bytes.len() as u64 > HOT_BYTES / 4 {
            return;
        }
        self.remove(&id);
        self.tick += 1;
        self.bytes += bytes.len() as u64;
        self.chunks.insert(id, (bytes, self.tick));
        while self.bytes > HOT_BYTES {
            let Some(oldest) = self
                .chunks
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.remove(&oldest);
        }
    }

    fn remove(&mut self, id: &Id) {
        if let Some((b, _)) = self.chunks.remove(id) {
            self.bytes -= b.len() as u64;
        }
    }
}

/// Where entry `id` of the cache folder `dir` is kept.
pub(super) fn entry_path(dir: &Path, id: &Id) -> PathBuf {
    let hex = id.to_hex();
    dir.join(&hex[..2]).join(hex)
}

impl ChunkFiles {
    fn path(&self, id: &Id) -> PathBuf {
        entry_path(&self.dir, id)
    }

    /// Bytes `start..start + len` of the entry, each covering block checked
    /// against its sum; `None` when the entry, its sums or a block is not
    /// right, or the entry has no sums (a chunk of one block is read whole).
    fn read_part(&self, id: &Id, start: u64, len: u64) -> Option<Bytes> {
        use std::os::unix::fs::FileExt;
        let file = fs::File::open(self.path(id)).ok()?;
        let size = file.metadata().ok()?.len();
        let mut tail = [0u8; TAIL];
        file.read_exact_at(&mut tail, size.checked_sub(TAIL as u64)?)
            .ok()?;
        let layout = Layout::of(size, &tail)?;
        let end = start.checked_add(len).filter(|e| *e <= layout.chunk_len)?;
        if len == 0 {
            return None;
        }
        let (first, last) = (start / BLOCK, (end - 1) / BLOCK);
        let mut sums = vec![0u8; (last - first + 1) as usize * SUM_BYTES];
        file.read_exact_at(&mut sums, layout.sum_at(first)).ok()?;
        let from = first * BLOCK;
        let to = ((last + 1) * BLOCK).min(layout.chunk_len);
        let mut blocks = vec![0u8; (to - from) as usize];
        file.read_exact_at(&mut blocks, from).ok()?;
        let sound = blocks
            .chunks(BLOCK as usize)
            .zip(sums.chunks(SUM_BYTES))
            .all(|(block, sum)| block_sum(block)[..] == *sum);
        if !sound {
            return None;
        }
        let blocks = Bytes::from(blocks);
        Some(blocks.slice((start - from) as usize..(end - from) as usize))
    }
}

impl ChunkStore for ChunkFiles {
    fn load(&mut self, id: &Id) -> Option<Bytes> {
        if let Some(b) = self.hot.get(id).or_else(|| self.writer.get(id)) {
            return Some(b);
        }
        let bytes = chunk_of(fs::read(self.path(id)).ok()?)?;
        let scheme = self.ids.iter().position(|(_, s)| s.id_of(&bytes) == *id)?;
        if scheme > 0 {
            let matched = self.ids.remove(scheme);
            self.ids.insert(0, matched);
        }
        let bytes = Bytes::from(bytes);
        self.hot.put(*id, bytes.clone());
        Some(bytes)
    }

    fn save(&mut self, id: &Id, bytes: &Bytes) {
        self.hot.put(*id, bytes.clone());
        self.writer.write(*id, bytes.clone(), self.path(id));
    }

    fn load_range(&mut self, id: &Id, start: u64, len: u64) -> Option<Bytes> {
        let end = start.checked_add(len)?;
        if let Some(b) = self.hot.get(id).or_else(|| self.writer.get(id)) {
            return (end <= b.len() as u64).then(|| b.slice(start as usize..end as usize));
        }
        // Without sums (or with a bad block) the whole entry is checked.
        self.read_part(id, start, len).or_else(|| {
            let b = self.load(id)?;
            (end <= b.len() as u64).then(|| b.slice(start as usize..end as usize))
        })
    }

    fn remove(&mut self, id: &Id) {
        self.hot.remove(id);
        // Unwritten, or (when being written) in place before it is removed.
        self.writer.cancel(id);
        // Already gone is as good as removed.
        let _ = fs::remove_file(self.path(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::crypto::keys::MasterKey;
    use crate::core::lazy::serve::ChunkStore;

    fn keyed(byte: u8) -> IdScheme {
        IdScheme::keyed(
            crate::core::crypto::content_ids::KeyedIdKind::NEWEST,
            &MasterKey::from_bytes([byte; 32]).content_id_key(),
        )
    }

    #[test]
    fn a_shared_cache_serves_each_accepted_scheme_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), 1 << 20, 1 << 20)
            .unwrap()
            .keyed_by(keyed(1));
        cache.accept(keyed(2));
        cache.accept(keyed(2));
        assert_eq!(cache.lock().store.ids.len(), 2, "one entry per scheme");
        let (a, b) = (
            Bytes::from_static(b"chunk of a"),
            Bytes::from_static(b"chunk of b"),
        );
        let (id_a, id_b) = (keyed(1).id_of(&a), keyed(2).id_of(&b));
        let plain = IdScheme::Plain.id_of(&a);
        {
            let store = &mut cache.lock().store;
            store.save(&id_a, &a);
            store.save(&id_b, &b);
            // Named by a scheme no mount accepted: never served.
            store.save(&plain, &a);
            store.writer.flush();
            store.hot = HotChunks::default();
        }
        let store = &mut cache.lock().store;
        assert_eq!(store.load(&id_a), Some(a.clone()));
        assert_eq!(store.load(&id_b), Some(b));
        assert_eq!(store.load(&plain), None);
        // Bytes under another chunk's name fail every scheme.
        fs::copy(store.path(&id_a), store.path(&id_b)).unwrap();
        store.hot = HotChunks::default();
        assert_eq!(store.load(&id_b), None);
        assert_eq!(store.load(&id_a), Some(a));
    }

    #[test]
    fn a_range_is_checked_by_its_blocks_and_old_sidecars_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let chunk: Bytes = (0..3 * BLOCK as usize + 100)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<u8>>()
            .into();
        let id = IdScheme::Plain.id_of(&chunk);
        let store_of = |cache: &DiskCache| -> PathBuf {
            let store = &mut cache.lock().store;
            store.writer.flush();
            store.hot = HotChunks::default();
            store.path(&id)
        };
        let cache = DiskCache::open(dir.path(), 1 << 20, 1 << 20).unwrap();
        cache.lock().store.save(&id, &chunk);
        let path = store_of(&cache);
        let entry = fs::read(&path).unwrap();
        assert_eq!(entry.len(), chunk.len() + 4 * SUM_BYTES + TAIL);
        {
            let store = &mut cache.lock().store;
            let at = BLOCK + 10;
            let want = chunk.slice(at as usize..at as usize + 5000);
            assert_eq!(store.read_part(&id, at, 5000), Some(want.clone()));
            assert_eq!(store.load(&id), Some(chunk.clone()));
            // A flipped byte in the second block fails that block's sum, and
            // the whole-entry check behind it (the id) refuses the entry too.
            let mut bad = entry.clone();
            bad[BLOCK as usize + 20] ^= 1;
            fs::write(&path, &bad).unwrap();
            store.hot = HotChunks::default();
            assert_eq!(store.read_part(&id, at, 5000), None);
            assert_eq!(store.load_range(&id, at, 5000), None);
            // The first block is still right on its own.
            assert_eq!(store.read_part(&id, 0, 100), Some(chunk.slice(0..100)));
            // A damaged sum fails its block too.
            let mut bad = entry.clone();
            bad[chunk.len() + SUM_BYTES + 3] ^= 1;
            fs::write(&path, &bad).unwrap();
            assert_eq!(store.read_part(&id, at, 5000), None);
            assert_eq!(store.read_part(&id, 0, 100), Some(chunk.slice(0..100)));
            // A large entry without sums (an older cache's): not served.
            fs::write(&path, &chunk).unwrap();
            assert_eq!(store.read_part(&id, at, 5000), None);
            assert_eq!(store.load(&id), None);
            fs::write(&path, &entry).unwrap();
        }
        drop(cache);

        // Sidecars of older caches go when it opens; entries stay.
        for old in OLD_SIDECARS {
            let sidecar = path.with_extension(old.trim_start_matches('.'));
            fs::write(&sidecar, [0u8; 128]).unwrap();
            let _cache = DiskCache::open(dir.path(), 1 << 20, 1 << 20).unwrap();
            assert!(!sidecar.exists());
            assert!(path.exists());
        }
    }
}
