//! libzstd decoding for the native shell: the
//! [`ZstdDecoder`](crate::core::format::codec::ZstdDecoder) every native
//! read passes to `core::format::codec::decode` (restores decode with it;
//! it is several times faster than the core's pure-Rust decoder).

use std::cell::RefCell;

use crate::core::format::codec::{DecodeError, MAX_BLOB_LEN};

/// Decodes one zstd frame with libzstd: the native shell's
/// [`ZstdDecoder`](crate::core::format::codec::ZstdDecoder).
pub fn libzstd_decode(stored: &[u8], raw_len: usize) -> Result<Vec<u8>, DecodeError> {
    // The output buffer is allocated up front: cap it as `decode` does.
    if raw_len > MAX_BLOB_LEN as usize {
        return Err(DecodeError::TooLarge(
            u32::try_from(raw_len).unwrap_or(u32::MAX),
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::codec::{decode, ruzstd_decode, Codec};

    #[test]
    fn zstd_frames_decode_with_libzstd_and_ruzstd_alike() {
        let plain = b"snapkeep ".repeat(1000);
        let stored = zstd::bulk::compress(&plain, 3).unwrap();
        assert_eq!(
            decode(Codec::Zstd, &stored, plain.len() as u32, libzstd_decode).unwrap(),
            plain
        );
        assert_eq!(ruzstd_decode(&stored, plain.len()).unwrap(), plain);
    }

    #[test]
    fn absurd_recorded_lengths_are_refused_before_allocating() {
        assert_eq!(
            decode(Codec::Zstd, b"", u32::MAX, libzstd_decode),
            Err(DecodeError::TooLarge(u32::MAX))
        );
        assert!(ruzstd_decode(b"", usize::MAX).is_err());
    }

    /// Both decoders, as native and wasm builds run them.
    fn both(stored: &[u8], raw_len: u32) -> [Result<Vec<u8>, DecodeError>; 2] {
        [
            decode(Codec::Zstd, stored, raw_len, libzstd_decode),
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
        assert!(decode(Codec::Zstd, &stored, 10, libzstd_decode).is_err());
        assert!(decode(Codec::Zstd, &stored, 1000, libzstd_decode).is_err());
        assert!(decode(Codec::Raw, b"abc", 4, libzstd_decode).is_err());
        assert!(decode(Codec::Zstd, b"not a frame", 5, libzstd_decode).is_err());
        assert!(ruzstd_decode(b"not a frame", 5).is_err());
    }
}
