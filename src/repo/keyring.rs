//! An encrypted repository's key slots (`keys/<id>.json`, docs/FORMAT.md):
//! opening the master key with a password, and adding and removing slots.
//! A slot is written with a create-only put and never changed; adding or
//! changing a password writes a new slot around the same master key, so no
//! other object is touched.

use bytes::Bytes;
use zeroize::Zeroizing;

use crate::core::crypto::envelope::NONCE_LEN;
use crate::core::crypto::keys::MasterKey;
use crate::core::crypto::slot::{Argon2Params, KeySlot, SALT_LEN};
use crate::core::format::keys;
use crate::error::{Error, Result};
use crate::repo::sealing::NonceSource;
use crate::storage::{MaybeSendSync, PutMode, Storage, StorageError};

/// A password, wiped when dropped.
pub type Password = Zeroizing<Vec<u8>>;

/// What a shell gives to open encrypted repositories.
pub trait Unlock: MaybeSendSync {
    /// The password to try on the key slots; asked for only when the
    /// repository is encrypted.
    fn password(&self, location: &str) -> Result<Password>;
    /// Random bytes for nonces, or none in a shell that only reads.
    fn nonces(&self) -> Option<NonceSource>;
    /// The master key itself, where a shell was given it instead of a
    /// password (the edge Worker's read key: no argon2 derivation per
    /// request). Used before any slot is read; [`crate::repo::RepoReader`]
    /// proves it by opening the sealed config ([`Error::WrongReadKey`]).
    fn master_key(&self) -> Option<MasterKey> {
        None
    }
}

/// What [`unlock`] returns as the slot id when the shell gave the master
/// key itself: no slot opened it.
pub const GIVEN_KEY: &str = "(given master key)";

/// A shell with no password: encrypted repositories are refused.
pub struct Locked;

impl Unlock for Locked {
    fn password(&self, location: &str) -> Result<Password> {
        Err(Error::Encrypted(location.to_string()))
    }
    fn nonces(&self) -> Option<NonceSource> {
        None
    }
}

/// A fixed password (the Worker's secret, the inspector's prompt, tests).
pub struct Given {
    pub password: Password,
    pub nonces: Option<NonceSource>,
}

impl Unlock for Given {
    fn password(&self, _location: &str) -> Result<Password> {
        Ok(self.password.clone())
    }
    fn nonces(&self) -> Option<NonceSource> {
        self.nonces
    }
}

/// One stored slot: its id (the `<id>` of its key) and content.
#[derive(Debug, Clone)]
pub struct StoredSlot {
    pub id: String,
    pub slot: KeySlot,
    /// When it was written, where the storage says.
    pub modified_ms: Option<i64>,
}

/// Every readable slot, sorted by id, and how many were unreadable.
pub async fn slots(store: &dyn Storage) -> Result<(Vec<StoredSlot>, usize)> {
    let mut out = Vec::new();
    let mut unreadable = 0;
    for meta in store.list(keys::KEY_SLOT_PREFIX).await? {
        let Some(id) = slot_id(&meta.key) else {
            continue;
        };
        let bytes = store.get(&meta.key, None).await?;
        match KeySlot::from_json(&bytes) {
            Ok(slot) => out.push(StoredSlot {
                id: id.to_string(),
                slot,
                modified_ms: meta.modified_ms,
            }),
            Err(_) => unreadable += 1,
        }
    }
    Ok((out, unreadable))
}

fn slot_id(key: &str) -> Option<&str> {
    key.strip_prefix(keys::KEY_SLOT_PREFIX)?
        .strip_suffix(".json")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// The master key, and the id of the slot that opened it. Each slot costs
/// one argon2id derivation; the password is asked for once. A master key
/// the shell was given is returned as it is, with the id [`GIVEN_KEY`],
/// unchecked (the caller proves it on the sealed config).
pub async fn unlock(store: &dyn Storage, unlock: &dyn Unlock) -> Result<(MasterKey, String)> {
    if let Some(master) = unlock.master_key() {
        return Ok((master, GIVEN_KEY.to_string()));
    }
    let (slots, _) = slots(store).await?;
    if slots.is_empty() {
        return Err(Error::NoKeySlots(store.location()));
    }
    let password = unlock.password(&store.location())?;
    open_any(&slots, &password).ok_or_else(|| Error::WrongPassword {
        location: store.location(),
        slots: slots.len(),
    })
}

/// The master key from the first slot `password` opens.
pub fn open_any(slots: &[StoredSlot], password: &[u8]) -> Option<(MasterKey, String)> {
    // A slot that does not open (wrong password, or parameters out of
    // range) is passed over like a wrong one.
    slots
        .iter()
        .find_map(|s| Some((s.slot.open(password).ok()?, s.id.clone())))
}

/// A new slot wrapping `master` under `password`, with fresh random salt
/// and nonce from `nonces`.
pub fn wrap(
    master: &MasterKey,
    password: &[u8],
    params: Argon2Params,
    nonces: NonceSource,
) -> Result<KeySlot> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    nonces(&mut salt);
    nonces(&mut nonce);
    KeySlot::wrap(master, password, params, salt, nonce)
        .map_err(|e| Error::Password(format!("cannot make a key slot: {e}")))
}

/// Stores `slot` under a fresh id and returns the id.
pub async fn put_slot(store: &dyn Storage, slot: &KeySlot, nonces: NonceSource) -> Result<String> {
    let mut raw = [0u8; 8];
    nonces(&mut raw);
    let id = hex::encode(raw);
    store
        .put(
            &keys::key_slot(&id),
            Bytes::from(slot.to_json()),
            PutMode::Create,
        )
        .await?;
    Ok(id)
}

/// Removes slot `id`; the last readable slot is never removed (the
/// repository could not be opened again).
pub async fn remove_slot(store: &dyn Storage, id: &str) -> Result<()> {
    let (slots, _) = slots(store).await?;
    if !slots.iter().any(|s| s.id == id) {
        return Err(Error::Storage(StorageError::NotFound {
            key: keys::key_slot(id),
        }));
    }
    if slots.len() == 1 {
        return Err(Error::LastKeySlot(id.to_string()));
    }
    store.delete(&keys::key_slot(id)).await?;
    Ok(())
}
