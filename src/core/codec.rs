//! Blob compression. Each blob is compressed on its own (so one blob is one
//! range read) and stored raw when zstd does not make it smaller.
//!
//! Native builds encode and decode with libzstd; wasm builds decode with the
//! pure-Rust `ruzstd`. Both read the same standard zstd frames.

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
}

/// Decodes stored blob bytes back to the plain bytes (`raw_len` long).
pub fn decode(codec: Codec, stored: &[u8], raw_len: u32) -> Result<Vec<u8>, DecodeError> {
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
    // One byte of slack so an over-long frame is reported as a length
    // mismatch rather than an opaque "buffer too small".
    zstd::bulk::decompress(stored, raw_len + 1).map_err(|e| DecodeError::Corrupt(e.to_string()))
}

#[cfg(not(feature = "native"))]
fn zstd_decode(stored: &[u8], raw_len: usize) -> Result<Vec<u8>, DecodeError> {
    ruzstd_decode(stored, raw_len)
}

/// Pure-Rust decoder, used by wasm builds (and tested against libzstd natively).
pub fn ruzstd_decode(stored: &[u8], raw_len: usize) -> Result<Vec<u8>, DecodeError> {
    use std::io::Read;
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

/// Encodes a blob for storage: zstd at `level` when that shrinks it, raw otherwise.
#[cfg(feature = "native")]
pub fn encode(compression: Compression, level: i32, plain: &[u8]) -> (Codec, Vec<u8>) {
    if compression == Compression::Zstd && !plain.is_empty() {
        if let Ok(z) = zstd::bulk::compress(plain, level) {
            if z.len() < plain.len() {
                return (Codec::Zstd, z);
            }
        }
    }
    (Codec::Raw, plain.to_vec())
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;

    #[test]
    fn compressible_blobs_shrink_and_round_trip_through_both_decoders() {
        let plain = b"snapkeep ".repeat(1000);
        let (codec, stored) = encode(Compression::Zstd, 3, &plain);
        assert_eq!(codec, Codec::Zstd);
        assert!(stored.len() < plain.len() / 10);
        assert_eq!(decode(codec, &stored, plain.len() as u32).unwrap(), plain);
        assert_eq!(ruzstd_decode(&stored, plain.len()).unwrap(), plain);
    }

    #[test]
    fn incompressible_blobs_are_stored_raw() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let plain: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let (codec, stored) = encode(Compression::Zstd, 3, &plain);
        assert_eq!(codec, Codec::Raw);
        assert_eq!(stored, plain);
    }

    #[test]
    fn wrong_lengths_and_garbage_are_errors() {
        let plain = b"abc".repeat(100);
        let (codec, stored) = encode(Compression::Zstd, 3, &plain);
        assert!(matches!(
            decode(codec, &stored, 10),
            Err(DecodeError::Length { .. }) | Err(DecodeError::Corrupt(_))
        ));
        assert!(decode(Codec::Zstd, b"not a frame", 5).is_err());
        assert!(ruzstd_decode(b"not a frame", 5).is_err());
    }
}
