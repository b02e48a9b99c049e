//! `pack::parse_pack` on a whole pack (plain, or with a sealed table under
//! a fixed key), then every blob's bytes decoded as a reader would: no
//! panic, every entry's range is inside the pack, and a pack rebuilt from
//! the accepted blobs, with a plain and with a sealed table, parses to the
//! same kinds and codecs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapkeep::core::crypto::keys::MasterKey;
use snapkeep::core::format::codec;
use snapkeep::core::format::pack::{parse_pack, PackBuilder, TableSeal};

fuzz_target!(|data: &[u8]| {
    let key = MasterKey::from_bytes([7; 32]).data_key();
    let Ok(entries) = parse_pack(data, Some(&key)) else {
        return;
    };
    let seals = [
        None,
        Some(TableSeal {
            key: &key,
            nonce: [9; 24],
        }),
    ];
    for seal in seals {
        let mut rebuilt = PackBuilder::new();
        for e in &entries {
            let stored = data
                .get(e.offset as usize..e.end() as usize)
                .expect("parse_pack checked every range");
            let _ = codec::decode(e.codec, stored, e.raw_len, codec::ruzstd_decode);
            rebuilt.add(e.id, e.kind, e.codec, stored, e.raw_len);
        }
        let (_, bytes, built) = rebuilt.finish(seal);
        let again = parse_pack(&bytes, Some(&key)).expect("a built pack parses");
        assert_eq!(again, built);
        for (a, b) in again.iter().zip(&entries) {
            assert_eq!(
                (a.id, a.kind, a.codec, a.stored_len, a.raw_len),
                (b.id, b.kind, b.codec, b.stored_len, b.raw_len)
            );
        }
    }
});
