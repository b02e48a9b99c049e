//! An open repository for the synchronous shell: the repository layer's
//! reader and writer (`crate::repo`), each call blocking on the shell's
//! runtime. Only synchronous code (CLI commands, pipeline threads) calls
//! these; async code uses `crate::repo` directly.

use std::sync::Arc;

use bytes::Bytes;

use crate::core::format::config::RepoConfig;
use crate::core::format::id::Id;
use crate::core::format::index::{IndexFile, RepoIndex};
use crate::core::format::manifest::{Manifest, SnapshotSummary};
use crate::core::format::root::RepoSettings;
use crate::core::format::root::{Root, RootChange};
use crate::core::format::tree::Tree;
use crate::native::clock::TokioSleep;
use crate::native::error::Result;
use crate::native::location::Location;
use crate::native::runtime::block_on;
use crate::repo::keyring::Unlock;
use crate::repo::{writer, RepoReader, RepoWriter};
use crate::storage::counting::{CountingStore, RequestCounter};
use crate::storage::guard::{Limiter, ReadOnlyStore, ThrottledStore};
use crate::storage::Storage;

use crate::core::crypto::keys::{MasterKey, KEY_LEN};
use crate::core::crypto::slot::Argon2Params;
use crate::core::format::blob::BlobEntry;
use crate::native::decompressor::libzstd_decode;
use crate::native::password::{os_random, NativeUnlock};
use crate::repo::reader::Bases;
use crate::repo::sealing::Sealing;
use zeroize::Zeroize;

#[derive(Debug, Clone)]
pub struct Repo {
    /// The storage, wrapped so every request is counted.
    pub store: Arc<dyn Storage>,
    pub config: RepoConfig,
    pub requests: Arc<RequestCounter>,
    /// The repository's settings, as of opening.
    pub settings: RepoSettings,
    /// Writes, over `store`, through a reader whose caches clones share.
    writer: RepoWriter,
    /// The storage without rate limits, for small control objects
    /// (in-flight markers) that must never queue behind bulk transfers.
    control: Arc<dyn Storage>,
}

fn counted(store: Arc<dyn Storage>) -> (Arc<dyn Storage>, Arc<RequestCounter>) {
    let counter = Arc::new(RequestCounter::default());
    (
        Arc::new(CountingStore::new(store, counter.clone())),
        counter,
    )
}

impl Repo {
    /// `reader`'s storage is the repository's: counted, and in an
    /// encrypted repository sealed on top.
    fn new(requests: Arc<RequestCounter>, reader: RepoReader) -> Repo {
        let store = reader.store.clone();
        Repo {
            control: store.clone(),
            config: reader.config.clone(),
            store,
            requests,
            settings: RepoSettings::default(),
            writer: RepoWriter::new(reader, Arc::new(TokioSleep)),
        }
    }

    /// Creates a repository. Refuses a location that already holds one.
    pub fn init(location: &Location, config: RepoConfig) -> Result<Repo> {
        let store = location.open(true)?;
        Ok(Self::init_in(store, config)?.with_reserve())
    }

    /// A new local repository keeps room for deletes on a full disk.
    fn with_reserve(self) -> Repo {
        if let Some(root) = crate::native::guard::local_root(&self) {
            crate::native::reserve::ensure(&root);
        }
        self
    }

    pub fn init_in(store: Arc<dyn Storage>, config: RepoConfig) -> Result<Repo> {
        let (store, requests) = counted(store);
        let reader = block_on(writer::init(store, config, libzstd_decode))?;
        Ok(Repo::new(requests, reader))
    }

    /// Creates an encrypted repository whose first key slot wraps a fresh
    /// master key under `password`.
    pub fn init_encrypted(
        location: &Location,
        config: RepoConfig,
        password: &[u8],
        params: Argon2Params,
    ) -> Result<Repo> {
        let (store, requests) = counted(location.open(true)?);
        let mut raw = [0u8; KEY_LEN];
        os_random(&mut raw);
        let master = MasterKey::from_bytes(raw);
        raw.zeroize();
        let init = writer::init_encrypted(
            store,
            config,
            libzstd_decode,
            &master,
            password,
            params,
            os_random,
        );
        Ok(Repo::new(requests, block_on(init)?).with_reserve())
    }

    pub fn open(location: &Location) -> Result<Repo> {
        let store = location.open(false)?;
        Self::open_in(store)
    }

    /// Opens a repository whose password `unlock` gives instead of the
    /// process's own sources (the source of `snapshot copy --from-password-*`).
    pub fn open_unlocked_by(location: &Location, unlock: &dyn Unlock) -> Result<Repo> {
        let store = location.open(false)?;
        Self::guarded(Self::open_by(store, unlock)?)
    }

    /// Opens a repository, enforcing its settings (a read-only repository
    /// refuses every write).
    pub fn open_in(store: Arc<dyn Storage>) -> Result<Repo> {
        Self::guarded(Self::open_unguarded(store)?)
    }

    fn guarded(repo: Repo) -> Result<Repo> {
        if repo.settings.readonly {
            let guarded: Arc<dyn Storage> = Arc::new(ReadOnlyStore::new(repo.raw_store()));
            let mut repo = repo.with_store(guarded);
            repo.control = repo.store.clone();
            return Ok(repo);
        }
        Ok(repo)
    }

    /// Opens a repository without enforcing read-only mode: only for
    /// changing the settings themselves.
    pub fn open_unguarded(store: Arc<dyn Storage>) -> Result<Repo> {
        Self::open_by(store, &NativeUnlock)
    }

    fn open_by(store: Arc<dyn Storage>, unlock: &dyn Unlock) -> Result<Repo> {
        let (store, requests) = counted(store);
        let reader = block_on(RepoReader::open_with(store, libzstd_decode, unlock))?;
        let mut repo = Repo::new(requests, reader);
        repo.settings = repo.root()?.settings;
        Ok(repo)
    }

    /// The same repository over another wrapping of its storage (which
    /// the reader seals again in an encrypted repository).
    fn with_store(&self, store: Arc<dyn Storage>) -> Repo {
        let reader = self.writer.reader().with_store(store);
        Repo {
            store: reader.store.clone(),
            writer: RepoWriter::new(reader, Arc::new(TokioSleep)),
            ..self.clone()
        }
    }

    /// The same repository, its reader keeping the merged index of the
    /// root it read last ([`RepoReader::keeping_index`]): for a handle
    /// kept across many reads (a follower's, a leader's delta answers).
    pub fn keeping_index(&self) -> Repo {
        let reader = self.writer.reader().clone().keeping_index();
        Repo {
            writer: RepoWriter::new(reader, Arc::new(TokioSleep)),
            ..self.clone()
        }
    }

    /// The counted storage under any sealing, for wrapping it again.
    fn raw_store(&self) -> Arc<dyn Storage> {
        self.reader().unsealed_store()
    }

    /// How this repository seals objects and names blobs.
    pub fn sealing(&self) -> &Sealing {
        self.reader().sealing()
    }

    /// Decodes a stored blob with libzstd and checks that it has its id;
    /// a patch blob over its base in `bases` ([`Repo::bases`]).
    pub fn decode_verified(&self, e: &BlobEntry, stored: &[u8], bases: &Bases) -> Result<Vec<u8>> {
        self.reader().decode_verified(e, stored, bases)
    }

    /// See [`crate::repo::reader::RepoReader::decode_checked`].
    pub fn decode_checked<'a>(
        &self,
        e: &BlobEntry,
        stored: &'a [u8],
        bases: &Bases,
    ) -> Result<std::borrow::Cow<'a, [u8]>> {
        self.reader().decode_checked(e, stored, bases)
    }

    /// See [`crate::repo::reader::RepoReader::bases`]; a batch without
    /// patch blobs costs a lookup per id.
    pub fn bases<'a>(
        &self,
        index: &RepoIndex,
        ids: impl IntoIterator<Item = &'a Id> + Clone,
    ) -> Result<Bases> {
        self.bases_beside(index, ids, |_| None)
    }

    /// [`Repo::bases`], taking each base `known` gives (checked against
    /// its id, as a chunk cache's entries are) instead of reading it.
    pub fn bases_beside<'a>(
        &self,
        index: &RepoIndex,
        ids: impl IntoIterator<Item = &'a Id> + Clone,
        known: impl Fn(&Id) -> Option<bytes::Bytes>,
    ) -> Result<Bases> {
        if !ids
            .clone()
            .into_iter()
            .any(|id| index.base_of(id).is_some())
        {
            return Ok(Bases::none());
        }
        block_on(self.reader().bases_beside(index, ids, known))
    }

    /// The same repository with transfer rate limits (bytes per second).
    pub fn with_limits(&self, uploads: Option<u64>, downloads: Option<u64>) -> Repo {
        if uploads.is_none() && downloads.is_none() {
            return self.clone();
        }
        let throttled = ThrottledStore::new(self.raw_store(), uploads, downloads);
        self.with_store(Arc::new(throttled))
    }

    /// The same repository with its downloads counted against `limiter`,
    /// a budget that other reads may share.
    pub fn with_download_limiter(&self, limiter: Arc<Limiter>) -> Repo {
        let throttled = ThrottledStore::sharing(self.raw_store(), None, Some(limiter));
        self.with_store(Arc::new(throttled))
    }

    /// The async reader behind this handle (same storage, same caches).
    pub fn reader(&self) -> &RepoReader {
        self.writer.reader()
    }

    /// The async writer behind this handle.
    pub fn writer(&self) -> &RepoWriter {
        &self.writer
    }

    /// The generation of the newest root this handle has read (0 if none),
    /// without asking the storage.
    pub fn cached_generation(&self) -> u64 {
        self.reader().cached_generation()
    }

    /// The storage without rate limits (see the `control` field).
    pub fn control_store(&self) -> Arc<dyn Storage> {
        self.control.clone()
    }

    pub fn get(&self, key: &str) -> Result<Bytes> {
        block_on(self.reader().get(key))
    }

    /// Fetches many objects concurrently, in the order given.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Bytes>> {
        block_on(self.reader().get_many(keys))
    }

    /// The newest committed root generation (see [`RepoReader::root`]).
    pub fn root(&self) -> Result<Root> {
        block_on(self.reader().root())
    }

    /// See [`RepoReader::lost_generation`].
    pub fn lost_generation(&self) -> Option<u64> {
        self.reader().lost_generation()
    }

    /// Refuses to write on top of `newest` when a newer root was lost
    /// (as of the last root read): writing would hide the loss for good.
    pub fn refuse_lost_root(&self, newest: u64) -> Result<()> {
        self.reader().refuse_lost_root(newest)
    }

    pub fn root_at(&self, generation: u64) -> Result<Root> {
        block_on(self.reader().root_at(generation))
    }

    /// Commits `change` on top of the newest root. A lost race re-reads the
    /// newer root and applies the change again; a change that no longer
    /// applies (e.g. the snapshot name was taken meanwhile) is an error.
    pub fn commit(&self, change: &RootChange) -> Result<Root> {
        block_on(self.writer.commit(change))
    }

    /// Every index file a root lists, decoded.
    pub fn index_files(&self, root: &Root) -> Result<Vec<(Id, IndexFile)>> {
        block_on(self.reader().index_files(root))
    }

    /// The newest root with its index files, read consistently.
    pub fn root_and_index_files(&self) -> Result<(Root, Vec<(Id, IndexFile)>)> {
        block_on(self.reader().root_and_index_files())
    }

    /// The newest root and its merged index.
    pub fn root_and_index(&self) -> Result<(Root, RepoIndex)> {
        block_on(self.reader().root_and_index())
    }

    pub fn index(&self, root: &Root) -> Result<RepoIndex> {
        block_on(self.reader().index(root))
    }

    /// Reads one blob by range and checks its hash.
    pub fn read_blob(&self, index: &RepoIndex, id: &Id) -> Result<Vec<u8>> {
        block_on(self.reader().read_blob(index, id))
    }

    /// See [`crate::repo::reader::RepoReader::read_blob_unchecked`].
    pub fn read_blob_unchecked(&self, index: &RepoIndex, id: &Id) -> Result<Vec<u8>> {
        block_on(self.reader().read_blob_unchecked(index, id))
    }

    /// See [`crate::repo::reader::RepoReader::bases_unchecked`].
    pub fn bases_unchecked(
        &self,
        index: &RepoIndex,
        ids: &[Id],
    ) -> Result<std::collections::HashMap<Id, Bytes>> {
        block_on(self.reader().bases_unchecked(index, ids))
    }

    /// See [`crate::repo::reader::RepoReader::raw_blob_range`].
    pub fn raw_blob_range(
        &self,
        index: &RepoIndex,
        id: &Id,
        range: std::ops::Range<u64>,
    ) -> Result<Option<Bytes>> {
        block_on(self.reader().raw_blob_range(index, id, range))
    }

    /// See [`crate::repo::reader::RepoReader::stored_blob`].
    pub fn stored_blob(&self, index: &RepoIndex, id: &Id) -> Result<(BlobEntry, Bytes)> {
        block_on(self.reader().stored_blob(index, id))
    }

    pub fn tree(&self, index: &RepoIndex, id: &Id) -> Result<Tree> {
        block_on(self.reader().tree(index, id))
    }

    pub fn manifest(&self, summary: &SnapshotSummary) -> Result<Manifest> {
        block_on(self.reader().manifest(summary))
    }

    /// Stores a finished pack. Its key is its hash, so every writer of that
    /// key writes the same bytes: a plain (atomic) put is safe, and lets
    /// object stores upload large packs in parts.
    ///
    /// The stored size is checked afterwards (one HEAD per pack): a server
    /// that keeps a truncated object gets one more upload, then the snapshot
    /// fails before anything refers to the pack.
    pub fn put_pack(&self, id: &Id, bytes: Vec<u8>) -> Result<()> {
        put_pack_into(self.store.as_ref(), id, Bytes::from(bytes))
    }

    /// Stores an index file and returns its id.
    pub fn put_index_file(&self, file: &IndexFile) -> Result<Id> {
        block_on(self.writer.put_index_file(file))
    }
}

/// See [`writer::put_pack`]. Free of `Repo` so pack uploads can run on their
/// own threads.
pub fn put_pack_into(store: &dyn Storage, id: &Id, bytes: Bytes) -> Result<()> {
    block_on(writer::put_pack(store, id, bytes))
}
