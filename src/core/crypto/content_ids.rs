//! How a repository names its blobs.
//!
//! Format v1 names a blob by the SHA-256 of its plain bytes, so anyone who
//! holds a file can compute its chunks' ids and test whether a repository
//! stores it. Format v2 names it by a keyed hash of the plain bytes under
//! the repository's [`ContentIdKey`] ([`KeyedIdKind`]: BLAKE3's keyed mode
//! in repositories made since 2026-12-06, HMAC-SHA256 before): equal
//! content still has one id inside a repository (dedup holds), but without
//! the key no id can be computed.
//! Both give the same 32-byte [`Id`], so the index, packs, trees and plans
//! do not change; only the place that names new content does, by holding
//! an [`IdScheme`] instead of calling [`Id::of`].

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::core::crypto::keys::ContentIdKey;
use crate::core::format::id::{update_prefetched, Id};

/// The keyed hash an encrypted repository names blobs by (its config's
/// `encryption.content_ids`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyedIdKind {
    /// `hmac-sha256`: HMAC-SHA256 (RFC 2104), repositories made before
    /// 2026-12-06.
    HmacSha256,
    /// `blake3-keyed`: BLAKE3 in keyed mode, 32-byte output.
    Blake3,
}

impl KeyedIdKind {
    /// What new encrypted repositories use.
    pub const NEWEST: KeyedIdKind = KeyedIdKind::Blake3;

    pub const fn name(self) -> &'static str {
        match self {
            KeyedIdKind::HmacSha256 => "hmac-sha256",
            KeyedIdKind::Blake3 => "blake3-keyed",
        }
    }

    pub fn parse(name: &str) -> Option<KeyedIdKind> {
        [KeyedIdKind::HmacSha256, KeyedIdKind::Blake3]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// The way blob ids are computed in one repository.
#[derive(Clone)]
pub enum IdScheme {
    /// Format v1: SHA-256 of the plain bytes ([`Id::of`]).
    Plain,
    /// Format v2: a keyed hash of the plain bytes under the content-id key.
    Keyed(KeyedIds),
}

/// The keyed hash, ready: the HMAC is keyed once and each id clones its
/// state, so the key's two padding blocks are not hashed again per blob.
/// Either state determines every keyed id, so it is as secret as the key:
/// private, its `Debug` shows nothing, and BLAKE3's key is zeroed on drop.
#[derive(Clone)]
pub struct KeyedIds(Keyed);

#[derive(Clone)]
enum Keyed {
    Hmac(Hmac<Sha256>),
    Blake3(ContentIdKey),
}

impl IdScheme {
    /// Keyed ids of `kind` under `key`.
    pub fn keyed(kind: KeyedIdKind, key: &ContentIdKey) -> IdScheme {
        IdScheme::Keyed(KeyedIds(match kind {
            KeyedIdKind::HmacSha256 => Keyed::Hmac(
                Hmac::<Sha256>::new_from_slice(key.bytes()).expect("HMAC takes keys of any length"),
            ),
            KeyedIdKind::Blake3 => Keyed::Blake3(key.clone()),
        }))
    }

    /// The id of the blob whose plain (uncompressed, unencrypted) bytes
    /// are `data`.
    pub fn id_of(&self, data: &[u8]) -> Id {
        match self {
            IdScheme::Plain => Id::of(data),
            IdScheme::Keyed(KeyedIds(Keyed::Hmac(keyed))) => {
                let mut mac = keyed.clone();
                update_prefetched(&mut mac, data);
                Id(mac.finalize().into_bytes().into())
            }
            IdScheme::Keyed(KeyedIds(Keyed::Blake3(key))) => {
                Id(*blake3::keyed_hash(key.bytes(), data).as_bytes())
            }
        }
    }

    pub fn is_keyed(&self) -> bool {
        matches!(self, IdScheme::Keyed(_))
    }
}

impl fmt::Debug for IdScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdScheme::Plain => "IdScheme::Plain",
            IdScheme::Keyed(_) => "IdScheme::Keyed(..)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::crypto::keys::MasterKey;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn keyed(seed: u8) -> IdScheme {
        keyed_as(KeyedIdKind::HmacSha256, seed)
    }

    fn keyed_as(kind: KeyedIdKind, seed: u8) -> IdScheme {
        let master = MasterKey::from_bytes(std::array::from_fn(|i| i as u8 + seed));
        IdScheme::keyed(kind, &master.content_id_key())
    }

    #[test]
    fn blake3_ids_match_fixed_vectors() {
        // BLAKE3's keyed mode under the content-id key of master key
        // 00 01 .. 1f, computed independently with Python's `blake3` + HKDF.
        let ids = keyed_as(KeyedIdKind::Blake3, 0);
        assert_eq!(
            ids.id_of(b"abc").to_hex(),
            "eb292bcad65b783b47f6eadeef59d463e1950354d3f893aaca1668fd00c2e391"
        );
        assert_eq!(
            ids.id_of(b"").to_hex(),
            "60fecddf368a2bb1250f456b54d389d51fcb8ea19707de5423c9464c7d3d9ec2"
        );
        let data = b"a chunk that two snapshots share";
        assert_eq!(ids.id_of(data), ids.id_of(data));
        assert_ne!(ids.id_of(data), keyed(0).id_of(data));
        assert_ne!(
            ids.id_of(data),
            keyed_as(KeyedIdKind::Blake3, 1).id_of(data)
        );
        assert_eq!(format!("{ids:?}"), "IdScheme::Keyed(..)");
    }

    #[test]
    fn kinds_are_named_as_configs_say() {
        for kind in [KeyedIdKind::HmacSha256, KeyedIdKind::Blake3] {
            assert_eq!(KeyedIdKind::parse(kind.name()), Some(kind));
        }
        assert_eq!(KeyedIdKind::parse("sha1"), None);
        assert_eq!(KeyedIdKind::NEWEST, KeyedIdKind::Blake3);
    }

    #[test]
    fn keyed_ids_match_fixed_vectors() {
        // Format v2: HMAC-SHA256 under the content-id key of master key
        // 00 01 .. 1f, computed independently with Python's hmac + HKDF.
        assert_eq!(
            keyed(0).id_of(b"abc").to_hex(),
            "0b893cfd3d4c5c848961aba64e9c4e76254270c449a3f2bd872be90b903c09f0"
        );
        assert_eq!(
            keyed(0).id_of(b"").to_hex(),
            "d2a519377185b5018bf9680998f6a3f122ca4f31d640452c71d455b8b535b5bf"
        );
    }

    #[test]
    fn plain_is_format_v1_sha256() {
        assert_eq!(IdScheme::Plain.id_of(b"abc"), Id::of(b"abc"));
        assert!(!IdScheme::Plain.is_keyed() && keyed(0).is_keyed());
    }

    #[test]
    fn keyed_ids_are_stable_but_differ_from_plain_and_between_keys() {
        let data = b"a chunk that two snapshots share";
        assert_eq!(
            keyed(0).id_of(data),
            keyed(0).id_of(data),
            "dedup needs one id per content"
        );
        assert_ne!(keyed(0).id_of(data), Id::of(data));
        assert_ne!(keyed(0).id_of(data), keyed(1).id_of(data));
        assert_ne!(keyed(0).id_of(data), keyed(0).id_of(b"another chunk"));
    }

    #[test]
    fn pieced_keyed_ids_are_plain_hmac_at_every_boundary() {
        let key = MasterKey::from_bytes([3; 32]).content_id_key();
        let scheme = IdScheme::keyed(KeyedIdKind::HmacSha256, &key);
        let data: Vec<u8> = (0..3 * 4096 + 77u32)
            .map(|i| (i * 31 % 257) as u8)
            .collect();
        for len in [0, 1, 4095, 4096, 4097, 8192, data.len()] {
            let mut mac = Hmac::<Sha256>::new_from_slice(key.bytes()).unwrap();
            mac.update(&data[..len]);
            let direct: [u8; 32] = mac.finalize().into_bytes().into();
            assert_eq!(scheme.id_of(&data[..len]).0, direct, "length {len}");
        }
    }

    #[test]
    fn debug_shows_no_key_state() {
        assert_eq!(format!("{:?}", keyed(0)), "IdScheme::Keyed(..)");
    }
}
