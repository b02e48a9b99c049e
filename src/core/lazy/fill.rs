//! [`FillMap`]: which blocks of a file in a writable mount's layer hold
//! their bytes yet. A file of the snapshot starts in the layer as a sparse
//! file of its size; a block is *filled* (its snapshot bytes written into
//! the layer's file) the first time a read or a partial write touches it,
//! so a service that rewrites one page of a 1 GiB file copies one block,
//! not the file. Bytes at or past `lower_len` never come from the
//! snapshot: they were cut off by a truncate, or written past its end.
//!
//! The map travels with the layer's file (an extended attribute), so it
//! follows renames and hard links and dies with the file. Its encoding
//! (little-endian):
//!
//! ```text
//! version u8 (1) | block_shift u8 | lower_len u64 | origin_len u16 | origin (UTF-8)
//! | bitmap (one bit per block below lower_len, lowest bit first)
//! ```
//!
//! `origin` is the file's path in the mount as the snapshot had it: where
//! its unfilled blocks are read from after a rename.

use std::ops::Range;

/// Smallest block: a few database pages, and 2 KiB of bitmap per GiB.
pub const MIN_BLOCK_SHIFT: u8 = 16;
/// The bitmap stays under this many bytes (it must fit an extended
/// attribute beside the origin): larger files get larger blocks.
const MAX_BITMAP: u64 = 2048;
/// The whole encoded map stays under this many bytes where it can: ext4
/// keeps all of an inode's extended attributes in one 4 KiB block (the
/// snapshot's own go beside the map), so a long origin leaves less room
/// for the bitmap and its file gets larger blocks.
const MAX_MAP: usize = 3072;
/// The fewest bitmap bytes a map gets, however long its origin.
const MIN_BITMAP: u64 = 8;
/// Largest block: 2^63 bytes, so that any file fits in [`MIN_BITMAP`].
const MAX_BLOCK_SHIFT: u8 = 63;
const VERSION: u8 = 1;
const HEADER: usize = 1 + 1 + 8 + 2;

/// The fill state of one file in a writable layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillMap {
    pub origin: String,
    block_shift: u8,
    lower_len: u64,
    filled: Vec<u8>,
}

/// Why an encoded map was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFillMap(pub &'static str);

impl std::fmt::Display for BadFillMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad fill map: {}", self.0)
    }
}

impl FillMap {
    /// A file of `len` snapshot bytes at `origin`, nothing filled.
    pub fn new(origin: &str, len: u64) -> FillMap {
        let room = MAX_MAP.saturating_sub(HEADER + origin.len()) as u64;
        let bitmap = room.clamp(MIN_BITMAP, MAX_BITMAP);
        let mut shift = MIN_BLOCK_SHIFT;
        while shift < MAX_BLOCK_SHIFT && len.div_ceil(1 << shift).div_ceil(8) > bitmap {
            shift += 1;
        }
        let blocks = len.div_ceil(1 << shift);
        FillMap {
            origin: origin.to_string(),
            block_shift: shift,
            lower_len: len,
            filled: vec![0; blocks.div_ceil(8) as usize],
        }
    }

    pub fn block_size(&self) -> u64 {
        1 << self.block_shift
    }

    /// Bytes still owed by the snapshot, from offset 0.
    pub fn lower_len(&self) -> u64 {
        self.lower_len
    }

    fn blocks(&self) -> u64 {
        self.lower_len.div_ceil(self.block_size())
    }

    fn is_filled(&self, block: u64) -> bool {
        self.filled[(block / 8) as usize] & (1 << (block % 8)) != 0
    }

    /// Whether every block is filled: the layer's file is whole and the
    /// map can go.
    pub fn complete(&self) -> bool {
        (0..self.blocks()).all(|b| self.is_filled(b))
    }

    /// The snapshot byte ranges to fill before `offset..offset + len` can
    /// be read from the layer, one per unfilled block.
    pub fn to_read(&self, offset: u64, len: u64) -> Vec<Range<u64>> {
        let end = offset.saturating_add(len).min(self.lower_len);
        if offset >= end {
            return Vec::new();
        }
        let bs = self.block_size();
        (offset / bs..end.div_ceil(bs))
            .filter(|b| !self.is_filled(*b))
            .map(|b| b * bs..(b + 1).saturating_mul(bs).min(self.lower_len))
            .collect()
    }

    /// The ranges to fill before writing `offset..offset + len`: only the
    /// unfilled blocks the write covers in part (a block it covers whole
    /// is [`FillMap::written`] instead).
    pub fn to_write(&self, offset: u64, len: u64) -> Vec<Range<u64>> {
        let end = offset.saturating_add(len);
        self.to_read(offset, len)
            .into_iter()
            .filter(|r| !(offset <= r.start && r.end <= end))
            .collect()
    }

    /// Marks the block holding snapshot range `range` (one of
    /// [`FillMap::to_read`]'s) filled.
    pub fn filled(&mut self, range: &Range<u64>) {
        if range.start < self.lower_len {
            let b = range.start / self.block_size();
            self.filled[(b / 8) as usize] |= 1 << (b % 8);
        }
    }

    /// After `offset..offset + len` was written: every block it covers
    /// whole is filled (its snapshot bytes are no longer wanted). Returns
    /// whether the map changed (and must be saved).
    pub fn written(&mut self, offset: u64, len: u64) -> bool {
        let end = offset.saturating_add(len);
        let mut changed = false;
        for r in self.to_read(offset, len) {
            if offset <= r.start && r.end <= end {
                self.filled(&r);
                changed = true;
            }
        }
        changed
    }

    /// The range to fill before the file is cut to `size`: the block the
    /// cut falls inside, if unfilled.
    pub fn to_truncate(&self, size: u64) -> Option<Range<u64>> {
        (size < self.lower_len && size % self.block_size() != 0)
            .then(|| self.to_read(size, 1).into_iter().next())
            .flatten()
    }

    /// After the file was cut to `size` (or grown): nothing at or past
    /// `size` comes from the snapshot any more, even if it grows again.
    pub fn truncated(&mut self, size: u64) {
        if size >= self.lower_len {
            return;
        }
        self.lower_len = size;
        let blocks = self.blocks();
        self.filled.truncate(blocks.div_ceil(8) as usize);
        // Bits past the new last block are dropped, so a later decode sees
        // a canonical bitmap.
        if blocks % 8 != 0 {
            if let Some(last) = self.filled.last_mut() {
                *last &= (1u8 << (blocks % 8)) - 1;
            }
        }
    }

    /// `ranges` (as [`FillMap::to_read`] gives them, in order) joined
    /// where one ends at the next's start, each join at most `most` bytes
    /// (or one range, if larger): one read of the snapshot, one write of
    /// the layer, for a run of unfilled blocks.
    pub fn runs(ranges: &[Range<u64>], most: u64) -> Vec<Range<u64>> {
        let mut out: Vec<Range<u64>> = Vec::new();
        for r in ranges {
            match out.last_mut() {
                Some(last) if last.end == r.start && r.end - last.start <= most => last.end = r.end,
                _ => out.push(r.clone()),
            }
        }
        out
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.origin.len() + self.filled.len());
        out.push(VERSION);
        out.push(self.block_shift);
        out.extend_from_slice(&self.lower_len.to_le_bytes());
        out.extend_from_slice(&(self.origin.len() as u16).to_le_bytes());
        out.extend_from_slice(self.origin.as_bytes());
        out.extend_from_slice(&self.filled);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<FillMap, BadFillMap> {
        if bytes.len() < HEADER {
            return Err(BadFillMap("shorter than its header"));
        }
        if bytes[0] != VERSION {
            return Err(BadFillMap("unknown version"));
        }
        let block_shift = bytes[1];
        if !(MIN_BLOCK_SHIFT..=MAX_BLOCK_SHIFT).contains(&block_shift) {
            return Err(BadFillMap("block size out of range"));
        }
        let lower_len = u64::from_le_bytes(bytes[2..10].try_into().unwrap());
        let origin_len = u16::from_le_bytes(bytes[10..12].try_into().unwrap()) as usize;
        let rest = &bytes[HEADER..];
        if rest.len() < origin_len {
            return Err(BadFillMap("origin cut short"));
        }
        let origin = std::str::from_utf8(&rest[..origin_len])
            .map_err(|_| BadFillMap("origin is not UTF-8"))?
            .to_string();
        let map = FillMap {
            origin,
            block_shift,
            lower_len,
            filled: rest[origin_len..].to_vec(),
        };
        if map.filled.len() as u64 != map.blocks().div_ceil(8) {
            return Err(BadFillMap("bitmap length does not match the size"));
        }
        let used = map.blocks() % 8;
        if used != 0 && map.filled.last().is_some_and(|l| l >> used != 0) {
            return Err(BadFillMap("bits set past the last block"));
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const B: u64 = 1 << MIN_BLOCK_SHIFT;

    #[test]
    fn reads_fill_the_blocks_they_touch_once() {
        let mut m = FillMap::new("a/b", 3 * B + 10);
        assert_eq!(m.to_read(B - 1, 2), vec![0..B, B..2 * B]);
        m.filled(&(0..B));
        assert_eq!(m.to_read(0, 2 * B), vec![B..2 * B]);
        // The last block is short; past the end nothing is owed.
        assert_eq!(m.to_read(3 * B, 100), vec![3 * B..3 * B + 10]);
        assert_eq!(m.to_read(4 * B, 100), Vec::<Range<u64>>::new());
        for r in m.to_read(0, u64::MAX) {
            m.filled(&r);
        }
        assert!(m.complete());
        assert!(m.to_read(0, u64::MAX).is_empty());
    }

    #[test]
    fn a_write_fills_only_the_blocks_it_covers_in_part() {
        let mut m = FillMap::new("f", 4 * B);
        // One 8 KiB page inside block 1: that block is filled first.
        assert_eq!(m.to_write(B + 8192, 8192), vec![B..2 * B]);
        // Blocks 1 and 2 whole, and part of 3.
        assert_eq!(m.to_write(B, 2 * B + 5), vec![3 * B..4 * B]);
        assert!(m.written(B, 2 * B + 5));
        assert_eq!(m.to_read(0, u64::MAX), vec![0..B, 3 * B..4 * B]);
        assert!(!m.written(B + 8192, 8192), "inside a filled block");
        // Past the snapshot's bytes a write owes nothing.
        assert!(m.to_write(4 * B + 1, 10).is_empty());
    }

    #[test]
    fn runs_of_unfilled_blocks_are_read_as_one_up_to_a_bound() {
        let mut m = FillMap::new("f", 10 * B + 7);
        m.filled(&(3 * B..4 * B));
        let ranges = m.to_read(0, u64::MAX);
        assert_eq!(
            FillMap::runs(&ranges, 2 * B),
            vec![
                0..2 * B,
                2 * B..3 * B,
                4 * B..6 * B,
                6 * B..8 * B,
                8 * B..10 * B,
                10 * B..10 * B + 7
            ]
        );
        assert_eq!(
            FillMap::runs(&ranges, u64::MAX),
            vec![0..3 * B, 4 * B..10 * B + 7]
        );
        assert_eq!(
            FillMap::runs(&ranges[..1], 1),
            vec![0..B],
            "one range, whatever its size"
        );
        assert!(FillMap::runs(&[], B).is_empty());
    }

    #[test]
    fn a_truncate_cuts_what_the_snapshot_owes_for_good() {
        let mut m = FillMap::new("f", 4 * B);
        assert_eq!(m.to_truncate(B + 3), Some(B..2 * B));
        assert_eq!(m.to_truncate(2 * B), None, "on a block boundary");
        m.filled(&(B..2 * B));
        assert_eq!(m.to_truncate(B + 3), None, "already filled");
        m.truncated(B + 3);
        assert_eq!(m.lower_len(), B + 3);
        // Grown again: the new bytes are zeros, not the snapshot's.
        assert_eq!(m.to_read(0, 4 * B), vec![0..B]);
        m.truncated(10 * B);
        assert_eq!(m.lower_len(), B + 3);
        m.truncated(0);
        assert!(m.complete());
        assert_eq!(FillMap::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn large_files_get_larger_blocks_and_a_bounded_bitmap() {
        let m = FillMap::new("big", 1 << 30);
        assert_eq!(m.block_size(), B);
        assert_eq!(m.encode().len(), HEADER + 3 + 2048);
        let m = FillMap::new("huge", 100 << 30);
        assert!(m.encode().len() <= HEADER + 4 + 2048);
        assert_eq!(m.to_read(0, 1).len(), 1);
        assert!(FillMap::new("empty", 0).complete());
    }

    /// A long origin leaves less room for the bitmap: the map stays under
    /// 3 KiB (with at least 8 bitmap bytes), and still reads back.
    #[test]
    fn a_long_origin_gets_larger_blocks_so_the_map_fits() {
        let deep = vec!["d".repeat(200); 12].join("/");
        for len in [1, 1 << 20, 1 << 30, 100 << 30, u64::MAX] {
            let m = FillMap::new(&deep, len);
            let bytes = m.encode();
            assert!(bytes.len() <= MAX_MAP, "{len}: {}", bytes.len());
            assert_eq!(FillMap::decode(&bytes), Ok(m.clone()), "{len}");
            assert_eq!(m.to_read(0, len).first().map(|r| r.start), Some(0));
        }
        assert!(FillMap::new(&deep, 1 << 30).block_size() > B);
        let longest = "x".repeat(4000);
        let m = FillMap::new(&longest, 1 << 30);
        assert_eq!(m.encode().len(), HEADER + 4000 + MIN_BITMAP as usize);
        // A short origin keeps the smallest blocks up to 1 GiB.
        assert_eq!(FillMap::new("a/b", 1 << 30).block_size(), B);
    }

    #[test]
    fn encoding_round_trips_and_refuses_damage() {
        let mut m = FillMap::new("dir/ü.db", 5 * B + 1);
        m.filled(&(2 * B..3 * B));
        let bytes = m.encode();
        assert_eq!(FillMap::decode(&bytes), Ok(m.clone()));
        for cut in 0..bytes.len() {
            assert!(FillMap::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut grown = bytes.clone();
        grown.push(0);
        assert!(FillMap::decode(&grown).is_err());
        let mut stray = bytes.clone();
        *stray.last_mut().unwrap() |= 0x80;
        assert!(FillMap::decode(&stray).is_err(), "bit past the last block");
        let mut version = bytes;
        version[0] = 2;
        assert!(FillMap::decode(&version).is_err());
    }
}
