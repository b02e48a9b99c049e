//! Content addresses: every blob, pack and index file is named by the SHA-256
//! of its bytes, so equal content always has one name and a name proves its
//! content.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A SHA-256 digest used as an identifier. Serialized as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Id(pub [u8; 32]);

/// Hashes only the first 8 bytes: they are already uniformly distributed
/// (a SHA-256 output), and the other 24 add cost, not spread.
impl Hash for Id {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.prefix())
    }
}

/// A `HashMap` keyed by ids, hashed by taking their first 8 bytes as the
/// hash itself: the index of a repository holds millions of ids, and a
/// general-purpose hash of an already random key is wasted work. Crafting
/// many ids that share 8 bytes means finding SHA-256 partial collisions.
pub type IdMap<V> = HashMap<Id, V, BuildHasherDefault<IdHasher>>;
pub type IdSet = HashSet<Id, BuildHasherDefault<IdHasher>>;

/// See [`IdMap`]. Only ids are hashed with it.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not reached for ids (they call write_u64); a fallback that mixes.
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ *b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// See [`Id::of`]: one page, small enough to stay in L1 while it is hashed.
const PREFETCH_PIECE: usize = 4096;
const CACHE_LINE: usize = 64;

impl Id {
    pub const LEN: usize = 32;

    /// The id of `data`: SHA-256 of the plain bytes.
    ///
    /// The input is hashed a piece at a time, each piece first loaded
    /// one byte per cache line. SHA-256 consumes its input one line at a
    /// time, and a line that is not in cache then costs a full memory
    /// round trip before the next is asked for; the loads ahead of a piece
    /// are independent, so they overlap and bring it in at memory speed.
    /// On data out of cache this took SHA-NI from 1.2 to 1.6 GB/s here
    /// (docs/PERFORMANCE.md); on data in cache it costs one load in 64.
    pub fn of(data: &[u8]) -> Id {
        let mut hasher = Sha256::new();
        update_prefetched(&mut hasher, data);
        Id(hasher.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Id> {
        <[u8; 32]>::try_from(bytes).ok().map(Id)
    }

    fn prefix(&self) -> u64 {
        u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes"))
    }

    /// Short form for human output (first 8 hex digits).
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

/// Feeds `data` to a SHA-256-based hasher (plain, or the HMAC of keyed
/// ids) a piece at a time, each piece first loaded one byte per cache line:
/// see [`Id::of`].
pub(crate) fn update_prefetched(hasher: &mut impl sha2::digest::Update, data: &[u8]) {
    let mut touched = 0u8;
    for piece in data.chunks(PREFETCH_PIECE) {
        touched ^= piece.iter().step_by(CACHE_LINE).fold(0, |a, b| a ^ b);
        hasher.update(piece);
    }
    // Keeps the loads: without a use of their result they are dead code.
    std::hint::black_box(touched);
}

/// An id string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id {0:?}: expected 64 hex digits")]
pub struct InvalidId(pub String);

impl FromStr for Id {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Id, InvalidId> {
        let mut out = [0u8; 32];
        if s.len() != 64 || hex::decode_to_slice(s, &mut out).is_err() {
            return Err(InvalidId(s.chars().take(80).collect()));
        }
        Ok(Id(out))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.short())
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            Id::of(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn pieced_hashing_is_plain_sha256_at_every_boundary() {
        let data: Vec<u8> = (0..5 * PREFETCH_PIECE as u32 + 99)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        let p = PREFETCH_PIECE;
        for len in [0, 1, p - 1, p, p + 1, 2 * p, 3 * p + 17, data.len()] {
            let plain: [u8; 32] = Sha256::digest(&data[..len]).into();
            assert_eq!(Id::of(&data[..len]).0, plain, "length {len}");
        }
    }

    #[test]
    fn hex_round_trip_and_rejects_bad_strings() {
        let id = Id::of(b"x");
        assert_eq!(id.to_hex().parse::<Id>().unwrap(), id);
        assert!("abc".parse::<Id>().is_err());
        assert!("zz".repeat(32).parse::<Id>().is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<Id>(&json).unwrap(), id);
    }
}
