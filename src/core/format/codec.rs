//! Blob compression. Each blob is compressed on its own (so one blob is one
//! range read) and stored raw when zstd does not make it smaller.
//!
//! Native builds decode with libzstd; wasm builds decode with the pure-Rust
//! `ruzstd`. Both read the same standard zstd frames. Encoding happens only
//! on the native snapshot path (`native::backup::compressor`).

use serde::{Deserialize, Serialize};

/// How a stored blob's bytes are encoded. The byte value is part of format v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Raw = 0,
    Zstd = 1,
}

impl Codec {
    pub fn from_byte(b: u8) -> Option<Codec> {
        match b {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Zstd),
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
}

/// The largest plain blob a reader accepts. Data blobs are at most 16 MiB
/// (the chunker's ceiling); trees of huge directories may be larger. The cap
/// keeps a damaged length from making a reader allocate gigabytes.
pub const MAX_BLOB_LEN: u32 = 256 * 1024 * 1024;

/// Decodes stored blob bytes back to the plain bytes (`raw_len` long).
pub fn decode(codec: Codec, stored: &[u8], raw_len: u32) -> Result<Vec<u8>, DecodeError> {
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
            zstd_decode(stored, raw_len as usize)?
        }
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

#[cfg(feature = "native")]
fn zstd_decode(stored: &[u8], raw_len: usize) -> Result<Vec<u8>, DecodeError> {
    use std::cell::RefCell;
    // Creating a decompression context costs more than decoding a small
    // blob (7% of a restore's CPU went there), so each thread keeps one.
    // It holds no data between calls: decoding stays a pure function.
    thread_local! {
        static DCTX: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    }
    // One byte of slack so an over-long frame is reported as a length
    // mismatch rather than an opaque "buffer too small".
    let corrupt = |e: std::io::Error| DecodeError::Corrupt(e.to_string());
    DCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new().map_err(corrupt)?);
        }
        // libzstd decodes concatenated frames; a stored blob is one.
        match zstd::zstd_safe::find_frame_compressed_size(stored) {
            Ok(n) if n == stored.len() => {}
            Ok(_) => return Err(DecodeError::Corrupt("bytes after the zstd frame".into())),
            Err(code) => {
                return Err(DecodeError::Corrupt(
                    zstd::zstd_safe::get_error_name(code).to_string(),
                ))
            }
        }
        let dctx = slot.as_mut().expect("set above");
        dctx.decompress(stored, raw_len + 1).map_err(corrupt)
    })
}

#[cfg(not(feature = "native"))]
fn zstd_decode(stored: &[u8], raw_len: usize) -> Result<Vec<u8>, DecodeError> {
    ruzstd_decode(stored, raw_len)
}

/// Pure-Rust decoder, used by wasm builds (and tested against libzstd natively).
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

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;

    #[test]
    fn zstd_frames_decode_with_libzstd_and_ruzstd_alike() {
        let plain = b"snapkeep ".repeat(1000);
        let stored = zstd::bulk::compress(&plain, 3).unwrap();
        assert_eq!(
            decode(Codec::Zstd, &stored, plain.len() as u32).unwrap(),
            plain
        );
        assert_eq!(ruzstd_decode(&stored, plain.len()).unwrap(), plain);
    }

    #[test]
    fn absurd_recorded_lengths_are_refused_before_allocating() {
        assert_eq!(
            decode(Codec::Zstd, b"", u32::MAX),
            Err(DecodeError::TooLarge(u32::MAX))
        );
        assert!(ruzstd_decode(b"", usize::MAX).is_err());
    }

    /// Both decoders, as native and wasm builds run them.
    fn both(stored: &[u8], raw_len: u32) -> [Result<Vec<u8>, DecodeError>; 2] {
        [
            decode(Codec::Zstd, stored, raw_len),
            ruzstd_decode(stored, raw_len as usize),
        ]
    }

    #[test]
    fn a_frame_declaring_another_size_is_refused_by_both_decoders() {
        // Found by the codec fuzz target (fuzz/findings/codec): a frame whose
        // header declares 422 bytes but whose blocks hold 1698. ruzstd
        // decoded it; libzstd refused it.
        let plain = b"line 1 of a compressible log\n".repeat(40);
        let mut stored = zstd::bulk::compress(&plain, 3).unwrap();
        // Single segment, two-byte content size (stored less 256).
        assert_eq!(stored[4], 0x60);
        let n = plain.len() as u32;
        assert_eq!(both(&stored, n), [Ok(plain.clone()), Ok(plain.clone())]);
        stored[5..7].copy_from_slice(&(422u16 - 256).to_le_bytes());
        for r in both(&stored, n) {
            assert_eq!(
                r,
                Err(DecodeError::Length {
                    expected: n as u64,
                    got: 422
                })
            );
        }
    }

    #[test]
    fn a_blob_is_exactly_one_zstd_frame_with_a_matching_checksum() {
        let plain = b"snapkeep ".repeat(100);
        let n = plain.len() as u32;
        let mut c = zstd::bulk::Compressor::new(3).unwrap();
        c.include_checksum(true).unwrap();
        let stored = c.compress(&plain).unwrap();
        assert_eq!(both(&stored, n), [Ok(plain.clone()), Ok(plain.clone())]);
        // Bytes after the frame: another frame, or anything else.
        for extra in [stored.clone(), b"junk".to_vec()] {
            let mut two = stored.clone();
            two.extend_from_slice(&extra);
            assert!(both(&two, n).iter().all(Result::is_err), "{extra:?}");
        }
        // A checksum that does not match the content.
        let mut bad = stored.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(both(&bad, n).iter().all(Result::is_err));
        // A skippable frame (which libzstd reads as no content at all).
        let skippable = [0x50, 0x2A, 0x4D, 0x18, 0, 0, 0, 0];
        assert!(both(&skippable, 0).iter().all(Result::is_err));
    }

    #[test]
    fn wrong_lengths_and_garbage_are_errors() {
        let plain = b"abc".repeat(100);
        let stored = zstd::bulk::compress(&plain, 3).unwrap();
        assert!(decode(Codec::Zstd, &stored, 10).is_err());
        assert!(decode(Codec::Zstd, &stored, 1000).is_err());
        assert!(decode(Codec::Raw, b"abc", 4).is_err());
        assert!(decode(Codec::Zstd, b"not a frame", 5).is_err());
        assert!(ruzstd_decode(b"not a frame", 5).is_err());
    }
}
