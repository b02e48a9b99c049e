//! [`RepoReader`]: the config, the newest root, index files, manifests,
//! trees and blobs of one repository, each verified before use.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::core::crypto::envelope::BlobBinding;
use crate::core::error::FormatError;
use crate::core::format::blob::BlobEntry;
use crate::core::format::codec::{self, Codec, ZstdDecoder};
use crate::core::format::config::RepoConfig;
use crate::core::format::id::Id;
use crate::core::format::index::{IndexFile, RepoIndex};
use crate::core::format::keys;
use crate::core::format::manifest::{Manifest, SnapshotSummary};
use crate::core::format::patch;
use crate::core::format::root::Root;
use crate::core::format::sealed_config::{EncryptedConfig, StoredConfig};
use crate::core::format::tree::Tree;
use crate::core::plan::read::{
    plan_reads, MissingBlob, PackRead, DEFAULT_MAX_GAP, DEFAULT_MAX_RANGE,
};
use crate::error::{Error, Result};
use crate::repo::keyring::{self, Locked, Unlock};
use crate::repo::sealed_store::SealedStore;
use crate::repo::sealing::Sealing;
use crate::storage::{Storage, StorageError};

/// Objects fetched at once when loading many (index files, manifests).
const FETCH_CONCURRENCY: usize = 16;
/// Attempts at reading a root and its index files consistently while deletes
/// keep replacing them.
const READ_ATTEMPTS: u32 = 50;
/// Tree packs up to this size are cached whole.
const TREE_PACK_CACHE_MAX: u64 = 64 * 1024 * 1024;
/// The cache of tree packs is emptied when it would grow past this (a
/// long-lived reader, such as the browser's, must not grow without bound).
const TREE_CACHE_BUDGET: usize = 512 * 1024 * 1024;

/// A merged index and the ids of the index files it was merged from.
type MergedIndex = (Vec<Id>, RepoIndex);

/// Read access to one repository. Clones share their caches.
#[derive(Debug, Clone)]
pub struct RepoReader {
    pub store: Arc<dyn Storage>,
    pub config: RepoConfig,
    /// The newest root seen: later reads only probe for newer generations.
    /// Shared, so a reader kept for listings hands it out without copying
    /// (see [`RepoReader::root_shared`]).
    last_root: Arc<Mutex<Option<Arc<Root>>>>,
    /// Whole tree packs, fetched once: loading a snapshot's trees then costs
    /// one request per tree pack instead of one per directory.
    tree_packs: Arc<Mutex<HashMap<Id, Bytes>>>,
    /// With [`RepoReader::keeping_index`]: the merged index of the index
    /// files loaded last, by their ids (content hashes, so the same list
    /// is the same index). A reader kept across reads of an unchanged root
    /// (a follower's between applies, a leader's between delta requests)
    /// then merges it once. Off by default: it holds a second copy of the
    /// index, which a one-off command reading a large repository once
    /// should not pay for.
    merged_index: Option<Arc<Mutex<Option<MergedIndex>>>>,
    /// A generation `index.latest` named at the last [`RepoReader::root`]
    /// that does not exist although it is newer than the newest root: a
    /// lost root object.
    lost_generation: Arc<Mutex<Option<u64>>>,
    /// Decodes zstd blobs: the shell's choice (the native shell's libzstd,
    /// the wasm shells' `codec::ruzstd_decode`).
    zstd: ZstdDecoder,
    /// Plain, or the keys of an encrypted repository (whose `store` is
    /// then a [`SealedStore`] over `unsealed`).
    sealing: Sealing,
    unsealed: Arc<dyn Storage>,
}

impl RepoReader {
    /// Reads the repository's config; a location without one is not a
    /// repository. Blobs stored as zstd frames are decoded with `zstd`.
    /// An encrypted repository is refused ([`Error::Encrypted`]): shells
    /// that can unlock one call [`RepoReader::open_with`].
    pub async fn open(store: Arc<dyn Storage>, zstd: ZstdDecoder) -> Result<RepoReader> {
        Self::open_with(store, zstd, &Locked).await
    }

    /// Opens a plain repository, or an encrypted one with the password
    /// `unlock` gives (asked for only then). The reader's storage then
    /// seals and opens whole objects ([`SealedStore`]).
    pub async fn open_with(
        store: Arc<dyn Storage>,
        zstd: ZstdDecoder,
        unlock: &dyn Unlock,
    ) -> Result<RepoReader> {
        let bytes = match store.get(keys::CONFIG, None).await {
            Err(StorageError::NotFound { .. }) => {
                return Err(Error::NotARepository(store.location()))
            }
            r => r?,
        };
        let stored = StoredConfig::decode(&bytes).map_err(|e| Error::format(keys::CONFIG, e))?;
        match stored {
            StoredConfig::Plain(config) => Ok(Self::with_config(store, config, zstd)),
            StoredConfig::Encrypted(encrypted) => {
                let (master, slot) = keyring::unlock(store.as_ref(), unlock).await?;
                let sealing = Sealing::encrypted(&master, &slot, encrypted.ids(), unlock.nonces());
                // A key no slot vouched for is proved here: the sealed
                // config opens only under this repository's key. What the
                // config says is then judged apart (a format error).
                let key = sealing.data_key().expect("an encrypted sealing has a key");
                if unlock.master_key().is_some() && !encrypted.authenticates(key) {
                    return Err(Error::WrongReadKey(store.location()));
                }
                Self::sealed(store, &encrypted, sealing, zstd)
            }
        }
    }

    /// A reader of an encrypted repository whose keys are known.
    pub fn sealed(
        store: Arc<dyn Storage>,
        encrypted: &EncryptedConfig,
        sealing: Sealing,
        zstd: ZstdDecoder,
    ) -> Result<RepoReader> {
        let key = sealing.data_key().expect("an encrypted sealing has a key");
        let config = encrypted
            .open(key)
            .map_err(|e| Error::format(keys::CONFIG, e))?;
        let sealed = SealedStore::over(store.clone(), sealing.clone());
        let mut reader = Self::with_config(sealed, config, zstd);
        reader.sealing = sealing;
        reader.unsealed = store;
        Ok(reader)
    }

    /// A reader for a repository whose config is already known (just
    /// created, or read before).
    pub fn with_config(
        store: Arc<dyn Storage>,
        config: RepoConfig,
        zstd: ZstdDecoder,
    ) -> RepoReader {
        RepoReader {
            unsealed: store.clone(),
            store,
            config,
            last_root: Default::default(),
            tree_packs: Default::default(),
            merged_index: None,
            lost_generation: Default::default(),
            zstd,
            sealing: Sealing::plain(),
        }
    }

    /// The same reader over another wrapping of the same storage (rate
    /// limits, read-only), sharing the caches. An encrypted repository's
    /// sealing goes on top of the new wrapping.
    pub fn with_store(&self, store: Arc<dyn Storage>) -> RepoReader {
        let sealed: Arc<dyn Storage> = if self.sealing.is_encrypted() {
            SealedStore::over(store.clone(), self.sealing.clone())
        } else {
            store.clone()
        };
        RepoReader {
            store: sealed,
            unsealed: store,
            ..self.clone()
        }
    }

    /// The storage under the sealing (the same as `store` in a plain
    /// repository): for objects that are not sealed whole and for
    /// wrapping the storage again.
    pub fn unsealed_store(&self) -> Arc<dyn Storage> {
        self.unsealed.clone()
    }

    /// How this repository seals objects and names blobs.
    pub fn sealing(&self) -> &Sealing {
        &self.sealing
    }

    pub fn location(&self) -> String {
        self.store.location()
    }

    /// The zstd decoder this reader decodes blobs with (for work handed to
    /// other threads, see [`decode_verified`]).
    pub fn zstd(&self) -> ZstdDecoder {
        self.zstd
    }

    /// Decodes a stored blob with this reader's zstd decoder and makes
    /// sure it is the blob of its id (see [`decode_verified`]).
    /// A patch blob decodes over its base, which `bases` must hold.
    pub fn decode_verified(&self, e: &BlobEntry, stored: &[u8], bases: &Bases) -> Result<Vec<u8>> {
        self.decode_checked(e, stored, bases).map(Cow::into_owned)
    }

    /// [`RepoReader::decode_verified`], borrowing `stored` where the blob
    /// is stored raw in a plain repository instead of copying it.
    pub fn decode_checked<'a>(
        &self,
        e: &BlobEntry,
        stored: &'a [u8],
        bases: &Bases,
    ) -> Result<Cow<'a, [u8]>> {
        decode_verified(e, stored, self.zstd, &self.sealing, bases)
    }

    /// The plain bytes of the bases the patch blobs among `ids` decode
    /// over (none when no blob is a patch). They are not checked against
    /// their ids: a patch is, once decoded over its base, which catches a
    /// damaged base as well. Bases that sit near each other in a pack (a
    /// parent snapshot's page groups, in file order) are read with one
    /// ranged read.
    pub async fn bases<'a>(
        &self,
        index: &RepoIndex,
        ids: impl IntoIterator<Item = &'a Id>,
    ) -> Result<Bases> {
        self.bases_beside(index, ids, |_| None).await
    }

    /// [`RepoReader::bases`], taking each base that `known` gives (bytes
    /// already checked against the base's id, as a chunk cache's are)
    /// instead of reading it from the repository.
    pub async fn bases_beside<'a>(
        &self,
        index: &RepoIndex,
        ids: impl IntoIterator<Item = &'a Id>,
        known: impl Fn(&Id) -> Option<Bytes>,
    ) -> Result<Bases> {
        let mut have = HashMap::new();
        let mut wanted = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for base in ids.into_iter().filter_map(|id| index.base_of(id)) {
            if !seen.insert(base) {
                continue;
            }
            match known(&base) {
                Some(bytes) => {
                    have.insert(base, bytes);
                }
                None => wanted.push(base),
            }
        }
        have.extend(self.bases_unchecked(index, &wanted).await?);
        Ok(Bases(have))
    }

    /// The plain bytes of base blobs `ids` (blobs stored whole), not
    /// checked against their ids, as [`RepoReader::bases`] reads them:
    /// neighbours in a pack with one ranged read, several reads at once.
    pub async fn bases_unchecked(
        &self,
        index: &RepoIndex,
        ids: &[Id],
    ) -> Result<HashMap<Id, Bytes>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let reads = plan_reads(ids, index, DEFAULT_MAX_GAP, DEFAULT_MAX_RANGE).map_err(
            |MissingBlob(id)| Error::BlobMissing {
                kind: "patch base",
                id,
            },
        )?;
        // Built before awaiting: a closure inside the stream would keep
        // callers' futures from being `Send` (see check's read_data).
        let fetches: Vec<_> = reads.iter().map(|r| self.read_bases(r)).collect();
        let decoded: Vec<Vec<(Id, Bytes)>> = stream::iter(fetches)
            .buffered(BASE_READS_AT_ONCE)
            .try_collect()
            .await?;
        Ok(decoded.into_iter().flatten().collect())
    }

    /// The base blobs of one ranged read, decoded and checked. A base is
    /// always stored whole: a patch over a patch is refused, so no chain
    /// is ever longer than one.
    async fn read_bases(&self, r: &PackRead) -> Result<Vec<(Id, Bytes)>> {
        let range = Some(r.offset..r.offset + r.length);
        let bytes = self.store.get(&keys::pack(&r.pack), range).await?;
        r.blobs
            .iter()
            .map(|e| {
                let stored = stored_in(&bytes, r, e)?;
                if e.codec == Codec::Patch {
                    return Err(Error::Integrity {
                        id: e.id,
                        detail: "a patch blob's base is itself a patch".into(),
                    });
                }
                // Not checked against its id: every patch decoded over it
                // is, and a damaged base fails those checks (check
                // --read-data checks a base as a blob of its own pack).
                let plain = decode_unchecked(e, stored, self.zstd, &self.sealing, &Bases::none())?;
                Ok((e.id, Bytes::from(plain.into_owned())))
            })
            .collect()
    }

    pub async fn get(&self, key: &str) -> Result<Bytes> {
        Ok(self.store.get(key, None).await?)
    }

    /// Fetches many objects concurrently, in the order given.
    pub async fn get_many(&self, keys: &[String]) -> Result<Vec<Bytes>> {
        // The requests are made first and then streamed: a lazy `map`
        // closure over borrowed keys held across the await makes the
        // compiler unable to prove the future `Send` for every lifetime
        // (rust-lang/rust#64552), and a server could not spawn a view.
        let requests: Vec<_> = keys.iter().map(|k| self.store.get(k, None)).collect();
        stream::iter(requests)
            .buffered(FETCH_CONCURRENCY)
            .map_err(Error::from)
            .try_collect()
            .await
    }

    /// The generation of the newest root this reader has seen (0 if none),
    /// without asking the storage.
    pub fn cached_generation(&self) -> u64 {
        self.last_root
            .lock()
            .unwrap()
            .as_ref()
            .map_or(0, |r| r.generation)
    }

    /// Records a root this process committed, so later reads start there.
    pub fn remember(&self, root: &Root) {
        let mut last = self.last_root.lock().unwrap();
        if last.as_ref().is_none_or(|r| r.generation < root.generation) {
            *last = Some(Arc::new(root.clone()));
        }
    }

    /// The generation an `index.latest` hint names, if it is readable.
    async fn hinted_generation(&self) -> Option<u64> {
        let b = self.store.get(keys::LATEST, None).await.ok()?;
        std::str::from_utf8(&b).ok()?.trim().parse().ok()
    }

    /// The newest committed root generation (generation 0, empty, if none).
    ///
    /// Probing starts from the newer of the cached root and the
    /// `index.latest` hint, and goes up until a generation is missing.
    /// Without either, the roots are listed. Starting from the hint, not only
    /// from the cache, matters: cleanup removes old generations, and probing
    /// up from a long-cached generation could stop at such a hole and take a
    /// stale root for the newest (a commit on top of it would land in the
    /// hole, unseen; cleanup also keeps generations younger than 15 minutes,
    /// which covers the moment between reading and committing).
    pub async fn root(&self) -> Result<Root> {
        Ok(Root::clone(&*self.root_shared().await?))
    }

    /// [`RepoReader::root`] without copying the root when it is the cached
    /// one: a root of thousands of snapshots is megabytes of small
    /// allocations, and a server listing snapshots reads it per request.
    pub async fn root_shared(&self) -> Result<Arc<Root>> {
        let mut cached = self.last_root.lock().unwrap().clone();
        let mut cached_generation = cached.as_ref().map(|r| r.generation);
        let hint = self.hinted_generation().await;
        // A hint behind the cache is a slow writer's, or the folder was
        // wiped and made a repository again: only the cached root's
        // existence tells them apart, and a vanished one is forgotten.
        if let (Some(h), Some(c)) = (hint, cached_generation) {
            if h < c && !self.exists(&keys::root(c)).await? {
                *self.last_root.lock().unwrap() = None;
                (cached, cached_generation) = (None, None);
            }
        }
        let start = match hint {
            Some(n) if Some(n) <= cached_generation => cached_generation,
            Some(0) => Some(0),
            Some(n) if self.exists(&keys::root(n)).await? => Some(n),
            // No hint, or one naming a removed generation: list.
            _ => None,
        };
        let mut generation = match start {
            Some(n) => n,
            None => self
                .store
                .list(keys::ROOT_PREFIX)
                .await?
                .iter()
                .filter_map(|m| keys::parse_root(&m.key))
                .max()
                .unwrap_or(0),
        };
        while self.exists(&keys::root(generation + 1)).await? {
            generation += 1;
        }
        // The hint is written after its root: naming a generation past the
        // newest means that root object was lost.
        *self.lost_generation.lock().unwrap() = hint.filter(|&h| h > generation);
        let root = match cached {
            Some(r) if r.generation == generation => r,
            _ => Arc::new(self.root_at(generation).await?),
        };
        let mut last = self.last_root.lock().unwrap();
        if last.as_ref().is_none_or(|r| r.generation < root.generation) {
            *last = Some(root.clone());
        }
        Ok(root)
    }

    /// A root summary as retention and health see it
    /// (`core::slm::watchdog::candidate`), its policy read from the
    /// manifest where an older writer's rebase dropped it from the root.
    pub async fn retention_candidate(
        &self,
        s: &crate::core::format::manifest::SnapshotSummary,
    ) -> Result<crate::core::slm::retention::Candidate> {
        use crate::core::slm::watchdog::{candidate, needs_manifest};
        let from_manifest = if needs_manifest(s) {
            self.manifest(s)
                .await?
                .metadata
                .get(crate::core::format::manifest::POLICY_METADATA_KEY)
                .cloned()
        } else {
            None
        };
        Ok(candidate(s, from_manifest))
    }

    /// The generation `index.latest` names although no such root exists
    /// (as of the last [`RepoReader::root`]): a lost root object, whose
    /// snapshots are no longer listed.
    pub fn lost_generation(&self) -> Option<u64> {
        *self.lost_generation.lock().unwrap()
    }

    /// Refuses to write on top of `newest` when a newer root was lost (as
    /// of the last [`RepoReader::root`]): writing would hide the loss for
    /// good.
    pub fn refuse_lost_root(&self, newest: u64) -> Result<()> {
        match self.lost_generation() {
            Some(hinted) => Err(Error::LostRoot { hinted, newest }),
            None => Ok(()),
        }
    }

    /// Whether `key` exists. Only "not found" means no: any other failure
    /// (denied, unavailable) is an error, never mistaken for absence, which
    /// would make an older root look like the newest.
    async fn exists(&self, key: &str) -> Result<bool> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn root_at(&self, generation: u64) -> Result<Root> {
        if generation == 0 {
            return Ok(Root::empty());
        }
        let key = keys::root(generation);
        let root = Root::decode(&self.get(&key).await?).map_err(|e| Error::format(&key, e))?;
        if root.generation != generation {
            return Err(Error::format(
                &key,
                FormatError::Invalid(format!("claims generation {}", root.generation)),
            ));
        }
        Ok(root)
    }

    /// Every index file a root lists, decoded and checked against its name.
    pub async fn index_files(&self, root: &Root) -> Result<Vec<(Id, IndexFile)>> {
        let keys: Vec<String> = root.index_files.iter().map(keys::index_file).collect();
        let bytes = self.get_many(&keys).await?;
        root.index_files
            .iter()
            .zip(bytes)
            .zip(&keys)
            .map(|((id, b), key)| {
                if Id::of(&b) != *id {
                    return Err(Error::DamagedObject {
                        key: key.clone(),
                        detail: "its content does not match the SHA-256 in its name".into(),
                    });
                }
                Ok((
                    *id,
                    IndexFile::decode(&b).map_err(|e| Error::format(key, e))?,
                ))
            })
            .collect()
    }

    /// The newest root with its index files, read consistently. An index
    /// file that vanishes mid-read was removed by a delete that committed a
    /// newer root: that root is read and loading starts again.
    pub async fn root_and_index_files(&self) -> Result<(Root, Vec<(Id, IndexFile)>)> {
        let root = self.root().await?;
        self.index_files_from(root).await
    }

    /// [`RepoReader::root_and_index_files`] from `root`, read just before.
    async fn index_files_from(&self, mut root: Root) -> Result<(Root, Vec<(Id, IndexFile)>)> {
        for _ in 0..READ_ATTEMPTS {
            match self.index_files(&root).await {
                Err(Error::Storage(StorageError::NotFound { key })) => {
                    let newer = self.root().await?;
                    if newer.generation == root.generation {
                        return Err(StorageError::NotFound { key }.into());
                    }
                    root = newer;
                }
                other => return other.map(|files| (root, files)),
            }
        }
        Err(Error::CommitContention(READ_ATTEMPTS))
    }

    /// The newest root and its merged index (see `root_and_index_files`).
    pub async fn root_and_index(&self) -> Result<(Root, RepoIndex)> {
        let root = self.root().await?;
        if let Some(index) = self.cached_index(&root.index_files) {
            return Ok((root, index));
        }
        let (root, files) = self.index_files_from(root).await?;
        Ok((root, self.merge_and_keep(&files)))
    }

    pub async fn index(&self, root: &Root) -> Result<RepoIndex> {
        if let Some(index) = self.cached_index(&root.index_files) {
            return Ok(index);
        }
        Ok(self.merge_and_keep(&self.index_files(root).await?))
    }

    /// The same reader (its clones too) keeping the merged index of the
    /// root it read last, for readers kept across many reads.
    pub fn keeping_index(mut self) -> RepoReader {
        self.merged_index = Some(Default::default());
        self
    }

    fn cached_index(&self, files: &[Id]) -> Option<RepoIndex> {
        let cached = self.merged_index.as_ref()?.lock().unwrap();
        cached
            .as_ref()
            .filter(|(ids, _)| ids.as_slice() == files)
            .map(|(_, index)| index.clone())
    }

    fn merge_and_keep(&self, files: &[(Id, IndexFile)]) -> RepoIndex {
        let index = merged(files);
        if let Some(kept) = &self.merged_index {
            let ids = files.iter().map(|(id, _)| *id).collect();
            *kept.lock().unwrap() = Some((ids, index.clone()));
        }
        index
    }

    /// Reads one blob by range and makes sure it is the blob of its id.
    pub async fn read_blob(&self, index: &RepoIndex, id: &Id) -> Result<Vec<u8>> {
        let (e, stored, bases) = self.stored_with_bases(index, id).await?;
        self.decode_verified(&e, &stored, &bases)
    }

    /// A blob's plain bytes, opened and decoded but not checked against
    /// its id: only for a caller that checks what it makes of them (the
    /// leader's chunk deltas, each rebuilt chunk of which its follower
    /// checks), since the check is most of a read's CPU.
    pub async fn read_blob_unchecked(&self, index: &RepoIndex, id: &Id) -> Result<Vec<u8>> {
        let (e, stored, bases) = self.stored_with_bases(index, id).await?;
        self.decode_unchecked(&e, &stored, &bases)
            .map(Cow::into_owned)
    }

    /// [`RepoReader::read_blob_unchecked`] of a blob already read,
    /// borrowing `stored` where the blob is stored raw in a plain
    /// repository.
    pub fn decode_unchecked<'a>(
        &self,
        e: &BlobEntry,
        stored: &'a [u8],
        bases: &Bases,
    ) -> Result<Cow<'a, [u8]>> {
        decode_unchecked(e, stored, self.zstd, &self.sealing, bases)
    }

    /// Bytes `range` of a blob's plain bytes, read straight from its pack,
    /// when it is stored as it is (raw, in a plain repository); `None`
    /// when it is compressed or sealed (only a whole read opens those).
    /// Unchecked, as [`RepoReader::read_blob_unchecked`] is.
    pub async fn raw_blob_range(
        &self,
        index: &RepoIndex,
        id: &Id,
        range: std::ops::Range<u64>,
    ) -> Result<Option<Bytes>> {
        let (pack, e) = locate(index, id, "blob")?;
        if e.codec != Codec::Raw || self.sealing.is_encrypted() {
            return Ok(None);
        }
        if range.start > range.end || range.end > u64::from(e.stored_len) {
            return Err(Error::Integrity {
                id: e.id,
                detail: format!("bytes {range:?} of a {}-byte blob", e.stored_len),
            });
        }
        let at = e.offset + range.start..e.offset + range.end;
        Ok(Some(self.store.get(&keys::pack(&pack), Some(at)).await?))
    }

    /// A blob's index entry and its stored bytes, read by range.
    /// A blob's stored bytes and, if it is a patch, its base: read
    /// alongside each other, not one after the other.
    async fn stored_with_bases(
        &self,
        index: &RepoIndex,
        id: &Id,
    ) -> Result<(BlobEntry, Bytes, Bases)> {
        let ((e, stored), bases) =
            futures::try_join!(self.stored_blob(index, id), self.bases(index, [id]))?;
        Ok((e, stored, bases))
    }

    pub async fn stored_blob(&self, index: &RepoIndex, id: &Id) -> Result<(BlobEntry, Bytes)> {
        let (pack, e) = locate(index, id, "blob")?;
        let stored = self
            .store
            .get(&keys::pack(&pack), Some(e.offset..e.end()))
            .await?;
        Ok((e, stored))
    }

    pub async fn tree(&self, index: &RepoIndex, id: &Id) -> Result<Tree> {
        let bytes = self.read_tree_blob(index, id).await?;
        Tree::decode(&bytes).map_err(|e| Error::format(format!("tree {id}"), e))
    }

    /// Reads a tree blob through the tree-pack cache.
    async fn read_tree_blob(&self, index: &RepoIndex, id: &Id) -> Result<Vec<u8>> {
        let (pack, e) = locate(index, id, "tree")?;
        let cached = self.tree_packs.lock().unwrap().get(&pack).cloned();
        let whole = match cached {
            Some(b) => b,
            None => {
                // Writers close packs near pack_size, so that bounds the fetch.
                if self.config.pack_size > TREE_PACK_CACHE_MAX {
                    return self.read_blob(index, id).await;
                }
                let b = self.store.get(&keys::pack(&pack), None).await?;
                let mut cache = self.tree_packs.lock().unwrap();
                let held: usize = cache.values().map(Bytes::len).sum();
                if held + b.len() > TREE_CACHE_BUDGET {
                    cache.clear();
                }
                cache.insert(pack, b.clone());
                b
            }
        };
        let stored = whole
            .get(e.offset as usize..e.end() as usize)
            .ok_or_else(|| Error::Integrity {
                id: *id,
                detail: format!("lies outside pack {}", pack.short()),
            })?;
        self.decode_verified(&e, stored, &Bases::none())
    }

    /// The manifest a root's summary names, checked against the hash the
    /// root records and against the summary itself.
    pub async fn manifest(&self, summary: &SnapshotSummary) -> Result<Manifest> {
        let key = keys::manifest(&summary.uuid);
        let bytes = self.get(&key).await?;
        let damaged = |detail: String| Error::DamagedSnapshot {
            snapshot: summary.snapshot.clone(),
            detail,
        };
        if summary.manifest.is_some_and(|h| Id::of(&bytes) != h) {
            return Err(damaged(format!(
                "{key} does not match the SHA-256 its root records"
            )));
        }
        let m = Manifest::decode(&bytes).map_err(|e| damaged(format!("{key}: {e}")))?;
        if let Some(field) = m.disagreement(summary) {
            return Err(damaged(format!("{key} disagrees with its root on {field}")));
        }
        Ok(m)
    }

    /// Every tree reachable from `roots`.
    pub async fn load_trees(&self, index: &RepoIndex, roots: &[Id]) -> Result<HashMap<Id, Tree>> {
        let mut trees = HashMap::new();
        let mut owners = HashSet::new();
        let mut stack: Vec<Id> = roots.to_vec();
        while let Some(id) = stack.pop() {
            if trees.contains_key(&id) {
                continue;
            }
            let mut t = self.tree(index, &id).await?;
            t.share_owner_names(&mut owners);
            stack.extend(t.nodes.iter().filter_map(|n| n.subtree));
            trees.insert(id, t);
        }
        Ok(trees)
    }
}

fn merged(files: &[(Id, IndexFile)]) -> RepoIndex {
    let mut index = RepoIndex::new();
    for (_, f) in files {
        index.merge(f);
    }
    index
}

/// Where blob `id` is stored; `kind` names it ("tree", "blob") if the index
/// does not list it.
fn locate(index: &RepoIndex, id: &Id, kind: &'static str) -> Result<(Id, BlobEntry)> {
    index.entry(id).ok_or(Error::BlobMissing { kind, id: *id })
}

/// Blob `e`'s stored bytes in `bytes`, the fetched range of read `r`.
pub fn stored_in<'a>(bytes: &'a [u8], r: &PackRead, e: &BlobEntry) -> Result<&'a [u8]> {
    let at = e.offset.checked_sub(r.offset).map(|at| at as usize);
    let span = at.and_then(|at| Some(at..at.checked_add(e.stored_len as usize)?));
    span.and_then(|s| bytes.get(s))
        .ok_or_else(|| Error::Integrity {
            id: e.id,
            detail: format!("pack {} is shorter than its index says", r.pack.short()),
        })
}

/// Ranged reads of bases [`RepoReader::bases`] keeps in flight: enough to
/// hide a remote store's latency, few enough not to flood it.
const BASE_READS_AT_ONCE: usize = 16;

/// The plain bytes of base blobs, by id, for decoding patch blobs
/// (`core::format::patch`); [`RepoReader::bases`] reads them.
#[derive(Debug, Clone, Default)]
pub struct Bases(HashMap<Id, Bytes>);

impl Bases {
    /// No bases: for blobs that are never patches (trees) or a batch
    /// without patch blobs.
    pub fn none() -> Bases {
        Bases::default()
    }

    pub fn get(&self, id: &Id) -> Option<&Bytes> {
        self.0.get(id)
    }
}

/// A stored blob opened (authenticated, when sealed) and decoded, not
/// checked against its id. A blob stored raw in a plain repository is its
/// stored bytes: borrowed, not copied.
fn decode_unchecked<'a>(
    e: &BlobEntry,
    stored: &'a [u8],
    zstd: ZstdDecoder,
    sealing: &Sealing,
    bases: &Bases,
) -> Result<Cow<'a, [u8]>> {
    decode_opened(e, stored, zstd, sealing, bases).map(|(plain, _)| plain)
}

/// [`decode_unchecked`], and whether the envelope bound the bytes to the
/// entry's id.
fn decode_opened<'a>(
    e: &BlobEntry,
    stored: &'a [u8],
    zstd: ZstdDecoder,
    sealing: &Sealing,
    bases: &Bases,
) -> Result<(Cow<'a, [u8]>, bool)> {
    let integrity = |detail: String| Error::Integrity { id: e.id, detail };
    let binding = BlobBinding {
        id: e.id,
        codec: e.codec,
        raw_len: e.raw_len,
    };
    let opened = sealing
        .open_blob(e.kind, &binding, stored)
        .map_err(|err| integrity(err.to_string()))?;
    match e.codec {
        Codec::Raw => {
            if opened.bytes.len() as u64 != u64::from(e.raw_len) {
                return Err(integrity(format!(
                    "raw blob holds {} bytes, its entry says {}",
                    opened.bytes.len(),
                    e.raw_len
                )));
            }
            Ok((opened.bytes, opened.id_bound))
        }
        Codec::Zstd => codec::decode(e.codec, &opened.bytes, e.raw_len, zstd)
            .map(|plain| (Cow::Owned(plain), opened.id_bound))
            .map_err(|err| integrity(err.to_string())),
        Codec::Patch => {
            let base = patch::base_of(&opened.bytes).map_err(|err| integrity(err.to_string()))?;
            let base_plain = bases.get(&base).ok_or(Error::BlobMissing {
                kind: "patch base",
                id: base,
            })?;
            patch::decode(&opened.bytes, e.raw_len, base_plain, zstd)
                .map(|plain| (Cow::Owned(plain), opened.id_bound))
                .map_err(|err| integrity(err.to_string()))
        }
    }
}

/// Opens a stored blob (an envelope in an encrypted repository), decodes
/// it (zstd frames with `zstd`, patches over their base in `bases`) and
/// makes sure it is the blob of its id: by its envelope where that binds
/// the id (layout 2), else by hashing the content. Borrowed as
/// [`decode_unchecked`] is.
pub fn decode_verified<'a>(
    e: &BlobEntry,
    stored: &'a [u8],
    zstd: ZstdDecoder,
    sealing: &Sealing,
    bases: &Bases,
) -> Result<Cow<'a, [u8]>> {
    let (plain, id_bound) = decode_opened(e, stored, zstd, sealing, bases)?;
    if !id_bound {
        check_id(e, &plain, sealing)?;
    }
    Ok(plain)
}

/// [`decode_verified`] that also hashes a blob its envelope bound, so a
/// writer that named a blob wrongly is caught too (`check --read-data`).
pub fn decode_rehashed<'a>(
    e: &BlobEntry,
    stored: &'a [u8],
    zstd: ZstdDecoder,
    sealing: &Sealing,
    bases: &Bases,
) -> Result<Cow<'a, [u8]>> {
    let plain = decode_unchecked(e, stored, zstd, sealing, bases)?;
    check_id(e, &plain, sealing)?;
    Ok(plain)
}

fn check_id(e: &BlobEntry, plain: &[u8], sealing: &Sealing) -> Result<()> {
    if sealing.id_of(plain) != e.id {
        return Err(Error::Integrity {
            id: e.id,
            detail: match (sealing.is_encrypted(), e.codec == Codec::Patch) {
                (true, false) => "content does not match its keyed id".into(),
                (false, false) => "content does not match its SHA-256".into(),
                (true, true) => {
                    "a patch that, over its base, does not match its keyed id (the patch or its base is damaged)".into()
                }
                (false, true) => {
                    "a patch that, over its base, does not match its SHA-256 (the patch or its base is damaged)".into()
                }
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::crypto::content_ids::KeyedIdKind;
    use crate::core::crypto::keys::MasterKey;
    use crate::core::format::blob::BlobKind;
    use crate::core::format::codec::ruzstd_decode;

    fn nonces(out: &mut [u8]) {
        out.fill(7);
    }

    fn sealing() -> Sealing {
        let master = MasterKey::from_bytes([3; 32]);
        Sealing::encrypted(&master, "test", KeyedIdKind::NEWEST, Some(nonces))
    }

    /// `plain` sealed raw, as a key holder would, under the entry `id`.
    fn sealed_as(sealing: &Sealing, id: Id, plain: &[u8]) -> (BlobEntry, Vec<u8>) {
        let raw_len = plain.len() as u32;
        let binding = BlobBinding {
            id,
            codec: Codec::Raw,
            raw_len,
        };
        let mut stored = Vec::new();
        let nonce = sealing.blob_nonce().unwrap();
        sealing.seal_blob_into(BlobKind::Data, &binding, plain, nonce, &mut stored);
        let entry = BlobEntry {
            id,
            offset: 0,
            stored_len: stored.len() as u32,
            raw_len,
            kind: BlobKind::Data,
            codec: Codec::Raw,
        };
        (entry, stored)
    }

    #[test]
    fn bound_blobs_are_taken_on_their_envelope_and_rehashed_by_check() {
        let s = sealing();
        let plain = b"the bytes of a chunk";
        let (e, stored) = sealed_as(&s, s.id_of(plain), plain);
        let verified = decode_verified(&e, &stored, ruzstd_decode, &s, &Bases::none()).unwrap();
        assert_eq!(verified.as_ref(), plain);
        assert!(decode_rehashed(&e, &stored, ruzstd_decode, &s, &Bases::none()).is_ok());
        // A writer that named the blob wrongly: its envelope vouches for
        // the name, so reads take it unhashed; only check's rehash sees it.
        let (e, stored) = sealed_as(&s, Id([9; 32]), plain);
        assert!(decode_verified(&e, &stored, ruzstd_decode, &s, &Bases::none()).is_ok());
        let err = decode_rehashed(&e, &stored, ruzstd_decode, &s, &Bases::none()).unwrap_err();
        assert!(err.to_string().contains("keyed id"), "{err}");
    }

    /// A shell that gives the master key itself (the Worker's read key).
    struct Given(MasterKey);

    impl Unlock for Given {
        fn password(&self, location: &str) -> Result<crate::repo::keyring::Password> {
            Err(Error::Encrypted(location.to_string()))
        }
        fn nonces(&self) -> Option<crate::repo::sealing::NonceSource> {
            None
        }
        fn master_key(&self) -> Option<MasterKey> {
            Some(self.0.clone())
        }
    }

    #[test]
    fn a_read_key_is_proved_apart_from_what_the_config_says() {
        use futures::FutureExt;
        let master = MasterKey::from_bytes([3; 32]);
        let mut config = RepoConfig::new("r1".into(), 5);
        config.version = 2;
        config.content_ids = Some(KeyedIdKind::Blake3.name().into());
        let sealed = EncryptedConfig::seal(&config, &master.data_key(), &[1; 24]);
        // The plain part altered to claim the other keyed hash.
        let text = String::from_utf8(sealed.encode()).unwrap();
        let altered = text.replace(KeyedIdKind::Blake3.name(), KeyedIdKind::HmacSha256.name());
        assert_ne!(altered, text);
        let open = |bytes: &str, key: MasterKey| {
            let store = Arc::new(crate::storage::memory::MemoryStore::new());
            let put = store.put(
                keys::CONFIG,
                bytes.to_string().into(),
                crate::storage::PutMode::Create,
            );
            put.now_or_never().unwrap().unwrap();
            let given = Given(key);
            let reader = RepoReader::open_with(store, ruzstd_decode, &given);
            reader
                .now_or_never()
                .expect("a memory store is ready at once")
        };
        assert!(open(&text, master.clone()).is_ok());
        let other = MasterKey::from_bytes([4; 32]);
        let wrong = open(&text, other).err().unwrap();
        assert!(matches!(wrong, Error::WrongReadKey(_)), "{wrong}");
        let err = open(&altered, master).err().unwrap();
        assert!(matches!(err, Error::Format { .. }), "{err}");
        assert!(err.to_string().contains("blob ids"), "{err}");
    }

    #[test]
    fn a_raw_blob_of_another_length_than_its_entry_is_refused() {
        let plain = b"twelve bytes";
        let e = BlobEntry {
            id: Id::of(plain),
            offset: 0,
            stored_len: 12,
            raw_len: 13,
            kind: BlobKind::Data,
            codec: Codec::Raw,
        };
        let err = decode_verified(&e, plain, ruzstd_decode, &Sealing::plain(), &Bases::none())
            .unwrap_err();
        assert!(err.to_string().contains("12 bytes"), "{err}");
    }
}
