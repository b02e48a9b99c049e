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
//!
//! Blobs are sealed in layout 2 ([`VERSION_BOUND`], `0xE2`): the same
//! bytes, with what the blob's index entry says of it ([`BlobBinding`]:
//! its 32-byte id, codec and plain length) appended to the associated
//! data. An envelope that opens under an entry was sealed for that entry
//! by a holder of the key, who named the blob by its content; so a reader
//! that opened it need not hash the content again to know it is the blob
//! the index names ([`OpenedBlob::id_bound`]). A blob swapped for another,
//! read as another codec or length, or its version byte turned back to
//! `0xE1`, fails authentication. Blobs of layout 1, written before, still
//! open, and their readers check the id by hashing.

use std::fmt;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

use crate::core::crypto::error::CryptoError;
use crate::core::crypto::keys::DataKey;
use crate::core::format::codec::Codec;
use crate::core::format::id::Id;

/// The first byte of every envelope of layout 1.
pub const VERSION: u8 = 0xE1;
/// The first byte of a blob's envelope of layout 2, bound to its id.
pub const VERSION_BOUND: u8 = 0xE2;
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

    /// The version byte, the label and, in layout 2, the blob's binding.
    fn associated_data(self, version: u8, blob: Option<&BlobBinding>) -> Vec<u8> {
        let mut ad = Vec::with_capacity(1 + self.label().len() + BlobBinding::LEN);
        ad.push(version);
        ad.extend_from_slice(self.label().as_bytes());
        if let Some(b) = blob {
            ad.extend_from_slice(&b.id.0);
            ad.push(b.codec as u8);
            ad.extend_from_slice(&b.raw_len.to_le_bytes());
        }
        ad
    }
}

/// What a blob's envelope of layout 2 binds it to: what its index entry
/// says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobBinding {
    pub id: Id,
    /// How the opened bytes decode.
    pub codec: Codec,
    /// Length of the plain (decoded) bytes.
    pub raw_len: u32,
}

impl BlobBinding {
    /// Bytes it adds to the associated data: id, codec byte, u32 LE.
    const LEN: usize = 32 + 1 + 4;
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
    let ad = kind.associated_data(VERSION, None);
    seal_with(key, VERSION, &ad, nonce, plaintext, out);
}

/// A blob's envelope of layout 2, bound to `blob` (the id its writer
/// computed from the blob's plain bytes, the codec and plain length of
/// `plaintext`), appended to `out`.
pub fn seal_blob_append(
    key: &DataKey,
    kind: ObjectKind,
    blob: &BlobBinding,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) {
    let ad = kind.associated_data(VERSION_BOUND, Some(blob));
    seal_with(key, VERSION_BOUND, &ad, nonce, plaintext, out);
}

fn seal_with(
    key: &DataKey,
    version: u8,
    ad: &[u8],
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.reserve(OVERHEAD + plaintext.len());
    out.push(version);
    out.extend_from_slice(nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher(key)
        .encrypt_in_place_detached(
            XNonce::from_slice(nonce),
            ad,
            &mut out[start + HEADER_LEN..],
        )
        .expect("XChaCha20 encrypts up to 256 GiB per nonce; objects are far smaller");
    out.extend_from_slice(&tag);
}

/// The plaintext of an envelope of `kind` (layout 1), or the error naming
/// why there is none. Nothing is decrypted unless the tag verifies.
pub fn open(key: &DataKey, kind: ObjectKind, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    check_shape(kind, sealed)?;
    if sealed[0] != VERSION {
        return Err(CryptoError::UnknownEnvelope {
            kind,
            byte: sealed[0],
        });
    }
    open_with(key, kind, &kind.associated_data(VERSION, None), sealed)
}

/// A blob's opened bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedBlob {
    pub plain: Vec<u8>,
    /// The envelope was of layout 2 and opened under the binding asked
    /// for: the bytes are the blob of that id, codec and length, as its
    /// writer named it.
    pub id_bound: bool,
}

/// The plaintext of the envelope of `kind` of the blob `blob` describes,
/// of either layout (layout 1 binds none of it).
pub fn open_blob(
    key: &DataKey,
    kind: ObjectKind,
    blob: &BlobBinding,
    sealed: &[u8],
) -> Result<OpenedBlob, CryptoError> {
    check_shape(kind, sealed)?;
    let (ad, id_bound) = match sealed[0] {
        VERSION => (kind.associated_data(VERSION, None), false),
        VERSION_BOUND => (kind.associated_data(VERSION_BOUND, Some(blob)), true),
        byte => return Err(CryptoError::UnknownEnvelope { kind, byte }),
    };
    let plain = open_with(key, kind, &ad, sealed)?;
    Ok(OpenedBlob { plain, id_bound })
}

fn check_shape(kind: ObjectKind, sealed: &[u8]) -> Result<(), CryptoError> {
    if sealed.len() < OVERHEAD {
        return Err(CryptoError::Truncated {
            kind,
            len: sealed.len(),
            min: OVERHEAD,
        });
    }
    Ok(())
}

fn open_with(
    key: &DataKey,
    kind: ObjectKind,
    ad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let (nonce, rest) = sealed[1..].split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut plain = ciphertext.to_vec();
    cipher(key)
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            ad,
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

    const BLOB: BlobBinding = BlobBinding {
        id: Id([0xab; 32]),
        codec: Codec::Raw,
        raw_len: 8,
    };

    #[test]
    fn bound_blob_matches_fixed_vector() {
        // As above, with AD = e2 "data-blob", the id ab x 32, codec 00 (raw)
        // and the plain length 8 as u32 LE.
        let mut sealed = Vec::new();
        seal_blob_append(
            &key(),
            ObjectKind::DataBlob,
            &BLOB,
            &NONCE,
            b"snapkeep",
            &mut sealed,
        );
        assert_eq!(hex::encode(&sealed), "e224242424242424242424242424242424242424242424242467cb85f26452e142effe8e8fa5e8485c64814d5f8963d50c");
    }

    fn bound(kind: ObjectKind, blob: &BlobBinding, plain: &[u8]) -> Vec<u8> {
        let mut sealed = Vec::new();
        seal_blob_append(&key(), kind, blob, &NONCE, plain, &mut sealed);
        sealed
    }

    #[test]
    fn bound_blobs_open_only_under_their_binding_and_kind() {
        let blob = BlobBinding { raw_len: 4, ..BLOB };
        let sealed = bound(ObjectKind::TreeBlob, &blob, b"tree");
        assert_eq!(sealed.len(), 4 + OVERHEAD);
        let opened = open_blob(&key(), ObjectKind::TreeBlob, &blob, &sealed).unwrap();
        assert_eq!(
            (opened.plain.as_slice(), opened.id_bound),
            (&b"tree"[..], true)
        );
        let tampered = Err(CryptoError::Tampered {
            kind: ObjectKind::TreeBlob,
        });
        for other in [
            BlobBinding {
                id: Id([0xac; 32]),
                ..blob
            },
            BlobBinding {
                codec: Codec::Zstd,
                ..blob
            },
            BlobBinding { raw_len: 5, ..blob },
        ] {
            assert_eq!(
                open_blob(&key(), ObjectKind::TreeBlob, &other, &sealed),
                tampered,
                "{other:?}"
            );
        }
        assert_eq!(
            open_blob(&key(), ObjectKind::DataBlob, &blob, &sealed),
            Err(CryptoError::Tampered {
                kind: ObjectKind::DataBlob
            })
        );
        // Whole objects are layout 1 only.
        assert_eq!(
            open(&key(), ObjectKind::TreeBlob, &sealed),
            Err(CryptoError::UnknownEnvelope {
                kind: ObjectKind::TreeBlob,
                byte: VERSION_BOUND
            })
        );
        // Turned back to layout 1, it no longer authenticates: a reader
        // cannot be led into taking an unbound blob for a bound one or back.
        let mut downgraded = sealed.clone();
        downgraded[0] = VERSION;
        assert_eq!(
            open_blob(&key(), ObjectKind::TreeBlob, &blob, &downgraded),
            tampered
        );
    }

    #[test]
    fn layout_1_blobs_still_open_unbound() {
        let sealed = seal(&key(), ObjectKind::DataBlob, &NONCE, b"old blob");
        let opened = open_blob(&key(), ObjectKind::DataBlob, &BLOB, &sealed).unwrap();
        assert_eq!(
            (opened.plain.as_slice(), opened.id_bound),
            (&b"old blob"[..], false)
        );
        let mut upgraded = sealed.clone();
        upgraded[0] = VERSION_BOUND;
        assert_eq!(
            open_blob(&key(), ObjectKind::DataBlob, &BLOB, &upgraded),
            Err(CryptoError::Tampered {
                kind: ObjectKind::DataBlob
            })
        );
    }

    #[test]
    fn every_flipped_bit_of_a_bound_blob_is_a_named_error() {
        let kind = ObjectKind::DataBlob;
        let blob = BlobBinding {
            raw_len: 12,
            ..BLOB
        };
        let sealed = bound(kind, &blob, b"hello, world");
        for at in 0..sealed.len() {
            for bit in 0..8 {
                let mut bad = sealed.clone();
                bad[at] ^= 1 << bit;
                let got = open_blob(&key(), kind, &blob, &bad);
                let want = match bad[0] {
                    VERSION | VERSION_BOUND => CryptoError::Tampered { kind },
                    byte => CryptoError::UnknownEnvelope { kind, byte },
                };
                assert_eq!(got, Err(want), "byte {at} bit {bit}");
            }
        }
        for len in 0..sealed.len() {
            assert!(open_blob(&key(), kind, &blob, &sealed[..len]).is_err());
        }
    }

    #[test]
    fn labels_are_distinct() {
        let labels: std::collections::HashSet<_> =
            ObjectKind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(labels.len(), ObjectKind::ALL.len());
    }
}
