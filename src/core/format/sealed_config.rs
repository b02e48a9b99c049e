//! The `config` of an encrypted repository (format v2): a minimal plain
//! part, enough to know that the repository is encrypted and where its key
//! slots are, and the whole [`RepoConfig`] sealed under the data key.
//!
//! ```json
//! {"version":2,"id":"…","encryption":{"cipher":"xchacha20-poly1305",
//!  "content_ids":"blake3-keyed","key_slots":"keys/"},"sealed":"e1…"}
//! ```
//!
//! `content_ids` names the keyed hash of blob ids ([`KeyedIdKind`]); the
//! sealed config repeats it (absent there: `hmac-sha256`, repositories made
//! before it was recorded) and readers refuse a config whose two parts
//! differ, so the plain part cannot be changed unnoticed.
//!
//! The sealed config says `"version": 2` too. Readers of format v1 refuse
//! the object by its version, so an old binary never writes plaintext into
//! an encrypted repository.

use serde::{Deserialize, Serialize};

use crate::core::crypto::content_ids::KeyedIdKind;
use crate::core::crypto::envelope::{self, ObjectKind, NONCE_LEN};
use crate::core::crypto::keys::DataKey;
use crate::core::error::FormatError;
use crate::core::format::config::RepoConfig;

/// The format version of encrypted repositories.
pub const ENCRYPTED_VERSION: u32 = 2;
pub const CIPHER: &str = "xchacha20-poly1305";
/// Where key slots are stored: `keys/<id>.json`.
pub const KEY_SLOTS: &str = "keys/";

/// The `config` object, either form.
#[derive(Debug, Clone)]
pub enum StoredConfig {
    /// Format v1: the config itself, in plain JSON.
    Plain(RepoConfig),
    /// Format v2: opened with the repository's data key.
    Encrypted(EncryptedConfig),
}

/// The plain part of an encrypted repository's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedConfig {
    pub version: u32,
    pub id: String,
    pub encryption: Encryption,
    /// The envelope (kind config) of the whole config's JSON, in hex.
    #[serde(with = "hex::serde")]
    pub sealed: Vec<u8>,
}

/// How the repository is encrypted; readers refuse other values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    pub cipher: String,
    pub content_ids: String,
    pub key_slots: String,
}

impl Encryption {
    /// The encryption of a repository whose blob ids are of `ids`.
    pub fn with_ids(ids: KeyedIdKind) -> Encryption {
        Encryption {
            cipher: CIPHER.into(),
            content_ids: ids.name().into(),
            key_slots: KEY_SLOTS.into(),
        }
    }

    /// The keyed hash of blob ids, if this snapkeep knows it.
    pub fn ids(&self) -> Option<KeyedIdKind> {
        KeyedIdKind::parse(&self.content_ids)
    }
}

#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

impl StoredConfig {
    pub fn decode(bytes: &[u8]) -> Result<StoredConfig, FormatError> {
        let v: VersionOnly =
            serde_json::from_slice(bytes).map_err(|e| FormatError::json("config", e))?;
        if v.version != ENCRYPTED_VERSION {
            return RepoConfig::decode(bytes).map(StoredConfig::Plain);
        }
        let c: EncryptedConfig =
            serde_json::from_slice(bytes).map_err(|e| FormatError::json("config", e))?;
        let known = c.encryption.ids().map(Encryption::with_ids);
        if known.as_ref() != Some(&c.encryption) {
            return Err(FormatError::Invalid(format!(
                "encryption {:?} / ids {:?} / slots {:?}: this snapkeep reads {CIPHER}, {} or {}, {KEY_SLOTS}",
                c.encryption.cipher,
                c.encryption.content_ids,
                c.encryption.key_slots,
                KeyedIdKind::Blake3.name(),
                KeyedIdKind::HmacSha256.name(),
            )));
        }
        Ok(StoredConfig::Encrypted(c))
    }

    /// The repository's id, readable without a key.
    pub fn id(&self) -> &str {
        match self {
            StoredConfig::Plain(c) => &c.id,
            StoredConfig::Encrypted(c) => &c.id,
        }
    }
}

impl EncryptedConfig {
    /// `config` sealed under `key` (`config.version` must be 2); its
    /// `content_ids` names the keyed hash (absent: `hmac-sha256`).
    pub fn seal(config: &RepoConfig, key: &DataKey, nonce: &[u8; NONCE_LEN]) -> EncryptedConfig {
        debug_assert_eq!(config.version, ENCRYPTED_VERSION);
        EncryptedConfig {
            version: ENCRYPTED_VERSION,
            id: config.id.clone(),
            encryption: Encryption::with_ids(sealed_ids(config)),
            sealed: envelope::seal(key, ObjectKind::Config, nonce, &config.encode()),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("configs always serialize")
    }

    /// Whether the sealed part opens under `key`: a key given without a
    /// slot vouching for it (a read key) is proved by this, apart from
    /// what the config then says.
    pub fn authenticates(&self, key: &DataKey) -> bool {
        envelope::open(key, ObjectKind::Config, &self.sealed).is_ok()
    }

    /// The whole config; fails if `key` is not this repository's or the
    /// object was altered.
    pub fn open(&self, key: &DataKey) -> Result<RepoConfig, FormatError> {
        let plain = envelope::open(key, ObjectKind::Config, &self.sealed)
            .map_err(|e| FormatError::Invalid(e.to_string()))?;
        let config = RepoConfig::decode_version(&plain, ENCRYPTED_VERSION)?;
        if config.id != self.id {
            return Err(FormatError::Invalid(format!(
                "sealed config names repository {} but the plain part {}",
                config.id, self.id
            )));
        }
        let sealed = sealed_ids_name(&config);
        if sealed != self.encryption.content_ids {
            return Err(FormatError::Invalid(format!(
                "sealed config names blob ids {sealed} but the plain part {}",
                self.encryption.content_ids
            )));
        }
        Ok(config)
    }

    /// The keyed hash of blob ids (decoding refused any other).
    pub fn ids(&self) -> KeyedIdKind {
        self.encryption
            .ids()
            .expect("StoredConfig::decode refuses unknown content_ids")
    }
}

/// The keyed hash a sealed config names: repositories from before
/// `content_ids` have HMAC-SHA256 ids.
fn sealed_ids_name(config: &RepoConfig) -> &str {
    (config.content_ids.as_deref()).unwrap_or(KeyedIdKind::HmacSha256.name())
}

/// The keyed hash a config to be sealed names.
fn sealed_ids(config: &RepoConfig) -> KeyedIdKind {
    KeyedIdKind::parse(sealed_ids_name(config))
        .expect("writers name a keyed hash this snapkeep knows")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::crypto::keys::MasterKey;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn encrypted() -> RepoConfig {
        let mut c = RepoConfig::new("r1".into(), 5);
        c.version = ENCRYPTED_VERSION;
        c
    }

    #[test]
    fn round_trips_and_hides_the_settings() {
        let key = MasterKey::from_bytes([1; 32]).data_key();
        let stored = EncryptedConfig::seal(&encrypted(), &key, &[9; NONCE_LEN]).encode();
        let text = String::from_utf8(stored.clone()).unwrap();
        assert!(!text.contains("chunker") && !text.contains("pack_size"));
        let StoredConfig::Encrypted(c) = StoredConfig::decode(&stored).unwrap() else {
            panic!("plain")
        };
        assert_eq!(c.id, "r1");
        assert_eq!(c.open(&key).unwrap(), encrypted());
        let other = MasterKey::from_bytes([2; 32]).data_key();
        assert!(c.open(&other).is_err());
    }

    #[test]
    fn v1_configs_stay_plain_and_v1_readers_refuse_v2() {
        let plain = RepoConfig::new("r0".into(), 1).encode();
        assert!(matches!(
            StoredConfig::decode(&plain),
            Ok(StoredConfig::Plain(_))
        ));
        let key = MasterKey::from_bytes([1; 32]).data_key();
        let v2 = EncryptedConfig::seal(&encrypted(), &key, &[9; NONCE_LEN]).encode();
        assert!(RepoConfig::decode(&v2).is_err());
        let odd = String::from_utf8(v2).unwrap().replace(CIPHER, "aes-gcm");
        assert!(StoredConfig::decode(odd.as_bytes()).is_err());
    }

    #[test]
    fn the_keyed_hash_is_named_in_both_parts_and_they_must_agree() {
        let key = MasterKey::from_bytes([1; 32]).data_key();
        let open = |stored: &[u8]| match StoredConfig::decode(stored)? {
            StoredConfig::Encrypted(c) => c.open(&key).map(|_| c.ids()),
            StoredConfig::Plain(_) => panic!("plain"),
        };
        // Made before the name was sealed: HMAC-SHA256.
        let old = EncryptedConfig::seal(&encrypted(), &key, &[9; NONCE_LEN]).encode();
        assert_eq!(open(&old), Ok(KeyedIdKind::HmacSha256));
        let mut config = encrypted();
        config.content_ids = Some("blake3-keyed".into());
        let new = EncryptedConfig::seal(&config, &key, &[9; NONCE_LEN]).encode();
        assert!(String::from_utf8_lossy(&new).contains("\"content_ids\": \"blake3-keyed\""));
        assert_eq!(open(&new), Ok(KeyedIdKind::Blake3));
        // The plain part changed alone: refused, naming both.
        let swapped = String::from_utf8(new)
            .unwrap()
            .replace("blake3-keyed", "hmac-sha256");
        let err = open(swapped.as_bytes()).unwrap_err().to_string();
        assert!(
            err.contains("blake3-keyed") && err.contains("hmac-sha256"),
            "{err}"
        );
        let odd = swapped.replace("hmac-sha256", "sha1");
        assert!(StoredConfig::decode(odd.as_bytes()).is_err());
        // A repository made before the name was sealed, claimed BLAKE3.
        let claimed = String::from_utf8(old)
            .unwrap()
            .replace("hmac-sha256", "blake3-keyed");
        assert!(open(claimed.as_bytes()).is_err());
    }
}
