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
//!
//! In an encrypted repository (format v2) every blob is an envelope of its
//! kind, and the table is sealed too, so a pack shows nothing but lengths:
//!
//! ```text
//! "SKPACK01"                      8-byte magic
//! blob envelopes, back to back
//! envelope (kind pack) of the table's count × BlobEntry
//! sealed table length: u32 LE
//! "SKPTBLE1"                      8-byte magic
//! ```

use crate::core::crypto::envelope::{self, ObjectKind, NONCE_LEN};
use crate::core::crypto::keys::DataKey;
use crate::core::error::FormatError;
use crate::core::format::blob::{BlobEntry, BlobKind};
use crate::core::format::codec::Codec;
use crate::core::format::id::Id;

pub const PACK_MAGIC: &[u8; 8] = b"SKPACK01";
pub const TABLE_MAGIC: &[u8; 8] = b"SKPTBL01";
pub const SEALED_TABLE_MAGIC: &[u8; 8] = b"SKPTBLE1";
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
        self.add_with(id, kind, codec, raw_len, |buf| {
            buf.extend_from_slice(stored)
        });
    }

    /// Adds a blob whose stored bytes `write` appends to the pack's buffer
    /// (an encrypting writer seals them straight into it).
    pub fn add_with(
        &mut self,
        id: Id,
        kind: BlobKind,
        codec: Codec,
        raw_len: u32,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let offset = self.len() as u64;
        write(&mut self.buf);
        self.entries.push(BlobEntry {
            id,
            offset,
            stored_len: (self.len() as u64 - offset) as u32,
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
    pub fn finish(self, sealing: Option<TableSeal>) -> (Id, Vec<u8>, Vec<BlobEntry>) {
        let (id, mut buf, lead, entries) = self.finish_in_buffer(sealing);
        buf.drain(..lead);
        (id, buf, entries)
    }

    /// The finished pack left in its buffer: its id, the buffer, where in
    /// it the pack starts, and its blob table. With `sealing` the table is
    /// sealed (an encrypted repository's pack).
    pub fn finish_in_buffer(
        mut self,
        sealing: Option<TableSeal>,
    ) -> (Id, Vec<u8>, usize, Vec<BlobEntry>) {
        let mut table = Vec::with_capacity(self.entries.len() * BlobEntry::SIZE);
        for e in &self.entries {
            e.encode_into(&mut table);
        }
        match sealing {
            None => {
                self.buf.extend_from_slice(&table);
                self.buf
                    .extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
                self.buf.extend_from_slice(TABLE_MAGIC);
            }
            Some(TableSeal { key, nonce }) => {
                let start = self.buf.len();
                envelope::seal_append(key, ObjectKind::Pack, &nonce, &table, &mut self.buf);
                let sealed_len = (self.buf.len() - start) as u32;
                self.buf.extend_from_slice(&sealed_len.to_le_bytes());
                self.buf.extend_from_slice(SEALED_TABLE_MAGIC);
            }
        }
        let id = Id::of(&self.buf[self.lead..]);
        (id, self.buf, self.lead, self.entries)
    }
}

/// How an encrypted repository's writer seals a pack's table: its data key
/// and a fresh random nonce.
#[derive(Clone, Copy)]
pub struct TableSeal<'a> {
    pub key: &'a DataKey,
    pub nonce: [u8; NONCE_LEN],
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

/// Parses a whole pack held in memory, checking its magic. An encrypted
/// repository's pack (sealed table) needs its data `key`.
pub fn parse_pack(pack: &[u8], key: Option<&DataKey>) -> Result<Vec<BlobEntry>, FormatError> {
    if pack.len() < PACK_MAGIC.len() || &pack[..8] != PACK_MAGIC {
        return Err(FormatError::BadMagic("pack"));
    }
    let sealed = pack.len() >= PACK_MAGIC.len() + TRAILER_LEN && pack.ends_with(SEALED_TABLE_MAGIC);
    match (sealed, key) {
        (false, _) => parse_table(pack, pack.len() as u64),
        (true, None) => Err(FormatError::Invalid(
            "the pack's table is encrypted and no key was given".into(),
        )),
        (true, Some(key)) => parse_sealed(pack, key),
    }
}

/// The table of a pack whose table is sealed.
fn parse_sealed(pack: &[u8], key: &DataKey) -> Result<Vec<BlobEntry>, FormatError> {
    let trailer = &pack[pack.len() - TRAILER_LEN..];
    let sealed_len = u32::from_le_bytes(trailer[..4].try_into().unwrap()) as usize;
    let table_end = pack.len() - TRAILER_LEN;
    if sealed_len > table_end - PACK_MAGIC.len() {
        return Err(FormatError::Truncated("sealed pack table"));
    }
    let table = envelope::open(
        key,
        ObjectKind::Pack,
        &pack[table_end - sealed_len..table_end],
    )
    .map_err(|e| FormatError::Invalid(e.to_string()))?;
    if table.len() % BlobEntry::SIZE != 0 {
        return Err(FormatError::Invalid(
            "sealed pack table is not whole entries".into(),
        ));
    }
    let mut plain_form = table;
    plain_form.extend_from_slice(&((plain_form.len() / BlobEntry::SIZE) as u32).to_le_bytes());
    plain_form.extend_from_slice(TABLE_MAGIC);
    parse_table(
        &plain_form,
        (table_end - sealed_len) as u64 + plain_form.len() as u64,
    )
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
        let (id, bytes, entries) = b.finish(None);
        assert_eq!(id, Id::of(&bytes));
        let parsed = parse_pack(&bytes, None).unwrap();
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
        let (fresh_id, old_bytes, fresh_entries) = fresh.finish(None);
        let mut spare = Vec::with_capacity(4096);
        spare.extend_from_slice(b"old contents");
        let at = spare.as_ptr();
        let mut again = PackBuilder::in_buffer(spare, 0);
        blob(&mut again);
        let (id, bytes, entries) = again.finish(None);
        assert_eq!(
            (id, &bytes, &entries),
            (fresh_id, &old_bytes, &fresh_entries)
        );
        assert_eq!(bytes.as_ptr(), at, "the buffer is reused, not reallocated");
        // With a lead, the pack (and every offset) starts after it.
        let mut led = PackBuilder::in_buffer(bytes, 100);
        blob(&mut led);
        assert_eq!(led.len(), fresh_entries[1].end() as usize);
        let (id, buf, lead, entries) = led.finish_in_buffer(None);
        assert_eq!(lead, 100);
        assert_eq!(
            (id, &buf[lead..], &entries),
            (fresh_id, &old_bytes[..], &fresh_entries)
        );
        let mut led = PackBuilder::in_buffer(buf, 7);
        blob(&mut led);
        assert_eq!(led.finish(None), (fresh_id, old_bytes, fresh_entries));
    }

    #[test]
    fn hostile_tables_are_errors_not_panics() {
        let mut b = PackBuilder::new();
        b.add(Id::of(b"x"), BlobKind::Data, Codec::Raw, b"x", 1);
        let (_, bytes, _) = b.finish(None);
        let n = bytes.len();
        // A count whose table would be larger than the pack.
        let mut huge = bytes.clone();
        huge[n - 12..n - 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_pack(&huge, None).is_err());
        // An offset that wraps around when its length is added.
        let mut wrap = bytes.clone();
        let entry = n - 12 - BlobEntry::SIZE;
        wrap[entry + 32..entry + 40].copy_from_slice(&(u64::MAX - 5).to_le_bytes());
        wrap[entry + 40..entry + 44].copy_from_slice(&10u32.to_le_bytes());
        assert!(parse_pack(&wrap, None).is_err());
    }

    #[test]
    fn damaged_packs_are_rejected() {
        let mut b = PackBuilder::new();
        b.add(Id::of(b"x"), BlobKind::Data, Codec::Raw, b"x", 1);
        let (_, bytes, _) = b.finish(None);
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(
            parse_pack(&bad, None),
            Err(FormatError::BadMagic(_))
        ));
        assert!(parse_pack(&bytes[..bytes.len() - 3], None).is_err());
        let mut lying = bytes.clone();
        let n = lying.len();
        lying[n - 12] = 9; // claims nine entries
        assert!(parse_pack(&lying, None).is_err());
    }

    #[test]
    fn a_sealed_table_opens_only_under_its_key() {
        use crate::core::crypto::keys::MasterKey;
        let key = MasterKey::from_bytes([7; 32]).data_key();
        let other = MasterKey::from_bytes([8; 32]).data_key();
        let mut b = PackBuilder::new();
        b.add(Id::of(b"one"), BlobKind::Data, Codec::Raw, b"one", 3);
        b.add(Id::of(b"two"), BlobKind::Data, Codec::Raw, b"two", 3);
        let seal = TableSeal {
            key: &key,
            nonce: [3; NONCE_LEN],
        };
        let (id, bytes, entries) = b.finish(Some(seal));
        assert_eq!(id, Id::of(&bytes));
        assert!(bytes.ends_with(SEALED_TABLE_MAGIC));
        let plain_table = &entries[0].id.0;
        assert!(
            !bytes.windows(32).any(|w| w == plain_table),
            "ids are hidden"
        );
        assert_eq!(parse_pack(&bytes, Some(&key)).unwrap(), entries);
        assert!(parse_pack(&bytes, None).is_err());
        assert!(parse_pack(&bytes, Some(&other)).is_err());
        let mut flipped = bytes.clone();
        let n = flipped.len();
        flipped[n - 20] ^= 1;
        assert!(parse_pack(&flipped, Some(&key)).is_err());
        let mut short = bytes.clone();
        short[n - 12..n - 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_pack(&short, Some(&key)).is_err());
        assert!(parse_pack(b"SKPACK01SKPTBLE1", Some(&key)).is_err());
    }
}
