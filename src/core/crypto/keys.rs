//! The repository's master key and the subkeys derived from it.
//!
//! The master key is 32 random bytes drawn by the shell at `repo init` and
//! stored only wrapped in key slots. Nothing is encrypted or keyed with it
//! directly: each use has its own subkey, HKDF-SHA256 (RFC 5869) of the
//! master key with no salt (the master key is already uniformly random) and
//! the purpose's fixed info string, so learning one subkey tells nothing of
//! the others or of the master key.

use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

pub const KEY_LEN: usize = 32;

/// The repository's master key. Zeroed when dropped; its `Debug` shows no
/// bytes.
#[derive(Clone)]
pub struct MasterKey([u8; KEY_LEN]);

/// What a subkey is for. Each purpose's info string is part of format v2:
/// changing one changes every key derived with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// Encrypts and authenticates every object's envelope.
    DataEncryption,
    /// Keys the HMAC that names blobs (keyed content ids).
    ContentId,
}

impl KeyPurpose {
    pub const ALL: [KeyPurpose; 2] = [KeyPurpose::DataEncryption, KeyPurpose::ContentId];

    /// The HKDF info string of this purpose.
    pub const fn info(self) -> &'static [u8] {
        match self {
            KeyPurpose::DataEncryption => b"snapkeep v2 data encryption",
            KeyPurpose::ContentId => b"snapkeep v2 content id",
        }
    }
}

impl MasterKey {
    /// A master key from 32 random bytes the caller drew (or unwrapped).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> MasterKey {
        MasterKey(bytes)
    }

    /// The key in lowercase hex (64 digits): the edge Worker's read key
    /// (`snapkeep repo key export`). Wiped when dropped.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0))
    }

    /// A key given as [`MasterKey::to_hex`] prints it (surrounding
    /// whitespace ignored, either case). Says nothing of the bytes it
    /// read: a wrong key must not end up in a log.
    pub fn from_hex(text: &str) -> Result<MasterKey, KeyHexError> {
        let text = text.trim();
        if text.len() != 2 * KEY_LEN {
            return Err(KeyHexError::Length(text.len()));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(text, bytes.as_mut()).map_err(|_| KeyHexError::NotHex)?;
        Ok(MasterKey(*bytes))
    }

    /// The raw bytes, for wrapping into a key slot.
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The envelope key: encrypts and authenticates objects.
    pub fn data_key(&self) -> DataKey {
        DataKey(self.derive(KeyPurpose::DataEncryption))
    }

    /// The key of keyed content ids.
    pub fn content_id_key(&self) -> ContentIdKey {
        ContentIdKey(self.derive(KeyPurpose::ContentId))
    }

    /// HKDF-SHA256(salt: none, ikm: master key, info: purpose, L: 32).
    fn derive(&self, purpose: KeyPurpose) -> [u8; KEY_LEN] {
        let mut out = [0u8; KEY_LEN];
        Hkdf::<Sha256>::new(None, &self.0)
            .expand(purpose.info(), &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }
}

/// Why a hex master key does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyHexError {
    #[error("a master key is 64 hex digits, not {0}")]
    Length(usize),
    #[error("a master key is hex digits only (0-9, a-f)")]
    NotHex,
}

impl PartialEq for MasterKey {
    /// Constant time, so comparing keys leaks nothing through timing.
    fn eq(&self, other: &MasterKey) -> bool {
        self.0
            .iter()
            .zip(&other.0)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}
impl Eq for MasterKey {}

/// Declares a 32-byte key type: zeroed on drop, no bytes in `Debug`.
macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name([u8; KEY_LEN]);

        impl $name {
            pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
                &self.0
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                self.0.zeroize();
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }
    };
}

secret_key!(
    /// The subkey of [`KeyPurpose::DataEncryption`].
    DataKey
);
secret_key!(
    /// The subkey of [`KeyPurpose::ContentId`].
    ContentIdKey
);

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn master() -> MasterKey {
        MasterKey::from_bytes(std::array::from_fn(|i| i as u8))
    }

    #[test]
    fn subkeys_match_fixed_vectors() {
        // Format v2: a change here changes every encrypted repository's keys.
        // Computed independently with Python's `cryptography` HKDF.
        let m = master();
        assert_eq!(
            hex::encode(m.data_key().bytes()),
            "41d4740a787c563549e5b672c39f708646d1cd4cdb2e95579e2b707e4328beb8"
        );
        assert_eq!(
            hex::encode(m.content_id_key().bytes()),
            "2c5df43b6b3a5a3d1fb0fbddbf52280b3086af46a24d7e57846eda0fb711cf09"
        );
    }

    #[test]
    fn purposes_have_distinct_info_and_keys() {
        let m = master();
        assert_ne!(m.data_key().bytes(), m.content_id_key().bytes());
        let infos: std::collections::HashSet<_> =
            KeyPurpose::ALL.iter().map(|p| p.info()).collect();
        assert_eq!(infos.len(), KeyPurpose::ALL.len());
    }

    #[test]
    fn another_master_key_gives_other_subkeys() {
        let other = MasterKey::from_bytes([7; KEY_LEN]);
        assert_ne!(master().data_key().bytes(), other.data_key().bytes());
        assert_ne!(
            master().content_id_key().bytes(),
            other.content_id_key().bytes()
        );
    }

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_a_key() {
        let m = master();
        let text = m.to_hex();
        assert_eq!(text.len(), 64);
        assert_eq!(&text[..6], "000102");
        assert!(MasterKey::from_hex(&text).unwrap() == m);
        let padded = format!("  {}\n", text.to_uppercase());
        assert!(MasterKey::from_hex(&padded).unwrap() == m);
        assert_eq!(
            MasterKey::from_hex(&text[..62]).unwrap_err(),
            KeyHexError::Length(62)
        );
        let bad = format!("zz{}", &text[2..]);
        let err = MasterKey::from_hex(&bad).unwrap_err();
        assert_eq!(err, KeyHexError::NotHex);
        assert!(!err.to_string().contains(&text[2..10]));
    }

    #[test]
    fn debug_never_prints_key_bytes() {
        let m = MasterKey::from_bytes([0xab; KEY_LEN]);
        for shown in [
            format!("{m:?}"),
            format!("{:?}", m.data_key()),
            format!("{:?}", m.content_id_key()),
        ] {
            assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
        }
        assert_eq!(format!("{m:?}"), "MasterKey(..)");
    }
}
