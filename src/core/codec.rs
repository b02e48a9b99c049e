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
        Codec::Zstd => zstd_decode(stored, raw_len as usize)?,
    };
    if out.len() != raw_len as usize {
        return Err(DecodeError::Length {
            expected: raw_len as u64,
            got: out.len() as u64,
        });
    }
    Ok(out)
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
    let mut dec = ruzstd::decoding::StreamingDecoder::new(stored)
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    let mut out = Vec::with_capacity(raw_len);
    // Read at most one byte past the expected length: enough to notice a frame
    // that is too long without letting a hostile frame allocate without bound.
    (&mut dec)
        .take(raw_len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
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
