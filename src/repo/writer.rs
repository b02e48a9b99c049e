//! [`RepoWriter`]: everything that adds to a repository — its config, packs,
//! index files, manifests and root generations — async and free of threads
//! and runtimes, so the CLI (through `native::repo`), a server and a Worker
//! all write the same way.
//!
//! A root generation is committed with a create-only put: of two writers
//! that race for generation N exactly one wins; the other re-reads the new
//! root, applies its change again (a rebase) and retries after a short
//! backoff. Everything a root refers to is written before it, so nothing is
//! visible until that put succeeds.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::core::crypto::content_ids::KeyedIdKind;
use crate::core::crypto::keys::MasterKey;
use crate::core::crypto::slot::Argon2Params;
use crate::core::format::codec::ZstdDecoder;
use crate::core::format::config::RepoConfig;
use crate::core::format::id::Id;
use crate::core::format::index::{IndexFile, RepoIndex};
use crate::core::format::keys;
use crate::core::format::manifest::Manifest;
use crate::core::format::root::{Root, RootChange, RootConflict};
use crate::core::format::sealed_config::{EncryptedConfig, ENCRYPTED_VERSION};
use crate::core::policy::revive::{bases_for, revive_set, with_bases};
use crate::error::{Error, Result};
use crate::repo::clock::Sleep;
use crate::repo::keyring;
use crate::repo::sealing::{NonceSource, Sealing};
use crate::repo::RepoReader;
use crate::storage::{PutMode, Storage, StorageError};

/// Attempts at committing a root before giving up under contention.
pub const COMMIT_ATTEMPTS: u32 = 50;
/// Attempts at committing a snapshot whose reused blobs a concurrent delete
/// keeps dropping from the index.
pub const REVIVE_ATTEMPTS: u32 = 10;

/// Creates a repository: writes its config with a create-only put, so a
/// location that already holds one is refused and never overwritten. The
/// reader it returns decodes zstd blobs with `zstd`.
pub async fn init(
    store: Arc<dyn Storage>,
    config: RepoConfig,
    zstd: ZstdDecoder,
) -> Result<RepoReader> {
    let put = store
        .put(keys::CONFIG, Bytes::from(config.encode()), PutMode::Create)
        .await;
    match put {
        Err(StorageError::AlreadyExists { .. }) => Err(Error::AlreadyInitialised(store.location())),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(RepoReader::with_config(store, config, zstd)),
    }
}

/// Creates an encrypted repository (format v2): the first key slot, which
/// wraps `master` under `password`, then the config with the settings
/// sealed. The config's create-only put decides: on a location that
/// already holds a repository the slot just written is removed again.
pub async fn init_encrypted(
    store: Arc<dyn Storage>,
    mut config: RepoConfig,
    zstd: ZstdDecoder,
    master: &MasterKey,
    password: &[u8],
    params: Argon2Params,
    nonces: NonceSource,
) -> Result<RepoReader> {
    if store.head(keys::CONFIG).await.is_ok() {
        return Err(Error::AlreadyInitialised(store.location()));
    }
    config.version = ENCRYPTED_VERSION;
    config.content_ids = Some(KeyedIdKind::NEWEST.name().into());
    let slot = keyring::wrap(master, password, params, nonces)?;
    let slot_id = keyring::put_slot(store.as_ref(), &slot, nonces).await?;
    let sealing = Sealing::encrypted(master, &slot_id, KeyedIdKind::NEWEST, Some(nonces));
    let key = sealing.data_key().expect("encrypted");
    let encrypted = EncryptedConfig::seal(&config, key, &sealing.nonce()?);
    let put = store
        .put(
            keys::CONFIG,
            Bytes::from(encrypted.encode()),
            PutMode::Create,
        )
        .await;
    match put {
        Err(StorageError::AlreadyExists { .. }) => {
            let _ = store.delete(&keys::key_slot(&slot_id)).await;
            Err(Error::AlreadyInitialised(store.location()))
        }
        Err(e) => Err(e.into()),
        Ok(()) => RepoReader::sealed(store, &encrypted, sealing, zstd),
    }
}

/// Uploads a pack and proves the storage kept all of it. A pack's key is
/// its hash, so every writer of that key writes the same bytes: a plain
/// (atomic) put is safe and lets object stores upload large packs in parts.
/// A server that keeps a truncated object gets one more upload, then the
/// operation fails before anything refers to the pack.
pub async fn put_pack(store: &dyn Storage, id: &Id, bytes: Bytes) -> Result<()> {
    let key = keys::pack(id);
    for _ in 0..2 {
        store.put(&key, bytes.clone(), PutMode::Overwrite).await?;
        if store.head(&key).await?.size == bytes.len() as u64 {
            return Ok(());
        }
    }
    let kept = store.head(&key).await?.size;
    Err(Error::DamagedObject {
        detail: format!("storage kept {kept} of the {} bytes uploaded", bytes.len()),
        key,
    })
}

/// Writes to one repository through its reader's storage and caches.
#[derive(Debug, Clone)]
pub struct RepoWriter {
    reader: RepoReader,
    sleep: Arc<dyn Sleep>,
}

impl RepoWriter {
    /// `sleep` paces the backoff between lost commit races.
    pub fn new(reader: RepoReader, sleep: Arc<dyn Sleep>) -> RepoWriter {
        RepoWriter { reader, sleep }
    }

    pub fn reader(&self) -> &RepoReader {
        &self.reader
    }

    fn store(&self) -> &dyn Storage {
        self.reader.store.as_ref()
    }

    /// See [`put_pack`].
    pub async fn put_pack(&self, id: &Id, bytes: Bytes) -> Result<()> {
        put_pack(self.store(), id, bytes).await
    }

    /// Stores an index file (create-only; an existing one with the same id
    /// holds the same bytes) and returns its id.
    pub async fn put_index_file(&self, file: &IndexFile) -> Result<Id> {
        let bytes = file.encode();
        let id = Id::of(&bytes);
        let put = self
            .store()
            .put(&keys::index_file(&id), Bytes::from(bytes), PutMode::Create)
            .await;
        match put {
            Ok(()) | Err(StorageError::AlreadyExists { .. }) => Ok(id),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a snapshot's manifest and returns the hash its root summary
    /// records. The uuid is fresh, so an existing manifest is this
    /// process's own retried write.
    pub async fn put_manifest(&self, manifest: &Manifest) -> Result<Id> {
        let encoded = manifest.encode();
        let id = Id::of(&encoded);
        let put = self
            .store()
            .put(
                &keys::manifest(&manifest.uuid),
                Bytes::from(encoded),
                PutMode::Create,
            )
            .await;
        match put {
            Ok(()) | Err(StorageError::AlreadyExists { .. }) => Ok(id),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a manifest that no root will ever name (its commit was
    /// refused). Best effort: cleanup removes what this leaves.
    pub async fn forget_manifest(&self, uuid: &str) {
        let _ = self.store().delete(&keys::manifest(uuid)).await;
    }

    /// Commits `change` on top of the newest root. A lost race re-reads the
    /// newer root and applies the change again; a change that no longer
    /// applies (e.g. the snapshot name was taken meanwhile) is an error.
    pub async fn commit(&self, change: &RootChange) -> Result<Root> {
        for attempt in 0..COMMIT_ATTEMPTS {
            let current = self.reader.root().await?;
            // Committing over a lost root would reuse its generation and
            // hide the loss for good.
            self.reader.refuse_lost_root(current.generation)?;
            let next = current.apply(change)?;
            let put = self
                .store()
                .put(
                    &keys::root(next.generation),
                    Bytes::from(next.encode()),
                    PutMode::Create,
                )
                .await;
            match put {
                Ok(()) => {
                    // The hint may lag or be lost; readers probe past it.
                    let hint = Bytes::from(next.generation.to_string());
                    let _ = self
                        .store()
                        .put(keys::LATEST, hint, PutMode::Overwrite)
                        .await;
                    self.reader.remember(&next);
                    return Ok(next);
                }
                Err(StorageError::AlreadyExists { .. }) => {
                    // A retried put may have met its own earlier attempt.
                    if let Ok(there) = self.reader.root_at(next.generation).await {
                        if change.is_applied_in(&there) && there.snapshots == next.snapshots {
                            return Ok(there);
                        }
                    }
                    let backoff = Duration::from_millis(5 * (attempt as u64 + 1));
                    self.sleep.sleep(backoff).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::CommitContention(COMMIT_ATTEMPTS))
    }

    /// Commits a snapshot (`change` adds it). If a concurrent delete
    /// rewrote the index this snapshot deduplicated against, every blob the
    /// snapshot references must still be indexed: blobs the delete dropped
    /// are found through `base` (the index the snapshot started from) and
    /// indexed again in this snapshot's own index file (see
    /// `core::policy::revive`), and the commit is retried on the new root.
    /// Only a pack that is really gone fails the snapshot, cleanly.
    pub async fn commit_snapshot(
        &self,
        change: &mut RootChange,
        referenced: &HashSet<Id>,
        own: &IndexFile,
        base: &RepoIndex,
    ) -> Result<Root> {
        for _ in 0..REVIVE_ATTEMPTS {
            match self.commit(change).await {
                Err(Error::Conflict(RootConflict::IndexRewritten)) => {
                    self.rebase_snapshot(change, referenced, own, base).await?;
                }
                other => return other,
            }
        }
        Err(Error::CommitContention(REVIVE_ATTEMPTS))
    }

    /// Points `change` at the newest root's index files, re-indexing the
    /// blobs that root no longer locates.
    async fn rebase_snapshot(
        &self,
        change: &mut RootChange,
        referenced: &HashSet<Id>,
        own: &IndexFile,
        base: &RepoIndex,
    ) -> Result<()> {
        let (now, mut index) = self.reader.root_and_index().await?;
        index.merge(own);
        let needed = with_bases(referenced, own, base);
        let revive = revive_set(&needed, &index, base).map_err(reused_data_gone)?;
        for (pack, entries) in &revive {
            if self.store().head(&keys::pack(pack)).await.is_err() {
                return Err(reused_data_gone(entries[0].id));
            }
        }
        if let RootChange::AddSnapshot {
            base_index_files,
            index_file,
            ..
        } = change
        {
            if !revive.is_empty() {
                let mut file = own.clone();
                file.packs.extend(revive);
                file.packs.sort_by_key(|(p, _)| *p);
                file.bases = bases_for(&file, base);
                *index_file = Some(self.put_index_file(&file).await?);
            }
            *base_index_files = now.index_files.clone();
        }
        Ok(())
    }
}

fn reused_data_gone(id: Id) -> Error {
    Error::ReusedDataRemoved { id }
}
