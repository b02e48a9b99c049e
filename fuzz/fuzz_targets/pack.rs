//! `pack::parse_pack` on a whole pack, then every blob's bytes decoded as a
//! reader would: no panic, every entry's range is inside the pack, and a
//! pack rebuilt from the accepted blobs parses to the same kinds and codecs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapkeep::core::format::codec;
use snapkeep::core::format::pack::{parse_pack, PackBuilder};

fuzz_target!(|data: &[u8]| {
    let Ok(entries) = parse_pack(data) else {
        return;
    };
    let mut rebuilt = PackBuilder::new();
    for e in &entries {
        let stored = data
            .get(e.offset as usize..e.end() as usize)
            .expect("parse_pack checked every range");
        let _ = codec::decode(e.codec, stored, e.raw_len, codec::ruzstd_decode);
        rebuilt.add(e.id, e.kind, e.codec, stored, e.raw_len);
    }
    let (_, bytes, built) = rebuilt.finish();
    let again = parse_pack(&bytes).expect("a built pack parses");
    assert_eq!(again, built);
    for (a, b) in again.iter().zip(&entries) {
        assert_eq!(
            (a.id, a.kind, a.codec, a.stored_len, a.raw_len),
            (b.id, b.kind, b.codec, b.stored_len, b.raw_len)
        );
    }
});
