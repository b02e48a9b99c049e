//! A disk cache entry's file. A chunk of at most one [`BLOCK`] is stored
//! as it is; a larger one carries its block sums after it, in the same
//! file:
//!
//! ```text
//! chunk bytes        n bytes (n > BLOCK)
//! block sums         16 bytes per BLOCK of the chunk (the last may be short)
//! chunk length       u64 LE, n
//! magic              8 bytes "skcache2"
//! ```
//!
//! The file's size tells the two apart: a bare chunk is at most one block,
//! a chunk with sums is larger. The sums (XXH3-128) catch a damaged or
//! truncated local file; they authenticate nothing (a cryptographic hash
//! kept in the same folder could not either), so the chunk's id, checked
//! once before it is stored, is what vouches for it, and the cold read
//! pays for one SHA-256 pass instead of two. One file per entry, not an
//! entry and a sidecar, halves the files a cold read creates.

/// Bytes per summed block.
pub(super) const BLOCK: u64 = 64 * 1024;
/// Bytes of one block's sum.
pub(super) const SUM_BYTES: usize = 16;
/// Bytes of the chunk length and magic that end an entry with sums.
pub(super) const TAIL: usize = 16;
const MAGIC: &[u8; 8] = b"skcache2";

/// What follows `chunk` in its entry file (nothing for a chunk of one
/// block).
pub(super) fn trailer(chunk: &[u8]) -> Vec<u8> {
    if chunk.len() as u64 <= BLOCK {
        return Vec::new();
    }
    let mut out: Vec<u8> = chunk.chunks(BLOCK as usize).flat_map(block_sum).collect();
    out.extend_from_slice(&(chunk.len() as u64).to_le_bytes());
    out.extend_from_slice(MAGIC);
    out
}

pub(super) fn block_sum(block: &[u8]) -> [u8; SUM_BYTES] {
    twox_hash::XxHash3_128::oneshot(block).to_le_bytes()
}

/// Where the parts of an entry file with sums lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layout {
    /// The chunk's length (its bytes start the file).
    pub chunk_len: u64,
}

impl Layout {
    /// The layout of an entry file of `file_len` bytes that ends in
    /// `tail`; `None` if the two disagree (a damaged or foreign file).
    pub fn of(file_len: u64, tail: &[u8]) -> Option<Layout> {
        let tail: &[u8; TAIL] = tail.try_into().ok()?;
        if &tail[8..] != MAGIC {
            return None;
        }
        let chunk_len = u64::from_le_bytes(tail[..8].try_into().ok()?);
        let layout = Layout { chunk_len };
        (chunk_len > BLOCK && layout.file_len() == Some(file_len)).then_some(layout)
    }

    fn file_len(self) -> Option<u64> {
        let sums = self.chunk_len.div_ceil(BLOCK) * SUM_BYTES as u64;
        self.chunk_len.checked_add(sums)?.checked_add(TAIL as u64)
    }

    /// Where the sum of block `k` starts.
    pub fn sum_at(self, k: u64) -> u64 {
        self.chunk_len + k * SUM_BYTES as u64
    }
}

/// The chunk an entry file read whole holds (not checked: the caller
/// checks it against its id); `None` for a file with sums whose tail is
/// wrong.
pub(super) fn chunk_of(mut file: Vec<u8>) -> Option<Vec<u8>> {
    let len = file.len() as u64;
    if len <= BLOCK {
        return Some(file);
    }
    let layout = Layout::of(len, &file[file.len() - TAIL..])?;
    file.truncate(layout.chunk_len as usize);
    Some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_sums_is_told_from_a_bare_chunk_by_its_size() {
        let small = vec![7u8; BLOCK as usize];
        assert!(trailer(&small).is_empty());
        assert_eq!(chunk_of(small.clone()), Some(small));

        let big: Vec<u8> = (0..3 * BLOCK as usize + 5).map(|i| i as u8).collect();
        let mut file = big.clone();
        file.extend(trailer(&big));
        assert_eq!(file.len(), big.len() + 4 * SUM_BYTES + TAIL);
        assert_eq!(chunk_of(file.clone()), Some(big.clone()));
        let layout = Layout::of(file.len() as u64, &file[file.len() - TAIL..]).unwrap();
        assert_eq!(layout.chunk_len, big.len() as u64);
        let at = layout.sum_at(2) as usize;
        assert_eq!(
            file[at..at + SUM_BYTES],
            block_sum(&big[2 * BLOCK as usize..3 * BLOCK as usize])
        );

        // Truncated, grown, or a large chunk without sums (an older
        // cache's entry): refused.
        assert_eq!(chunk_of(file[..file.len() - 1].to_vec()), None);
        let mut longer = file.clone();
        longer.push(0);
        assert_eq!(chunk_of(longer), None);
        assert_eq!(chunk_of(big), None);
    }
}
