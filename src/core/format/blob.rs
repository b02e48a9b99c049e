//! The fixed-size record that describes one stored blob. The same 52-byte
//! layout is used in pack tables and in index files (see docs/FORMAT.md).

use crate::core::error::FormatError;
use crate::core::format::codec::Codec;
use crate::core::format::id::Id;

/// What a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobKind {
    Data = 0,
    Tree = 1,
}

impl BlobKind {
    pub fn from_byte(b: u8) -> Option<BlobKind> {
        match b {
            0 => Some(BlobKind::Data),
            1 => Some(BlobKind::Tree),
            _ => None,
        }
    }
}

/// Where one blob sits in its pack and how it is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobEntry {
    pub id: Id,
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
    pub kind: BlobKind,
    pub codec: Codec,
}

impl BlobEntry {
    /// Encoded size: id(32) offset(8) stored_len(4) raw_len(4) kind(1) codec(1) reserved(2).
    pub const SIZE: usize = 52;

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.stored_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.push(self.kind as u8);
        out.push(self.codec as u8);
        out.extend_from_slice(&[0, 0]);
    }

    pub fn decode(b: &[u8]) -> Result<BlobEntry, FormatError> {
        if b.len() != Self::SIZE {
            return Err(FormatError::Truncated("blob entry"));
        }
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        Ok(BlobEntry {
            id: Id::from_slice(&b[..32]).unwrap(),
            offset: u64::from_le_bytes(b[32..40].try_into().unwrap()),
            stored_len: u32_at(40),
            raw_len: u32_at(44),
            kind: BlobKind::from_byte(b[48]).ok_or(FormatError::UnknownByte {
                what: "blob kind",
                value: b[48],
            })?,
            codec: Codec::from_byte(b[49]).ok_or(FormatError::UnknownByte {
                what: "codec",
                value: b[49],
            })?,
        })
    }

    /// End of the stored bytes; saturates so a hostile offset cannot wrap
    /// around and pass a bounds check.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.stored_len as u64)
    }
}
