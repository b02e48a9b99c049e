//! Key slots: the master key wrapped under a password.
//!
//! A slot records everything needed to unwrap it except the password: the
//! argon2id parameters and salt, the nonce and the wrapped key. Opening
//! costs exactly one argon2id derivation; the slot key then decrypts the
//! master key with XChaCha20-Poly1305, whose tag tells a wrong password
//! apart from the right one. Adding or changing a password writes a new
//! slot around the same master key, so no data object changes.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::core::crypto::envelope::{NONCE_LEN, TAG_LEN};
use crate::core::crypto::error::CryptoError;
use crate::core::crypto::keys::{MasterKey, KEY_LEN};

pub const SLOT_VERSION: u32 = 1;
pub const KDF_ALGORITHM: &str = "argon2id";
/// Argon2 version 1.3 (0x13), the only one written or read.
pub const ARGON2_VERSION: u32 = 0x13;
pub const SALT_LEN: usize = 16;
/// The wrapped master key: its 32 encrypted bytes and the 16-byte tag.
pub const WRAPPED_LEN: usize = KEY_LEN + TAG_LEN;
/// Associated data of the wrapped key: a slot key opens only slots.
const SLOT_AD: &[u8] = b"snapkeep v2 key slot";

/// Upper bounds a slot may ask for: a hostile or corrupted slot must not
/// make `open` run for hours or allocate more than a browser tab can.
pub const MAX_MEMORY_KIB: u32 = 1 << 20; // 1 GiB
pub const MAX_ITERATIONS: u32 = 64;
pub const MAX_PARALLELISM: u32 = 16;

/// The cost of one argon2id derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB (argon2's `m`).
    pub memory_kib: u32,
    /// Passes over the memory (argon2's `t`).
    pub iterations: u32,
    /// Lanes (argon2's `p`): native builds derive them on rayon's threads
    /// (argon2's `parallel` feature), wasm32 one after another; the result
    /// is the same either way.
    pub parallelism: u32,
}

impl Argon2Params {
    /// 64 MiB, 3 passes, 4 lanes: RFC 9106's second recommended setting.
    /// About 0.09 s per derivation on this project's 2-core machines with
    /// the lanes on two threads, 0.12 s on one (`cargo run --release
    /// --example crypto_costs`).
    pub const DEFAULT: Argon2Params = Argon2Params {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 4,
    };

    fn checked(self) -> Result<Params, CryptoError> {
        let past = |what: &str, value: u32, max: u32| {
            CryptoError::KdfParams(format!("{what} {value} is past the maximum {max}"))
        };
        if self.memory_kib > MAX_MEMORY_KIB {
            return Err(past("memory_kib", self.memory_kib, MAX_MEMORY_KIB));
        }
        if self.iterations > MAX_ITERATIONS {
            return Err(past("iterations", self.iterations, MAX_ITERATIONS));
        }
        if self.parallelism > MAX_PARALLELISM {
            return Err(past("parallelism", self.parallelism, MAX_PARALLELISM));
        }
        Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEY_LEN),
        )
        .map_err(|e| CryptoError::KdfParams(e.to_string()))
    }

    /// The slot key: argon2id(password, salt) with these parameters.
    fn derive(
        self,
        password: &[u8],
        salt: &[u8; SALT_LEN],
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.checked()?);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        argon
            .hash_password_into(password, salt, key.as_mut())
            .map_err(|e| CryptoError::KdfParams(e.to_string()))?;
        Ok(key)
    }
}

impl Default for Argon2Params {
    fn default() -> Argon2Params {
        Argon2Params::DEFAULT
    }
}

/// One key slot, as stored (JSON; docs/FORMAT.md, format v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySlot {
    version: u32,
    kdf: SlotKdf,
    nonce: Hex<NONCE_LEN>,
    wrapped_key: Hex<WRAPPED_LEN>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SlotKdf {
    algorithm: String,
    version: u32,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    salt: Hex<SALT_LEN>,
}

impl KeySlot {
    /// `master` wrapped under `password`. `salt` and `nonce` must be fresh
    /// random bytes drawn by the caller.
    pub fn wrap(
        master: &MasterKey,
        password: &[u8],
        params: Argon2Params,
        salt: [u8; SALT_LEN],
        nonce: [u8; NONCE_LEN],
    ) -> Result<KeySlot, CryptoError> {
        let slot_key = params.derive(password, &salt)?;
        let mut wrapped = [0u8; WRAPPED_LEN];
        wrapped[..KEY_LEN].copy_from_slice(master.bytes());
        let tag = slot_cipher(&slot_key)
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), SLOT_AD, &mut wrapped[..KEY_LEN])
            .expect("32 bytes are within XChaCha20's limit");
        wrapped[KEY_LEN..].copy_from_slice(&tag);
        Ok(KeySlot {
            version: SLOT_VERSION,
            kdf: SlotKdf {
                algorithm: KDF_ALGORITHM.to_string(),
                version: ARGON2_VERSION,
                memory_kib: params.memory_kib,
                iterations: params.iterations,
                parallelism: params.parallelism,
                salt: Hex(salt),
            },
            nonce: Hex(nonce),
            wrapped_key: Hex(wrapped),
        })
    }

    /// The master key, if `password` is this slot's. One argon2id
    /// derivation; [`CryptoError::WrongPassword`] when the tag does not
    /// verify.
    pub fn open(&self, password: &[u8]) -> Result<MasterKey, CryptoError> {
        self.check_kdf()?;
        let slot_key = self.params().derive(password, &self.kdf.salt.0)?;
        let (encrypted, tag) = self.wrapped_key.0.split_at(KEY_LEN);
        let mut master = Zeroizing::new([0u8; KEY_LEN]);
        master.copy_from_slice(encrypted);
        slot_cipher(&slot_key)
            .decrypt_in_place_detached(
                XNonce::from_slice(&self.nonce.0),
                SLOT_AD,
                master.as_mut(),
                Tag::from_slice(tag),
            )
            .map_err(|_| CryptoError::WrongPassword)?;
        Ok(MasterKey::from_bytes(*master))
    }

    /// The argon2id cost recorded in this slot.
    pub fn params(&self) -> Argon2Params {
        Argon2Params {
            memory_kib: self.kdf.memory_kib,
            iterations: self.kdf.iterations,
            parallelism: self.kdf.parallelism,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a key slot serializes")
    }

    /// A slot from its stored JSON. Unknown fields are ignored, so later
    /// versions may add descriptive ones (a host name, a creation time).
    pub fn from_json(bytes: &[u8]) -> Result<KeySlot, CryptoError> {
        let slot: KeySlot =
            serde_json::from_slice(bytes).map_err(|e| CryptoError::MalformedSlot(e.to_string()))?;
        if slot.version != SLOT_VERSION {
            return Err(CryptoError::MalformedSlot(format!(
                "slot version {} (this snapkeep reads version {SLOT_VERSION})",
                slot.version
            )));
        }
        Ok(slot)
    }

    fn check_kdf(&self) -> Result<(), CryptoError> {
        if self.kdf.algorithm != KDF_ALGORITHM || self.kdf.version != ARGON2_VERSION {
            return Err(CryptoError::UnknownKdf(format!(
                "{} version {:#x}",
                self.kdf.algorithm, self.kdf.version
            )));
        }
        Ok(())
    }
}

fn slot_cipher(slot_key: &[u8; KEY_LEN]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(slot_key.into())
}

/// Fixed-length bytes as lowercase hex in JSON.
#[derive(Clone, PartialEq, Eq)]
struct Hex<const N: usize>([u8; N]);

impl<const N: usize> fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Hex<N>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(s.as_bytes(), &mut out).map_err(|_| {
            serde::de::Error::custom(format!("expected {} hex digits, got {:?}", 2 * N, s))
        })?;
        Ok(Hex(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Cheap parameters: the tests are about the slot, not the cost.
    const CHEAP: Argon2Params = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    const SALT: [u8; SALT_LEN] = [0x5a; SALT_LEN];
    const NONCE: [u8; NONCE_LEN] = [0x4e; NONCE_LEN];

    fn master() -> MasterKey {
        MasterKey::from_bytes(std::array::from_fn(|i| i as u8))
    }

    fn slot() -> KeySlot {
        KeySlot::wrap(&master(), b"correct horse", CHEAP, SALT, NONCE).unwrap()
    }

    #[test]
    fn opens_with_its_password_after_a_json_round_trip() {
        let json = slot().to_json();
        let read = KeySlot::from_json(&json).unwrap();
        assert_eq!(read, slot());
        assert_eq!(read.params(), CHEAP);
        assert_eq!(read.open(b"correct horse").unwrap(), master());
    }

    #[test]
    fn wrong_password_is_named() {
        for wrong in [
            &b"correct horsf"[..],
            b"",
            b"Correct horse",
            b"correct horse ",
        ] {
            assert_eq!(slot().open(wrong), Err(CryptoError::WrongPassword));
        }
    }

    #[test]
    fn two_slots_of_one_key_open_with_their_own_passwords() {
        let other = KeySlot::wrap(
            &master(),
            b"battery staple",
            CHEAP,
            [1; SALT_LEN],
            [2; NONCE_LEN],
        )
        .unwrap();
        assert_eq!(other.open(b"battery staple").unwrap(), master());
        assert_eq!(slot().open(b"correct horse").unwrap(), master());
        assert_eq!(
            other.open(b"correct horse"),
            Err(CryptoError::WrongPassword)
        );
        assert_ne!(other.wrapped_key, slot().wrapped_key);
    }

    #[test]
    fn matches_fixed_vector() {
        // Format v2: the slot's JSON byte for byte. The wrapped key was
        // computed independently (Python's `cryptography`: Argon2id, then
        // HChaCha20 + ChaCha20-Poly1305 with AD "snapkeep v2 key slot").
        let json = String::from_utf8(slot().to_json()).unwrap();
        assert_eq!(json, SLOT_JSON);
        assert_eq!(
            KeySlot::from_json(SLOT_JSON.as_bytes())
                .unwrap()
                .open(b"correct horse")
                .unwrap(),
            master()
        );
    }

    const SLOT_JSON: &str = r#"{
  "version": 1,
  "kdf": {
    "algorithm": "argon2id",
    "version": 19,
    "memory_kib": 64,
    "iterations": 1,
    "parallelism": 1,
    "salt": "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
  },
  "nonce": "4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e",
  "wrapped_key": "97a085d5114b31e3eff84cb97ad7288839eeb287fc7bb1275e5a8588590350e28bfdf874291445e495c6dc7b55a1d30f"
}"#;

    #[test]
    fn any_altered_field_refuses_to_open() {
        let good: serde_json::Value = serde_json::from_slice(&slot().to_json()).unwrap();
        let alter = |path: &[&str], value: serde_json::Value| {
            let mut v = good.clone();
            let mut at = &mut v;
            for p in path {
                at = &mut at[*p];
            }
            *at = value;
            KeySlot::from_json(&serde_json::to_vec(&v).unwrap())
                .and_then(|s| s.open(b"correct horse"))
        };
        let flip_first_digit = |hex: &str| {
            let first = if hex.starts_with('0') { "1" } else { "0" };
            serde_json::Value::String(format!("{first}{}", &hex[1..]))
        };
        for field in [&["nonce"][..], &["wrapped_key"], &["kdf", "salt"]] {
            let mut at = &good;
            for p in field {
                at = &at[*p];
            }
            let altered = flip_first_digit(at.as_str().unwrap());
            assert_eq!(
                alter(field, altered),
                Err(CryptoError::WrongPassword),
                "{field:?}"
            );
        }
        assert_eq!(
            alter(&["kdf", "iterations"], 2.into()),
            Err(CryptoError::WrongPassword)
        );
        assert_eq!(
            alter(&["kdf", "memory_kib"], 128.into()),
            Err(CryptoError::WrongPassword)
        );
        assert_eq!(
            alter(&["kdf", "parallelism"], 2.into()),
            Err(CryptoError::WrongPassword)
        );
        assert!(matches!(
            alter(&["kdf", "algorithm"], "argon2i".into()),
            Err(CryptoError::UnknownKdf(_))
        ));
        assert!(matches!(
            alter(&["kdf", "version"], 16.into()),
            Err(CryptoError::UnknownKdf(_))
        ));
        assert!(matches!(
            alter(&["version"], 2.into()),
            Err(CryptoError::MalformedSlot(_))
        ));
        assert!(matches!(
            alter(&["nonce"], "abcd".into()),
            Err(CryptoError::MalformedSlot(_))
        ));
    }

    #[test]
    fn hostile_parameters_are_refused_before_deriving() {
        for params in [
            Argon2Params {
                memory_kib: MAX_MEMORY_KIB + 1,
                ..CHEAP
            },
            Argon2Params {
                iterations: MAX_ITERATIONS + 1,
                ..CHEAP
            },
            Argon2Params {
                parallelism: MAX_PARALLELISM + 1,
                ..CHEAP
            },
            Argon2Params {
                iterations: 0,
                ..CHEAP
            },
            Argon2Params {
                memory_kib: 1,
                ..CHEAP
            },
        ] {
            assert!(
                matches!(
                    KeySlot::wrap(&master(), b"pw", params, SALT, NONCE),
                    Err(CryptoError::KdfParams(_))
                ),
                "{params:?}"
            );
        }
        assert!(Argon2Params::DEFAULT.checked().is_ok());
    }

    #[test]
    fn malformed_json_is_named() {
        assert!(matches!(
            KeySlot::from_json(b"{"),
            Err(CryptoError::MalformedSlot(_))
        ));
        assert!(matches!(
            KeySlot::from_json(b"{}"),
            Err(CryptoError::MalformedSlot(_))
        ));
    }
}
