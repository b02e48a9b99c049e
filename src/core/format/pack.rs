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

use crate::core::error::FormatError;
use crate::core::format::blob::{BlobEntry, BlobKind};
use crate::core::format::codec::Codec;
use crate::core::format::id::Id;

pub const PACK_MAGIC: &[u8; 8] = b"SKPACK01";
pub const TABLE_MAGIC: &[u8; 8] = b"SKPTBL01";
/// Bytes after the table: count (4) + magic (8).
pub const TRAILER_LEN: usize = 12;

/// Accumulates blobs into one pack in memory.
///
/// The pack may start `lead` bytes into the buffer: a shell that writes
/// packs with direct IO places them at an aligned address that way (see
/// [`PackBuilder::in_buffer`]); offsets in the table count from the pack's
/// start, never from the buffer's.
#[derive(Debug)]
pub struct PackBuilder {
    buf: Vec<u8>,
    lead: usize,
    entries: Vec<BlobEntry>,
}

impl Default for PackBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PackBuilder {
    pub fn new() -> PackBuilder {
        PackBuilder::in_buffer(Vec::new(), 0)
    }

    /// A builder whose buffer holds `bytes` without reallocating.
    pub fn with_capacity(bytes: usize) -> PackBuilder {
        PackBuilder::in_buffer(Vec::with_capacity(bytes), 0)
    }

    /// A builder reusing `buf`'s allocation (its contents are dropped),
    /// with the pack starting `lead` bytes in, so a writer can recycle the
    /// buffers of packs it has sent and align the pack's first byte.
    pub fn in_buffer(mut buf: Vec<u8>, lead: usize) -> PackBuilder {
        buf.clear();
        buf.resize(lead, 0);
        buf.extend_from_slice(PACK_MAGIC);
        PackBuilder {
            buf,
            lead,
            entries: Vec::new(),
        }
    }

    pub fn add(&mut self, id: Id, kind: BlobKind, codec: Codec, stored: &[u8], raw_len: u32) {
        let offset = self.len() as u64;
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
        self.buf.len() - self.lead
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn blob_count(&self) -> usize {
        self.entries.len()
    }

    /// The finished pack: its id, its bytes, and its blob table.
    pub fn finish(self) -> (Id, Vec<u8>, Vec<BlobEntry>) {
        let (id, mut buf, lead, entries) = self.finish_in_buffer();
        buf.drain(..lead);
        (id, buf, entries)
    }

    /// The finished pack left in its buffer: its id, the buffer, where in
    /// it the pack starts, and its blob table.
    pub fn finish_in_buffer(mut self) -> (Id, Vec<u8>, usize, Vec<BlobEntry>) {
        for e in &self.entries {
            e.encode_into(&mut self.buf);
        }
        self.buf
            .extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(TABLE_MAGIC);
        let id = Id::of(&self.buf[self.lead..]);
        (id, self.buf, self.lead, self.entries)
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
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

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
    fn a_recycled_buffer_builds_the_same_pack_as_a_fresh_one() {
        let blob = |b: &mut PackBuilder| {
            b.add(Id::of(b"blob"), BlobKind::Data, Codec::Raw, b"blob", 4);
            b.add(Id::of(b"two"), BlobKind::Data, Codec::Raw, b"two", 3);
        };
        let mut fresh = PackBuilder::new();
        blob(&mut fresh);
        let (fresh_id, old_bytes, fresh_entries) = fresh.finish();
        let mut spare = Vec::with_capacity(4096);
        spare.extend_from_slice(b"old contents");
        let at = spare.as_ptr();
        let mut again = PackBuilder::in_buffer(spare, 0);
        blob(&mut again);
        let (id, bytes, entries) = again.finish();
        assert_eq!(
            (id, &bytes, &entries),
            (fresh_id, &old_bytes, &fresh_entries)
        );
        assert_eq!(bytes.as_ptr(), at, "the buffer is reused, not reallocated");
        // With a lead, the pack (and every offset) starts after it.
        let mut led = PackBuilder::in_buffer(bytes, 100);
        blob(&mut led);
        assert_eq!(led.len(), fresh_entries[1].end() as usize);
        let (id, buf, lead, entries) = led.finish_in_buffer();
        assert_eq!(lead, 100);
        assert_eq!(
            (id, &buf[lead..], &entries),
            (fresh_id, &old_bytes[..], &fresh_entries)
        );
        let mut led = PackBuilder::in_buffer(buf, 7);
        blob(&mut led);
        assert_eq!(led.finish(), (fresh_id, old_bytes, fresh_entries));
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
