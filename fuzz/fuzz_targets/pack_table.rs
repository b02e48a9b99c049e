//! `pack::parse_table` on a pack's tail, as a ranged read gives it: the first
//! 8 input bytes are the pack's length (u64 LE), the rest the tail. Every
//! blob it accepts lies inside the pack's data area.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapkeep::core::format::pack::{parse_table, table_len_from_trailer, PACK_MAGIC, TRAILER_LEN};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let pack_len = u64::from_le_bytes(data[..8].try_into().unwrap());
    let tail = &data[8..];
    let Ok(entries) = parse_table(tail, pack_len) else {
        return;
    };
    let table_len = table_len_from_trailer(&tail[tail.len() - TRAILER_LEN..]).unwrap();
    assert_eq!(table_len, TRAILER_LEN + entries.len() * 52);
    let data_end = pack_len - table_len as u64;
    for e in &entries {
        assert!(e.offset >= PACK_MAGIC.len() as u64);
        assert!(e.offset <= e.end() && e.end() <= data_end);
    }
});
