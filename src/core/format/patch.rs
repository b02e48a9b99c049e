//! Patch blobs: a chunk stored as the byte runs where it differs from an
//! earlier chunk (its base), for files that change by rewriting pages in
//! place (docs/FORMAT.md, "Patch blobs").
//!
//! A database page group rewritten in place usually differs from its
//! previous version in a few rows; stored whole it costs the whole group
//! again, stored as runs it costs the rows. A base is always a blob stored
//! whole (raw or zstd), never another patch, so a reader needs at most one
//! extra blob to decode any blob.
//!
//! Stored bytes:
//! ```text
//! base id          32 bytes
//! body codec        1 byte   0 = raw, 1 = zstd
//! body length       u32 LE   plain length of the body
//! body              raw, or one zstd frame of it
//! ```
//! Body (plain):
//! ```text
//! run count         u32 LE
//! count × { offset u32 LE, length u32 LE }   ascending, not overlapping
//! the runs' bytes, back to back, in run order
//! ```
//! The blob's plain bytes are the base's first `raw_len` bytes (zeros past
//! the base's end) with every run written over them.

use crate::core::format::blob::BlobEntry;
use crate::core::format::codec::{self, Codec, DecodeError, ZstdDecoder, MAX_BLOB_LEN};
use crate::core::format::id::Id;

/// Bytes before the body in a patch blob's stored bytes.
pub const HEADER_LEN: usize = 32 + 1 + 4;

/// Runs closer than this are written as one: a run's header costs 8 bytes,
/// and rows change a few bytes apart (a counter, then a padded note).
const JOIN_GAP: usize = 32;

/// Bytes compared at once while looking for differences.
const STRIDE: usize = 64;

/// Patches decoded per batch by a reader that walks a whole pack (check,
/// delete's repack), each batch with its bases: at most 64 bases (4 MiB at
/// 64 KiB page groups) are held at once.
pub const PATCHES_PER_BATCH: usize = 64;

/// `entries` cut into runs of at most [`PATCHES_PER_BATCH`] patches, in
/// order (a pack without patches is one batch).
pub fn batches(entries: &[BlobEntry]) -> impl Iterator<Item = &[BlobEntry]> {
    let mut patches = 0;
    entries.split_inclusive(move |e| {
        patches += usize::from(e.codec == Codec::Patch);
        patches % PATCHES_PER_BATCH == 0 && e.codec == Codec::Patch
    })
}

/// A patch blob's stored bytes, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredPatch<'a> {
    pub base: Id,
    pub body_codec: Codec,
    pub body_len: u32,
    pub body: &'a [u8],
}

impl<'a> StoredPatch<'a> {
    pub fn split(stored: &'a [u8]) -> Result<StoredPatch<'a>, DecodeError> {
        let corrupt = |what: &str| DecodeError::Corrupt(format!("patch blob: {what}"));
        if stored.len() < HEADER_LEN {
            return Err(corrupt("shorter than its header"));
        }
        let body_codec = match Codec::from_byte(stored[32]) {
            Some(c @ (Codec::Raw | Codec::Zstd)) => c,
            _ => return Err(corrupt("unknown body codec")),
        };
        Ok(StoredPatch {
            base: Id::from_slice(&stored[..32]).expect("32 bytes"),
            body_codec,
            body_len: u32::from_le_bytes(stored[33..37].try_into().expect("4 bytes")),
            body: &stored[HEADER_LEN..],
        })
    }

    /// The stored bytes: header, then `body` as `body_codec` encodes it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len());
        out.extend_from_slice(&self.base.0);
        out.push(self.body_codec as u8);
        out.extend_from_slice(&self.body_len.to_le_bytes());
        out.extend_from_slice(self.body);
        out
    }
}

/// The base id a patch blob's stored bytes name.
pub fn base_of(stored: &[u8]) -> Result<Id, DecodeError> {
    StoredPatch::split(stored).map(|p| p.base)
}

/// The body that turns `base` into `plain`: the runs where they differ,
/// and `plain`'s bytes past the base's end.
pub fn diff(base: &[u8], plain: &[u8]) -> Vec<u8> {
    let runs = differing_runs(base, plain);
    let data: usize = runs.iter().map(|(_, len)| len).sum();
    let mut out = Vec::with_capacity(4 + runs.len() * 8 + data);
    out.extend_from_slice(&(runs.len() as u32).to_le_bytes());
    for &(at, len) in &runs {
        out.extend_from_slice(&(at as u32).to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    for &(at, len) in &runs {
        out.extend_from_slice(&plain[at..at + len]);
    }
    out
}

/// `(offset, length)` of each run of `plain` that differs from `base`,
/// runs less than [`JOIN_GAP`] apart joined.
fn differing_runs(base: &[u8], plain: &[u8]) -> Vec<(usize, usize)> {
    let common = base.len().min(plain.len());
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut push = |at: usize, end: usize| match runs.last_mut() {
        Some((start, len)) if at - (*start + *len) < JOIN_GAP => *len = end - *start,
        _ => runs.push((at, end - at)),
    };
    let mut i = 0;
    while i < common {
        let end = (i + STRIDE).min(common);
        if base[i..end] != plain[i..end] {
            let mut j = i;
            while j < end {
                if base[j] == plain[j] {
                    j += 1;
                    continue;
                }
                let start = j;
                while j < end && base[j] != plain[j] {
                    j += 1;
                }
                push(start, j);
            }
        }
        i = end;
    }
    if plain.len() > common {
        push(common, plain.len());
    }
    runs
}

/// Decodes a patch blob's stored bytes over the plain bytes of its base.
/// `base` must be the blob the stored bytes name (the caller checks ids);
/// the result is `raw_len` long and not yet checked against the blob's id.
pub fn decode(
    stored: &[u8],
    raw_len: u32,
    base: &[u8],
    zstd: ZstdDecoder,
) -> Result<Vec<u8>, DecodeError> {
    if raw_len > MAX_BLOB_LEN {
        return Err(DecodeError::TooLarge(raw_len));
    }
    let p = StoredPatch::split(stored)?;
    let body = codec::decode(p.body_codec, p.body, p.body_len, zstd)?;
    apply(base, &body, raw_len)
}

/// `base` with `body`'s runs written over it, `raw_len` bytes long.
pub fn apply(base: &[u8], body: &[u8], raw_len: u32) -> Result<Vec<u8>, DecodeError> {
    let corrupt = |what: &str| DecodeError::Corrupt(format!("patch body: {what}"));
    let u32_at = |at: usize| -> Result<usize, DecodeError> {
        let b = body.get(at..at + 4).ok_or_else(|| corrupt("truncated"))?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
    };
    let raw_len = raw_len as usize;
    let count = u32_at(0)?;
    let mut data = count
        .checked_mul(8)
        .and_then(|n| n.checked_add(4))
        .filter(|&n| n <= body.len())
        .ok_or_else(|| corrupt("more runs than bytes"))?;
    let mut out = Vec::with_capacity(raw_len);
    out.extend_from_slice(&base[..base.len().min(raw_len)]);
    out.resize(raw_len, 0);
    let mut past = 0usize;
    for r in 0..count {
        let (at, len) = (u32_at(4 + r * 8)?, u32_at(8 + r * 8)?);
        let end = at
            .checked_add(len)
            .filter(|&end| at >= past && end <= raw_len)
            .ok_or_else(|| corrupt("run out of order or past the blob's end"))?;
        let bytes = body
            .get(data..data + len)
            .ok_or_else(|| corrupt("run bytes truncated"))?;
        out[at..end].copy_from_slice(bytes);
        data += len;
        past = end;
    }
    if data != body.len() {
        return Err(corrupt("bytes after the last run"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::format::codec::ruzstd_decode;

    fn page_group(seed: u8) -> Vec<u8> {
        (0..65536u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 ^ seed)
            .collect()
    }

    fn stored(base: Id, body: &[u8]) -> Vec<u8> {
        StoredPatch {
            base,
            body_codec: Codec::Raw,
            body_len: body.len() as u32,
            body,
        }
        .encode()
    }

    #[test]
    fn a_few_changed_rows_cost_their_runs_and_decode_back() {
        let base = page_group(0);
        let mut plain = base.clone();
        plain[100..140].copy_from_slice(&[7; 40]);
        plain[150] ^= 1; // within JOIN_GAP of the run before: joined
        plain[40_000..40_004].copy_from_slice(b"edit");
        let body = diff(&base, &plain);
        assert!(body.len() < 4 + 2 * 8 + 60, "{} bytes", body.len());
        let s = stored(Id::of(&base), &body);
        assert_eq!(base_of(&s), Ok(Id::of(&base)));
        assert_eq!(
            decode(&s, plain.len() as u32, &base, ruzstd_decode),
            Ok(plain)
        );
    }

    #[test]
    fn growing_and_shrinking_past_the_base_decode_back() {
        let base = page_group(1);
        let mut longer = base.clone();
        longer.extend_from_slice(&page_group(2)[..8192]);
        let shorter = base[..32768].to_vec();
        for plain in [longer, shorter, Vec::new()] {
            let body = diff(&base, &plain);
            assert_eq!(apply(&base, &body, plain.len() as u32), Ok(plain));
        }
        assert_eq!(diff(&base, &base).len(), 4, "no runs");
    }

    #[test]
    fn damaged_bodies_are_refused_not_applied() {
        let base = page_group(3);
        let mut plain = base.clone();
        plain[10] ^= 0xff;
        let body = diff(&base, &plain);
        let n = plain.len() as u32;
        assert!(apply(&base, &body[..body.len() - 1], n).is_err(), "short");
        let mut extra = body.clone();
        extra.push(0);
        assert!(apply(&base, &extra, n).is_err(), "trailing");
        let mut past_end = body.clone();
        past_end[4..8].copy_from_slice(&n.to_le_bytes());
        assert!(apply(&base, &past_end, n).is_err(), "past the end");
        let mut many = body.clone();
        many[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(apply(&base, &many, n).is_err(), "count");
        assert!(StoredPatch::split(&[0; 36]).is_err(), "short header");
        let mut odd = stored(Id::of(&base), &body);
        odd[32] = 2;
        assert!(
            StoredPatch::split(&odd).is_err(),
            "a patch's body is never a patch"
        );
    }

    #[test]
    fn runs_out_of_order_are_refused() {
        let base = vec![0u8; 100];
        let mut body = 2u32.to_le_bytes().to_vec();
        for (at, len) in [(50u32, 2u32), (10, 2)] {
            body.extend_from_slice(&at.to_le_bytes());
            body.extend_from_slice(&len.to_le_bytes());
        }
        body.extend_from_slice(&[1, 1, 2, 2]);
        assert!(apply(&base, &body, 100).is_err());
    }

    #[test]
    fn batches_hold_at_most_so_many_patches_and_cover_every_blob() {
        use crate::core::testing::entry;
        let blobs: Vec<BlobEntry> = (0..300u32)
            .map(|i| BlobEntry {
                codec: if i % 3 == 0 {
                    Codec::Patch
                } else {
                    Codec::Zstd
                },
                ..entry(&i.to_le_bytes(), u64::from(i))
            })
            .collect();
        let cut: Vec<&[BlobEntry]> = batches(&blobs).collect();
        let patches = |b: &[BlobEntry]| b.iter().filter(|e| e.codec == Codec::Patch).count();
        assert!(cut.iter().all(|b| patches(b) <= PATCHES_PER_BATCH));
        assert_eq!(cut.len(), 2, "100 patches: 64, then 36");
        assert_eq!(cut.concat(), blobs);
        let whole: Vec<BlobEntry> = blobs
            .iter()
            .map(|e| BlobEntry {
                codec: Codec::Zstd,
                ..*e
            })
            .collect();
        assert_eq!(batches(&whole).count(), 1, "no patches: one batch");
    }
}
