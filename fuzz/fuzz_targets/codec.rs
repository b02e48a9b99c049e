//! `codec::decode` (ruzstd, as in the wasm shells): first byte the codec,
//! next 4 the recorded plain length (u32 LE), the rest the stored bytes.
//! A success has exactly the recorded length; for zstd, whatever libzstd
//! (what native builds decode with) decodes, the pure decoder decodes to
//! the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapkeep::core::format::codec::{self, Codec, MAX_BLOB_LEN};

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let Some(c) = Codec::from_byte(data[0]) else {
        return;
    };
    let raw_len = u32::from_le_bytes(data[1..5].try_into().unwrap());
    let stored = &data[5..];
    let pure = codec::decode(c, stored, raw_len, codec::ruzstd_decode);
    if let Ok(out) = &pure {
        assert_eq!(out.len(), raw_len as usize);
        if c == Codec::Raw {
            assert_eq!(out, stored);
        }
    }
    if c == Codec::Zstd && raw_len <= MAX_BLOB_LEN {
        // What libzstd decodes, ruzstd decodes alike. ruzstd checks a
        // block's entropy-coded sections less strictly and so decodes some
        // frames that libzstd calls corrupt (fuzz/findings/codec,
        // docs/FUZZING.md); readers refuse such a blob anyway unless its
        // plain bytes hash to the blob's id.
        if let Some(native) = native(stored, raw_len) {
            assert_eq!(
                pure.as_ref().ok(),
                Some(&native),
                "ruzstd and libzstd disagree"
            );
        }
    }
});

/// What `codec::decode` does in native builds (with
/// src/native/decompressor.rs): one
/// standard zstd frame, nothing after it, decoded by libzstd with one byte
/// of slack over the recorded length.
fn native(stored: &[u8], raw_len: u32) -> Option<Vec<u8>> {
    if !stored.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
        return None;
    }
    if zstd::zstd_safe::find_frame_compressed_size(stored).ok()? != stored.len() {
        return None;
    }
    zstd::bulk::decompress(stored, raw_len as usize + 1)
        .ok()
        .filter(|out| out.len() == raw_len as usize)
}
