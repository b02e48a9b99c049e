//! Blob encoding on the snapshot path: zstd when it shrinks the blob, raw
//! otherwise (the rule of format v1). Each pipeline thread keeps one zstd
//! context and one output buffer, so compressing a chunk allocates nothing.

use std::cell::RefCell;

use crate::core::format::codec::{Codec, Compression};

thread_local! {
    static STATE: RefCell<Option<(i32, zstd::bulk::Compressor<'static>, Vec<u8>)>> = const { RefCell::new(None) };
}

/// Encodes `plain` and hands the chosen codec and stored bytes to `f`.
/// `f` must not encode again on the same thread.
pub fn with_encoded<R>(
    compression: Compression,
    level: i32,
    plain: &[u8],
    f: impl FnOnce(Codec, &[u8]) -> R,
) -> R {
    if compression == Compression::None || plain.is_empty() {
        return f(Codec::Raw, plain);
    }
    STATE.with(|cell| {
        let mut state = cell.borrow_mut();
        if state.as_ref().is_none_or(|(l, _, _)| *l != level) {
            match zstd::bulk::Compressor::new(level) {
                Ok(c) => *state = Some((level, c, Vec::new())),
                Err(_) => return f(Codec::Raw, plain),
            }
        }
        let (_, compressor, out) = state.as_mut().expect("initialised above");
        out.clear();
        out.reserve(zstd::zstd_safe::compress_bound(plain.len()));
        match compressor.compress_to_buffer(plain, out) {
            Ok(n) if n < plain.len() => f(Codec::Zstd, &out[..n]),
            _ => f(Codec::Raw, plain),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::codec::decode;
    use crate::native::decompressor::libzstd_decode;

    #[test]
    fn compressible_data_is_zstd_and_random_data_is_raw() {
        let text = b"snapkeep snapkeep ".repeat(500);
        let (codec, stored) = with_encoded(Compression::Zstd, 3, &text, |c, s| (c, s.to_vec()));
        assert_eq!(codec, Codec::Zstd);
        assert!(stored.len() < text.len() / 10);
        assert_eq!(
            decode(codec, &stored, text.len() as u32, libzstd_decode).unwrap(),
            text
        );
        let mut x = 7u64;
        let noise: Vec<u8> = (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let codec = with_encoded(Compression::Zstd, 3, &noise, |c, s| {
            assert_eq!(s, &noise[..]);
            c
        });
        assert_eq!(codec, Codec::Raw);
        assert_eq!(
            with_encoded(Compression::None, 3, &text, |c, _| c),
            Codec::Raw
        );
    }
}
