//! Blob compression. Each blob is compressed on its own (so one blob is one
//! range read) and stored raw when zstd does not make it smaller.
//!
//! The core decodes zstd with the pure-Rust `ruzstd` ([`ruzstd_decode`]); a
//! shell may pass a faster [`ZstdDecoder`] (the native shell passes libzstd,
//! `native::decompressor::libzstd_decode`). Both read the same standard zstd
//! frames. Encoding happens only on the native snapshot path
//! (`native::backup::compressor`).

use serde::{Deserialize, Serialize};

/// How a stored blob's bytes are encoded. The byte value is part of the
/// format: raw and zstd since v1, patch (runs over a base blob,
/// `core::format::patch`) since patch blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Raw = 0,
    Zstd = 1,
    Patch = 2,
}

impl Codec {
    pub fn from_byte(b: u8) -> Option<Codec> {
        match b {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Zstd),
            2 => Some(Codec::Patch),
            _ => None,
        }
    }
}

/// Repository-wide compression setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Zstd,
}

/// A blob whose stored bytes cannot be decoded to its recorded length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("zstd frame is corrupt: {0}")]
    Corrupt(String),
    #[error("decoded length {got} differs from recorded length {expected}")]
    Length { expected: u64, got: u64 },
    #[error("recorded length {0} exceeds the largest blob a reader accepts")]
    TooLarge(u32),
    #[error("a patch blob decodes only over its base")]
    PatchWithoutBase,
}

/// The largest plain blob a reader accepts. Data blobs are at most 16 MiB
/// (the chunker's ceiling); trees of huge directories may be larger. The cap
/// keeps a damaged length from making a reader allocate gigabytes.
pub const MAX_BLOB_LEN: u32 = 256 * 1024 * 1024;

/// Decodes one zstd frame that should hold `raw_len` plain bytes. It reads
/// at most one byte past `raw_len`, so that [`decode`] reports a frame that
/// is too long as a length mismatch, and refuses what is not exactly one
/// standard frame: bytes after the frame, a content checksum that does not
/// match. [`decode`] has already checked the frame header's declared size
/// and the [`MAX_BLOB_LEN`] cap. A plain function, so the core holds no
/// decoder state: a decoder that caches a context keeps it in its shell.
pub type ZstdDecoder = fn(stored: &[u8], raw_len: usize) -> Result<Vec<u8>, DecodeError>;

/// Decodes stored blob bytes back to the plain bytes (`raw_len` long),
/// zstd frames with `zstd` ([`ruzstd_decode`] unless a shell has a faster
/// one).
pub fn decode(
    codec: Codec,
    stored: &[u8],
    raw_len: u32,
    zstd: ZstdDecoder,
) -> Result<Vec<u8>, DecodeError> {
    if raw_len > MAX_BLOB_LEN {
        return Err(DecodeError::TooLarge(raw_len));
    }
    let out = match codec {
        Codec::Raw => stored.to_vec(),
        Codec::Zstd => {
            // libzstd refuses a frame whose declared size differs from what
            // it decodes to; ruzstd ignores the declaration. Checking it here
            // makes both refuse, before anything is allocated.
            if let Some(declared) = frame_content_size(stored)? {
                if declared != raw_len as u64 {
                    return Err(DecodeError::Length {
                        expected: raw_len as u64,
                        got: declared,
                    });
                }
            }
            zstd(stored, raw_len as usize)?
        }
        Codec::Patch => return Err(DecodeError::PatchWithoutBase),
    };
    if out.len() != raw_len as usize {
        return Err(DecodeError::Length {
            expected: raw_len as u64,
            got: out.len() as u64,
        });
    }
    Ok(out)
}

/// Magic number of a standard zstd frame (RFC 8878, section 3.1.1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Reads the header of the zstd frame a stored blob must be: one standard
/// frame (writers make each with one compression call), no skippable frame,
/// no reserved bit set. Returns the content size the header declares, if it
/// declares one.
fn frame_content_size(stored: &[u8]) -> Result<Option<u64>, DecodeError> {
    let corrupt = |what: &str| DecodeError::Corrupt(what.to_string());
    if stored.get(..4) != Some(&ZSTD_MAGIC[..]) {
        return Err(corrupt("not a zstd frame"));
    }
    let descriptor = *stored
        .get(4)
        .ok_or_else(|| corrupt("truncated frame header"))?;
    if descriptor & 0x08 != 0 {
        return Err(corrupt("reserved bit set in the frame header"));
    }
    let single_segment = descriptor & 0x20 != 0;
    let size_len = match descriptor >> 6 {
        0 if single_segment => 1,
        0 => return Ok(None),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let dict_len = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let at = 5 + usize::from(!single_segment) + dict_len;
    let field = stored
        .get(at..at + size_len)
        .ok_or_else(|| corrupt("truncated frame header"))?;
    let mut le = [0u8; 8];
    le[..size_len].copy_from_slice(field);
    let size = u64::from_le_bytes(le);
    // A two-byte size is stored less 256 (RFC 8878, section 3.1.1.1.4).
    Ok(Some(if size_len == 2 { size + 256 } else { size }))
}

/// The core's [`ZstdDecoder`]: pure Rust, used by the wasm shells (and
/// tested against libzstd in `native::decompressor`).
pub fn ruzstd_decode(stored: &[u8], raw_len: usize) -> Result<Vec<u8>, DecodeError> {
    use std::io::Read;
    if raw_len > MAX_BLOB_LEN as usize {
        return Err(DecodeError::TooLarge(raw_len as u32));
    }
    if let Some(declared) = frame_content_size(stored)? {
        if declared != raw_len as u64 {
            return Err(DecodeError::Length {
                expected: raw_len as u64,
                got: declared,
            });
        }
    }
    let corrupt = |e: &dyn std::fmt::Display| DecodeError::Corrupt(e.to_string());
    let mut dec = ruzstd::decoding::StreamingDecoder::new(stored).map_err(|e| corrupt(&e))?;
    let mut out = Vec::with_capacity(raw_len);
    // Read at most one byte past the expected length: enough to notice a frame
    // that is too long without letting a hostile frame allocate without bound.
    (&mut dec)
        .take(raw_len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(&e))?;
    if out.len() > raw_len {
        // Too long: the caller reports the length; the rest is not read.
        return Ok(out);
    }
    // The frame ended. Refuse what libzstd refuses and ruzstd lets through:
    // bytes after the frame and a content checksum that does not match.
    let (rest, frame) = dec.into_parts();
    if !rest.is_empty() {
        return Err(corrupt(&"bytes after the zstd frame"));
    }
    if let Some(recorded) = frame.get_checksum_from_data() {
        if frame.get_calculated_checksum() != Some(recorded) {
            return Err(corrupt(&"zstd content checksum mismatch"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A frame from ruzstd's encoder: no declared size, a content checksum.
    fn compressed(plain: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(plain, ruzstd::encoding::CompressionLevel::Fastest)
    }

    /// A hand-made frame: one segment declaring `declared` bytes (one-byte
    /// size field), holding `plain` in one raw block.
    fn raw_block_frame(declared: u8, plain: &[u8]) -> Vec<u8> {
        let mut f = ZSTD_MAGIC.to_vec();
        f.extend_from_slice(&[0x20, declared]);
        let header = (plain.len() as u32) << 3 | 1; // last block, raw
        f.extend_from_slice(&header.to_le_bytes()[..3]);
        f.extend_from_slice(plain);
        f
    }

    /// A decoder for the cases `decode` must settle without decoding.
    fn never_called(_: &[u8], _: usize) -> Result<Vec<u8>, DecodeError> {
        panic!("decode called the zstd decoder")
    }

    #[test]
    fn zstd_frames_decode_with_the_pure_decoder() {
        let plain = b"snapkeep ".repeat(1000);
        let stored = compressed(&plain);
        assert!(stored.len() < plain.len() / 10);
        let n = plain.len() as u32;
        assert_eq!(decode(Codec::Zstd, &stored, n, ruzstd_decode), Ok(plain));
        let frame = raw_block_frame(3, b"abc");
        assert_eq!(
            decode(Codec::Zstd, &frame, 3, ruzstd_decode),
            Ok(b"abc".to_vec())
        );
        assert_eq!(
            decode(Codec::Raw, b"abc", 3, never_called),
            Ok(b"abc".to_vec())
        );
    }

    #[test]
    fn zstd_frames_go_to_the_decoder_the_caller_passes() {
        fn fixed(_: &[u8], _: usize) -> Result<Vec<u8>, DecodeError> {
            Ok(b"xyz".to_vec())
        }
        let frame = raw_block_frame(3, b"abc");
        assert_eq!(decode(Codec::Zstd, &frame, 3, fixed), Ok(b"xyz".to_vec()));
    }

    #[test]
    fn absurd_recorded_lengths_are_refused_before_decoding() {
        assert_eq!(
            decode(Codec::Zstd, b"", u32::MAX, never_called),
            Err(DecodeError::TooLarge(u32::MAX))
        );
        assert!(ruzstd_decode(b"", usize::MAX).is_err());
    }

    #[test]
    fn a_frame_declaring_another_size_is_refused_before_decoding() {
        let frame = raw_block_frame(4, b"abc");
        let refused = Err(DecodeError::Length {
            expected: 3,
            got: 4,
        });
        assert_eq!(decode(Codec::Zstd, &frame, 3, never_called), refused);
        assert_eq!(ruzstd_decode(&frame, 3), refused);
    }

    #[test]
    fn the_pure_decoder_reads_exactly_one_frame_with_a_matching_checksum() {
        let plain = b"snapkeep ".repeat(100);
        let n = plain.len() as u32;
        let stored = compressed(&plain);
        let pure = |stored: &[u8], n| decode(Codec::Zstd, stored, n, ruzstd_decode);
        assert_eq!(pure(&stored, n), Ok(plain));
        for extra in [stored.clone(), b"junk".to_vec()] {
            let mut two = stored.clone();
            two.extend_from_slice(&extra);
            assert!(pure(&two, n).is_err(), "{extra:?}");
        }
        let mut bad = stored.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(pure(&bad, n).is_err());
        let skippable = [0x50, 0x2A, 0x4D, 0x18, 0, 0, 0, 0];
        assert!(pure(&skippable, 0).is_err());
    }

    #[test]
    fn wrong_lengths_and_garbage_are_errors() {
        let plain = b"abc".repeat(100);
        let stored = compressed(&plain);
        assert!(decode(Codec::Zstd, &stored, 10, ruzstd_decode).is_err());
        assert!(decode(Codec::Zstd, &stored, 1000, ruzstd_decode).is_err());
        assert!(decode(Codec::Raw, b"abc", 4, never_called).is_err());
        assert!(decode(Codec::Zstd, b"not a frame", 5, never_called).is_err());
        assert!(ruzstd_decode(b"not a frame", 5).is_err());
    }
}
