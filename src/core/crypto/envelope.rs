//! The stored form of an encrypted object: XChaCha20-Poly1305 under the
//! repository's [`DataKey`], with a random 24-byte nonce per object, so
//! writers that share no state never need to coordinate nonces (2^-96 odds
//! of a repeat after 2^32 objects under one key).
//!
//! ```text
//! offset  size  field
//! 0       1     version: 0xE1 (envelope layout 1)
//! 1       24    nonce, drawn at random by the writer
//! 25      n     ciphertext (n = plaintext length)
//! 25+n    16    Poly1305 tag
//! ```
//!
//! The associated data is the version byte followed by the object kind's
//! label ([`ObjectKind::label`]), so an object decrypts only as the kind it
//! was written as: a tree blob handed over where a data blob, a manifest or
//! a root is expected fails authentication instead of being parsed. The tag
//! is checked before any byte is decrypted: a flipped bit anywhere yields
//! [`CryptoError::Tampered`] (or, in the version byte,
//! [`CryptoError::UnknownEnvelope`]), never wrong plaintext.

use std::fmt;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

use crate::core::crypto::error::CryptoError;
use crate::core::crypto::keys::DataKey;

/// The first byte of every envelope of layout 1.
pub const VERSION: u8 = 0xE1;
pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
pub const HEADER_LEN: usize = 1 + NONCE_LEN;
/// Bytes an envelope adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// What an encrypted object is; bound into its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A file's chunk, stored in a pack.
    DataBlob,
    /// An encoded tree, stored in a pack.
    TreeBlob,
    /// A whole pack object.
    Pack,
    /// An index file (`index/<id>`).
    Index,
    /// A snapshot manifest (`snapshots/<uuid>.json`).
    Manifest,
    /// A root generation (`index-<n>`).
    Root,
    /// The newest-root hint (`index.latest`).
    LatestHint,
    /// The sealed part of an encrypted repository's `config`.
    Config,
    /// Coordination records: in-flight markers, pins, lifecycle policies,
    /// slot claims and watchdog reports.
    Control,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 9] = [
        ObjectKind::DataBlob,
        ObjectKind::TreeBlob,
        ObjectKind::Pack,
        ObjectKind::Index,
        ObjectKind::Manifest,
        ObjectKind::Root,
        ObjectKind::LatestHint,
        ObjectKind::Config,
        ObjectKind::Control,
    ];

    /// The ASCII label in the associated data; part of format v2.
    pub const fn label(self) -> &'static str {
        match self {
            ObjectKind::DataBlob => "data-blob",
            ObjectKind::TreeBlob => "tree-blob",
            ObjectKind::Pack => "pack",
            ObjectKind::Index => "index",
            ObjectKind::Manifest => "manifest",
            ObjectKind::Root => "root",
            ObjectKind::LatestHint => "latest",
            ObjectKind::Config => "config",
            ObjectKind::Control => "control",
        }
    }

    fn associated_data(self) -> Vec<u8> {
        let mut ad = Vec::with_capacity(1 + self.label().len());
        ad.push(VERSION);
        ad.extend_from_slice(self.label().as_bytes());
        ad
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::DataBlob => "data blob",
            ObjectKind::TreeBlob => "tree blob",
            ObjectKind::Pack => "pack",
            ObjectKind::Index => "index file",
            ObjectKind::Manifest => "snapshot manifest",
            ObjectKind::Root => "root",
            ObjectKind::LatestHint => "index.latest hint",
            ObjectKind::Config => "config",
            ObjectKind::Control => "control record",
        })
    }
}

/// `plaintext` as an envelope of `kind`. `nonce` must be fresh random bytes
/// (the shell draws them); reusing one under the same key loses both
/// objects' confidentiality and authenticity.
pub fn seal(key: &DataKey, kind: ObjectKind, nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    seal_append(key, kind, nonce, plaintext, &mut out);
    out
}

/// [`seal`], appending the envelope to `out` (a pack being filled, say)
/// instead of allocating one.
pub fn seal_append(
    key: &DataKey,
    kind: ObjectKind,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.reserve(OVERHEAD + plaintext.len());
    out.push(VERSION);
    out.extend_from_slice(nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher(key)
        .encrypt_in_place_detached(
            XNonce::from_slice(nonce),
            &kind.associated_data(),
            &mut out[start + HEADER_LEN..],
        )
        .expect("XChaCha20 encrypts up to 256 GiB per nonce; objects are far smaller");
    out.extend_from_slice(&tag);
}

/// The plaintext of an envelope of `kind`, or the error naming why there
/// is none. Nothing is decrypted unless the tag verifies.
pub fn open(key: &DataKey, kind: ObjectKind, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < OVERHEAD {
        return Err(CryptoError::Truncated {
            kind,
            len: sealed.len(),
            min: OVERHEAD,
        });
    }
    if sealed[0] != VERSION {
        return Err(CryptoError::UnknownEnvelope {
            kind,
            byte: sealed[0],
        });
    }
    let (nonce, rest) = sealed[1..].split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut plain = ciphertext.to_vec();
    cipher(key)
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            &kind.associated_data(),
            &mut plain,
            Tag::from_slice(tag),
        )
        .map_err(|_| CryptoError::Tampered { kind })?;
    Ok(plain)
}

fn cipher(key: &DataKey) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(key.bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::crypto::keys::MasterKey;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn key() -> DataKey {
        MasterKey::from_bytes(std::array::from_fn(|i| i as u8)).data_key()
    }

    const NONCE: [u8; NONCE_LEN] = [0x24; NONCE_LEN];

    #[test]
    fn round_trips_every_kind_and_size() {
        for kind in ObjectKind::ALL {
            for len in [0, 1, 15, 16, 17, 63, 64, 65, 1000, 70_000] {
                let plain: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
                let sealed = seal(&key(), kind, &NONCE, &plain);
                assert_eq!(sealed.len(), plain.len() + OVERHEAD);
                assert_eq!(sealed[0], VERSION);
                assert_eq!(&sealed[1..HEADER_LEN], &NONCE);
                if len > 0 {
                    assert_ne!(&sealed[HEADER_LEN..HEADER_LEN + len], &plain[..]);
                }
                assert_eq!(open(&key(), kind, &sealed).unwrap(), plain);
            }
        }
    }

    #[test]
    fn matches_fixed_vector() {
        // Format v2: XChaCha20-Poly1305 computed independently (Python's
        // `cryptography`: HChaCha20 subkey, then ChaCha20-Poly1305) over
        // the data key of master key 00 01 .. 1f, AD = e1 "manifest".
        let sealed = seal(&key(), ObjectKind::Manifest, &NONCE, b"snapkeep");
        assert_eq!(hex::encode(&sealed), "e124242424242424242424242424242424242424242424242467cb85f26452e14276140f42a3b07b923cc89e11c2dfe9c9");
    }

    #[test]
    fn appended_envelopes_open_from_their_ranges() {
        let mut pack = b"PACK".to_vec();
        seal_append(
            &key(),
            ObjectKind::DataBlob,
            &[1; NONCE_LEN],
            b"first",
            &mut pack,
        );
        let second_at = pack.len();
        seal_append(
            &key(),
            ObjectKind::TreeBlob,
            &[2; NONCE_LEN],
            b"second",
            &mut pack,
        );
        assert_eq!(&pack[..4], b"PACK");
        assert_eq!(
            &pack[4..second_at],
            seal(&key(), ObjectKind::DataBlob, &[1; NONCE_LEN], b"first")
        );
        assert_eq!(
            open(&key(), ObjectKind::DataBlob, &pack[4..second_at]).unwrap(),
            b"first"
        );
        assert_eq!(
            open(&key(), ObjectKind::TreeBlob, &pack[second_at..]).unwrap(),
            b"second"
        );
    }

    #[test]
    fn every_flipped_bit_is_a_named_error() {
        let sealed = seal(&key(), ObjectKind::DataBlob, &NONCE, b"hello, world");
        for at in 0..sealed.len() {
            for bit in 0..8 {
                let mut bad = sealed.clone();
                bad[at] ^= 1 << bit;
                let want = if at == 0 {
                    CryptoError::UnknownEnvelope {
                        kind: ObjectKind::DataBlob,
                        byte: bad[0],
                    }
                } else {
                    // Nonce (1..25), ciphertext, tag (last 16) alike.
                    CryptoError::Tampered {
                        kind: ObjectKind::DataBlob,
                    }
                };
                assert_eq!(
                    open(&key(), ObjectKind::DataBlob, &bad),
                    Err(want),
                    "byte {at} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn truncated_or_extended_envelopes_are_refused() {
        let sealed = seal(&key(), ObjectKind::Index, &NONCE, b"0123456789");
        for len in 0..sealed.len() {
            let got = open(&key(), ObjectKind::Index, &sealed[..len]).unwrap_err();
            if len < OVERHEAD {
                assert_eq!(
                    got,
                    CryptoError::Truncated {
                        kind: ObjectKind::Index,
                        len,
                        min: OVERHEAD
                    }
                );
            } else {
                assert_eq!(
                    got,
                    CryptoError::Tampered {
                        kind: ObjectKind::Index
                    }
                );
            }
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(
            open(&key(), ObjectKind::Index, &longer),
            Err(CryptoError::Tampered {
                kind: ObjectKind::Index
            })
        );
    }

    #[test]
    fn an_object_does_not_open_as_another_kind() {
        for written in ObjectKind::ALL {
            let sealed = seal(&key(), written, &NONCE, b"{\"ok\":true}");
            for read in ObjectKind::ALL.into_iter().filter(|k| *k != written) {
                assert_eq!(
                    open(&key(), read, &sealed),
                    Err(CryptoError::Tampered { kind: read }),
                    "{written:?} read as {read:?}"
                );
            }
        }
    }

    #[test]
    fn another_key_does_not_open_it() {
        let sealed = seal(&key(), ObjectKind::Root, &NONCE, b"root");
        let other = MasterKey::from_bytes([9; 32]).data_key();
        assert_eq!(
            open(&other, ObjectKind::Root, &sealed),
            Err(CryptoError::Tampered {
                kind: ObjectKind::Root
            })
        );
    }

    #[test]
    fn labels_are_distinct() {
        let labels: std::collections::HashSet<_> =
            ObjectKind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(labels.len(), ObjectKind::ALL.len());
    }
}
