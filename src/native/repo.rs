//! An open repository: its storage, its config, and the operations every
//! command shares (reading the latest root, loading the index, reading and
//! verifying blobs, committing a new root generation).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::core::blob::BlobEntry;
use crate::core::codec;
use crate::core::config::RepoConfig;
use crate::core::id::Id;
use crate::core::index::{IndexFile, RepoIndex};
use crate::core::keys;
use crate::core::manifest::{Manifest, SnapshotSummary};
use crate::core::root::RepoSettings;
use crate::core::root::{Root, RootChange};
use crate::core::tree::Tree;
use crate::native::error::{Error, Result};
use crate::native::location::Location;
use crate::native::runtime::block_on;
use crate::storage::counting::{CountingStore, RequestCounter};
use crate::storage::guard::{ReadOnlyStore, ThrottledStore};
use crate::storage::{PutMode, Storage, StorageError};

/// Attempts at committing a root before giving up under contention.
const COMMIT_ATTEMPTS: u32 = 50;
/// Objects fetched at once when loading many (index files, manifests).
const FETCH_CONCURRENCY: usize = 16;

#[derive(Debug, Clone)]
pub struct Repo {
    /// The storage, wrapped so every request is counted.
    pub store: Arc<dyn Storage>,
    pub config: RepoConfig,
    pub requests: Arc<RequestCounter>,
    /// Whole tree packs, fetched once: loading a snapshot's trees then costs
    /// one request per tree pack instead of one per directory.
    tree_packs: Arc<Mutex<HashMap<Id, Bytes>>>,
    /// The repository's settings, as of opening.
    pub settings: RepoSettings,
    /// The newest root seen: later reads only probe for newer generations.
    last_root: Arc<Mutex<Option<Root>>>,
    /// The storage without rate limits, for small control objects
    /// (in-flight markers) that must never queue behind bulk transfers.
    control: Arc<dyn Storage>,
}

/// Tree packs up to this size are cached whole.
const TREE_PACK_CACHE_MAX: u64 = 64 * 1024 * 1024;

fn counted(store: Arc<dyn Storage>) -> (Arc<dyn Storage>, Arc<RequestCounter>) {
    let counter = Arc::new(RequestCounter::default());
    (
        Arc::new(CountingStore::new(store, counter.clone())),
        counter,
    )
}

impl Repo {
    /// Creates a repository. Refuses a location that already holds one.
    pub fn init(location: &Location, config: RepoConfig) -> Result<Repo> {
        let store = location.open(true)?;
        Self::init_in(store, config)
    }

    pub fn init_in(store: Arc<dyn Storage>, config: RepoConfig) -> Result<Repo> {
        let (store, requests) = counted(store);
        let put = block_on(store.put(keys::CONFIG, Bytes::from(config.encode()), PutMode::Create));
        match put {
            Err(StorageError::AlreadyExists { .. }) => {
                Err(Error::AlreadyInitialised(store.location()))
            }
            Err(e) => Err(e.into()),
            Ok(()) => Ok(Repo {
                control: store.clone(),
                store,
                config,
                requests,
                tree_packs: Default::default(),
                settings: RepoSettings::default(),
                last_root: Default::default(),
            }),
        }
    }

    pub fn open(location: &Location) -> Result<Repo> {
        let store = location.open(false)?;
        Self::open_in(store)
    }

    /// Opens a repository, enforcing its settings (a read-only repository
    /// refuses every write).
    pub fn open_in(store: Arc<dyn Storage>) -> Result<Repo> {
        let mut repo = Self::open_unguarded(store)?;
        if repo.settings.readonly {
            repo.store = Arc::new(ReadOnlyStore::new(repo.store.clone()));
            repo.control = repo.store.clone();
        }
        Ok(repo)
    }

    /// Opens a repository without enforcing read-only mode: only for
    /// changing the settings themselves.
    pub fn open_unguarded(store: Arc<dyn Storage>) -> Result<Repo> {
        let (store, requests) = counted(store);
        let bytes = match block_on(store.get(keys::CONFIG, None)) {
            Err(StorageError::NotFound { .. }) => {
                return Err(Error::NotARepository(store.location()))
            }
            r => r?,
        };
        let config = RepoConfig::decode(&bytes).map_err(|e| Error::format(keys::CONFIG, e))?;
        let mut repo = Repo {
            control: store.clone(),
            store,
            config,
            requests,
            tree_packs: Default::default(),
            settings: RepoSettings::default(),
            last_root: Default::default(),
        };
        repo.settings = repo.root()?.settings;
        Ok(repo)
    }

    /// The same repository with transfer rate limits (bytes per second).
    pub fn with_limits(&self, uploads: Option<u64>, downloads: Option<u64>) -> Repo {
        if uploads.is_none() && downloads.is_none() {
            return self.clone();
        }
        let mut repo = self.clone();
        repo.store = Arc::new(ThrottledStore::new(self.store.clone(), uploads, downloads));
        repo
    }

    /// The generation of the newest root this handle has read (0 if none),
    /// without asking the storage.
    pub fn cached_generation(&self) -> u64 {
        self.last_root
            .lock()
            .unwrap()
            .as_ref()
            .map_or(0, |r| r.generation)
    }

    /// The storage without rate limits (see the `control` field).
    pub fn control_store(&self) -> Arc<dyn Storage> {
        self.control.clone()
    }

    pub fn get(&self, key: &str) -> Result<Bytes> {
        Ok(block_on(self.store.get(key, None))?)
    }

    /// Fetches many objects concurrently, in the order given.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Bytes>> {
        block_on(async {
            let mut out = vec![Bytes::new(); keys.len()];
            for (batch_no, batch) in keys.chunks(FETCH_CONCURRENCY).enumerate() {
                let mut set = tokio::task::JoinSet::new();
                for (i, key) in batch.iter().enumerate() {
                    let (store, key) = (self.store.clone(), key.clone());
                    set.spawn(async move { (i, store.get(&key, None).await) });
                }
                while let Some(done) = set.join_next().await {
                    let (i, r) = done.map_err(|e| StorageError::Io {
                        key: String::new(),
                        detail: e.to_string(),
                    })?;
                    out[batch_no * FETCH_CONCURRENCY + i] = r?;
                }
            }
            Ok(out)
        })
    }

    /// The generation an `index.latest` hint names, if it is readable.
    fn hinted_generation(&self) -> Option<u64> {
        let b = block_on(self.store.get(keys::LATEST, None)).ok()?;
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
    /// hole, unseen; cleanup also keeps generations younger than its grace
    /// period, which covers the moment between reading and committing).
    pub fn root(&self) -> Result<Root> {
        let cached = self.last_root.lock().unwrap().clone();
        let cached_generation = cached.as_ref().map(|r| r.generation);
        let start = match self.hinted_generation() {
            Some(n) if Some(n) <= cached_generation => cached_generation,
            Some(n) if n == 0 || block_on(self.store.head(&keys::root(n))).is_ok() => Some(n),
            // No hint, or one naming a removed generation: list.
            _ => None,
        };
        let mut generation = match start {
            Some(n) => n,
            None => block_on(self.store.list(keys::ROOT_PREFIX))?
                .iter()
                .filter_map(|m| keys::parse_root(&m.key))
                .max()
                .unwrap_or(0),
        };
        while block_on(self.store.head(&keys::root(generation + 1))).is_ok() {
            generation += 1;
        }
        let root = match cached {
            Some(r) if r.generation == generation => r,
            _ => self.root_at(generation)?,
        };
        *self.last_root.lock().unwrap() = Some(root.clone());
        Ok(root)
    }

    pub fn root_at(&self, generation: u64) -> Result<Root> {
        if generation == 0 {
            return Ok(Root::empty());
        }
        let key = keys::root(generation);
        let root = Root::decode(&self.get(&key)?).map_err(|e| Error::format(&key, e))?;
        if root.generation != generation {
            return Err(Error::format(
                &key,
                crate::core::error::FormatError::Invalid(format!(
                    "claims generation {}",
                    root.generation
                )),
            ));
        }
        Ok(root)
    }

    /// Commits `change` on top of the newest root. A lost race re-reads the
    /// newer root and applies the change again; a change that no longer
    /// applies (e.g. the snapshot name was taken meanwhile) is an error.
    pub fn commit(&self, change: &RootChange) -> Result<Root> {
        for attempt in 0..COMMIT_ATTEMPTS {
            let current = self.root()?;
            let next = current.apply(change)?;
            let key = keys::root(next.generation);
            match block_on(
                self.store
                    .put(&key, Bytes::from(next.encode()), PutMode::Create),
            ) {
                Ok(()) => {
                    // The hint may lag or be lost; readers probe past it.
                    let hint = Bytes::from(next.generation.to_string());
                    let _ = block_on(self.store.put(keys::LATEST, hint, PutMode::Overwrite));
                    *self.last_root.lock().unwrap() = Some(next.clone());
                    return Ok(next);
                }
                Err(StorageError::AlreadyExists { .. }) => {
                    // A retried put may have met its own earlier attempt.
                    if let Ok(there) = self.root_at(next.generation) {
                        if change.is_applied_in(&there) && there.snapshots == next.snapshots {
                            return Ok(there);
                        }
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5 * (attempt as u64 + 1)));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::CommitContention(COMMIT_ATTEMPTS))
    }

    /// Every index file a root lists, decoded.
    pub fn index_files(&self, root: &Root) -> Result<Vec<(Id, IndexFile)>> {
        let keys: Vec<String> = root.index_files.iter().map(keys::index_file).collect();
        let bytes = self.get_many(&keys)?;
        root.index_files
            .iter()
            .zip(bytes)
            .zip(&keys)
            .map(|((id, b), key)| {
                if Id::of(&b) != *id {
                    return Err(Error::Integrity {
                        id: *id,
                        detail: format!("{key} does not match its name"),
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
    pub fn root_and_index_files(&self) -> Result<(Root, Vec<(Id, IndexFile)>)> {
        let mut root = self.root()?;
        for _ in 0..COMMIT_ATTEMPTS {
            match self.index_files(&root) {
                Err(Error::Storage(StorageError::NotFound { key })) => {
                    let newer = self.root()?;
                    if newer.generation == root.generation {
                        return Err(StorageError::NotFound { key }.into());
                    }
                    root = newer;
                }
                other => return other.map(|files| (root, files)),
            }
        }
        Err(Error::CommitContention(COMMIT_ATTEMPTS))
    }

    /// The newest root and its merged index (see `root_and_index_files`).
    pub fn root_and_index(&self) -> Result<(Root, RepoIndex)> {
        let (root, files) = self.root_and_index_files()?;
        let mut index = RepoIndex::new();
        for (_, f) in &files {
            index.merge(f);
        }
        Ok((root, index))
    }

    pub fn index(&self, root: &Root) -> Result<RepoIndex> {
        let mut index = RepoIndex::new();
        for (_, f) in self.index_files(root)? {
            index.merge(&f);
        }
        Ok(index)
    }

    /// Reads one blob by range and checks its hash.
    pub fn read_blob(&self, index: &RepoIndex, id: &Id) -> Result<Vec<u8>> {
        let (pack, e) = index.entry(id).ok_or_else(|| Error::Integrity {
            id: *id,
            detail: "not in the repository index".into(),
        })?;
        let stored = block_on(self.store.get(&keys::pack(&pack), Some(e.offset..e.end())))?;
        decode_verified(&e, &stored)
    }

    pub fn tree(&self, index: &RepoIndex, id: &Id) -> Result<Tree> {
        let bytes = self.read_tree_blob(index, id)?;
        Tree::decode(&bytes).map_err(|e| Error::format(format!("tree {id}"), e))
    }

    /// Reads a tree blob through the tree-pack cache.
    fn read_tree_blob(&self, index: &RepoIndex, id: &Id) -> Result<Vec<u8>> {
        let (pack, e) = index.entry(id).ok_or_else(|| Error::Integrity {
            id: *id,
            detail: "not in the repository index".into(),
        })?;
        let cached = self.tree_packs.lock().unwrap().get(&pack).cloned();
        let whole = match cached {
            Some(b) => b,
            None => {
                // Writers close packs near pack_size, so that bounds the fetch.
                if self.config.pack_size > TREE_PACK_CACHE_MAX {
                    return self.read_blob(index, id);
                }
                let b = block_on(self.store.get(&keys::pack(&pack), None))?;
                self.tree_packs.lock().unwrap().insert(pack, b.clone());
                b
            }
        };
        let stored = whole
            .get(e.offset as usize..e.end() as usize)
            .ok_or_else(|| Error::Integrity {
                id: *id,
                detail: format!("lies outside pack {}", pack.short()),
            })?;
        decode_verified(&e, stored)
    }

    pub fn manifest(&self, summary: &SnapshotSummary) -> Result<Manifest> {
        let key = keys::manifest(&summary.uuid);
        Manifest::decode(&self.get(&key)?).map_err(|e| Error::format(&key, e))
    }

    /// Stores a finished pack. Its key is its hash, so every writer of that
    /// key writes the same bytes: a plain (atomic) put is safe, and lets
    /// object stores upload large packs in parts.
    ///
    /// The stored size is checked afterwards (one HEAD per pack): a server
    /// that keeps a truncated object gets one more upload, then the snapshot
    /// fails before anything refers to the pack.
    pub fn put_pack(&self, id: &Id, bytes: Vec<u8>) -> Result<()> {
        let key = keys::pack(id);
        let bytes = Bytes::from(bytes);
        for _ in 0..2 {
            block_on(self.store.put(&key, bytes.clone(), PutMode::Overwrite))?;
            if block_on(self.store.head(&key))?.size == bytes.len() as u64 {
                return Ok(());
            }
        }
        let kept = block_on(self.store.head(&key))?.size;
        Err(Error::Integrity {
            id: *id,
            detail: format!(
                "storage kept {kept} of the {} bytes uploaded for {key}",
                bytes.len()
            ),
        })
    }

    /// Stores an index file and returns its id.
    pub fn put_index_file(&self, file: &IndexFile) -> Result<Id> {
        let bytes = file.encode();
        let id = Id::of(&bytes);
        match block_on(
            self.store
                .put(&keys::index_file(&id), Bytes::from(bytes), PutMode::Create),
        ) {
            Ok(()) | Err(StorageError::AlreadyExists { .. }) => Ok(id),
            Err(e) => Err(e.into()),
        }
    }
}

/// Decodes a stored blob and checks that it hashes to its id.
pub fn decode_verified(e: &BlobEntry, stored: &[u8]) -> Result<Vec<u8>> {
    let plain = codec::decode(e.codec, stored, e.raw_len).map_err(|err| Error::Integrity {
        id: e.id,
        detail: err.to_string(),
    })?;
    if Id::of(&plain) != e.id {
        return Err(Error::Integrity {
            id: e.id,
            detail: "content does not match its SHA-256".into(),
        });
    }
    Ok(plain)
}
