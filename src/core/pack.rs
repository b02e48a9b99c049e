//! Packs: many blobs in one object, self-describing through a trailing table.
//!
//! ```text
//! "SKPACK01"                      8-byte magic
//! blob bytes, back to back        each as stored (raw or zstd)
//! table: count × BlobEntry        52 bytes each, offsets from pack start
//! count: u32 LE
//! "SKPTBL01"                      8-byte magic
//! ```
//! The pack's id is the SHA-256 of all its bytes.

use crate::core::blob::{BlobEntry, BlobKind};
use crate::core::codec::Codec;
use crate::core::error::FormatError;
use crate::core::id::Id;

pub const PACK_MAGIC: &[u8; 8] = b"SKPACK01";
pub const TABLE_MAGIC: &[u8; 8] = b"SKPTBL01";
/// Bytes after the table: count (4) + magic (8).
pub const TRAILER_LEN: usize = 12;

/// Accumulates blobs into one pack in memory.
#[derive(Debug)]
pub struct PackBuilder {
    buf: Vec<u8>,
    entries: Vec<BlobEntry>,
}

impl Default for PackBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PackBuilder {
    pub fn new() -> PackBuilder {
        PackBuilder {
            buf: PACK_MAGIC.to_vec(),
            entries: Vec::new(),
        }
    }

    /// A builder whose buffer holds `bytes` without reallocating.
    pub fn with_capacity(bytes: usize) -> PackBuilder {
        let mut buf = Vec::with_capacity(bytes);
        buf.extend_from_slice(PACK_MAGIC);
        PackBuilder {
            buf,
            entries: Vec::new(),
        }
    }

    pub fn add(&mut self, id: Id, kind: BlobKind, codec: Codec, stored: &[u8], raw_len: u32) {
        let offset = self.buf.len() as u64;
        self.buf.extend_from_slice(stored);
        self.entries.push(BlobEntry {
            id,
            offset,
            stored_len: stored.len() as u32,
            raw_len,
            kind,
            codec,
        });
    }

    /// Bytes the finished pack will have (before its table).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn blob_count(&self) -> usize {
        self.entries.len()
    }

    /// The finished pack: its id, its bytes, and its blob table.
    pub fn finish(mut self) -> (Id, Vec<u8>, Vec<BlobEntry>) {
        for e in &self.entries {
            e.encode_into(&mut self.buf);
        }
        self.buf
            .extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(TABLE_MAGIC);
        (Id::of(&self.buf), self.buf, self.entries)
    }
}

/// Number of bytes at the end of a pack that hold its table, read from the
/// trailer (the last `TRAILER_LEN` bytes).
pub fn table_len_from_trailer(trailer: &[u8]) -> Result<usize, FormatError> {
    if trailer.len() != TRAILER_LEN || &trailer[4..] != TABLE_MAGIC {
        return Err(FormatError::BadMagic("pack table"));
    }
    let count = u32::from_le_bytes(trailer[..4].try_into().unwrap()) as usize;
    count
        .checked_mul(BlobEntry::SIZE)
        .and_then(|n| n.checked_add(TRAILER_LEN))
        .ok_or(FormatError::Truncated("pack table"))
}

/// Parses the table from the tail of a pack (`tail` = at least the table and
/// trailer), checking that every blob lies inside the pack's data area.
pub fn parse_table(tail: &[u8], pack_len: u64) -> Result<Vec<BlobEntry>, FormatError> {
    if tail.len() < TRAILER_LEN {
        return Err(FormatError::Truncated("pack trailer"));
    }
    let table_len = table_len_from_trailer(&tail[tail.len() - TRAILER_LEN..])?;
    if tail.len() < table_len
        || (table_len as u64).saturating_add(PACK_MAGIC.len() as u64) > pack_len
    {
        return Err(FormatError::Truncated("pack table"));
    }
    let data_end = pack_len - table_len as u64;
    let table = &tail[tail.len() - table_len..tail.len() - TRAILER_LEN];
    let entries = table
        .chunks_exact(BlobEntry::SIZE)
        .map(BlobEntry::decode)
        .collect::<Result<Vec<_>, _>>()?;
    for e in &entries {
        if e.offset < PACK_MAGIC.len() as u64 || e.end() > data_end {
            return Err(FormatError::Invalid(format!(
                "blob {} lies outside the pack's data",
                e.id.short()
            )));
        }
    }
    Ok(entries)
}

/// Parses a whole pack held in memory, checking its magic.
pub fn parse_pack(pack: &[u8]) -> Result<Vec<BlobEntry>, FormatError> {
    if pack.len() < PACK_MAGIC.len() || &pack[..8] != PACK_MAGIC {
        return Err(FormatError::BadMagic("pack"));
    }
    parse_table(pack, pack.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trip() {
        let mut b = PackBuilder::new();
        let blobs: Vec<Vec<u8>> = vec![b"one".to_vec(), vec![], b"three!".to_vec()];
        for (i, blob) in blobs.iter().enumerate() {
            let kind = if i == 1 {
                BlobKind::Tree
            } else {
                BlobKind::Data
            };
            b.add(Id::of(blob), kind, Codec::Raw, blob, blob.len() as u32);
        }
        let (id, bytes, entries) = b.finish();
        assert_eq!(id, Id::of(&bytes));
        let parsed = parse_pack(&bytes).unwrap();
        assert_eq!(parsed, entries);
        for (e, blob) in parsed.iter().zip(&blobs) {
            assert_eq!(&bytes[e.offset as usize..e.end() as usize], &blob[..]);
        }
        // The table can be found from the trailer alone.
        let tl = table_len_from_trailer(&bytes[bytes.len() - TRAILER_LEN..]).unwrap();
        let tail = &bytes[bytes.len() - tl..];
        assert_eq!(parse_table(tail, bytes.len() as u64).unwrap(), entries);
    }

    #[test]
    fn hostile_tables_are_errors_not_panics() {
        let mut b = PackBuilder::new();
        b.add(Id::of(b"x"), BlobKind::Data, Codec::Raw, b"x", 1);
        let (_, bytes, _) = b.finish();
        let n = bytes.len();
        // A count whose table would be larger than the pack.
        let mut huge = bytes.clone();
        huge[n - 12..n - 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_pack(&huge).is_err());
        // An offset that wraps around when its length is added.
        let mut wrap = bytes.clone();
        let entry = n - 12 - BlobEntry::SIZE;
        wrap[entry + 32..entry + 40].copy_from_slice(&(u64::MAX - 5).to_le_bytes());
        wrap[entry + 40..entry + 44].copy_from_slice(&10u32.to_le_bytes());
        assert!(parse_pack(&wrap).is_err());
    }

    #[test]
    fn damaged_packs_are_rejected() {
        let mut b = PackBuilder::new();
        b.add(Id::of(b"x"), BlobKind::Data, Codec::Raw, b"x", 1);
        let (_, bytes, _) = b.finish();
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(parse_pack(&bad), Err(FormatError::BadMagic(_))));
        assert!(parse_pack(&bytes[..bytes.len() - 3]).is_err());
        let mut lying = bytes.clone();
        let n = lying.len();
        lying[n - 12] = 9; // claims nine entries
        assert!(parse_pack(&lying).is_err());
    }
}
