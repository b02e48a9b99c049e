//! `BlobEntry::decode`: no panic; round trip; `end` never wraps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapkeep::core::format::blob::BlobEntry;

fuzz_target!(|data: &[u8]| {
    let Ok(e) = BlobEntry::decode(data) else {
        return;
    };
    assert_eq!(data.len(), BlobEntry::SIZE);
    let mut out = Vec::new();
    e.encode_into(&mut out);
    assert_eq!(out.len(), BlobEntry::SIZE);
    // Readers ignore the two reserved bytes; everything else is kept.
    assert_eq!(out[..50], data[..50]);
    assert_eq!(BlobEntry::decode(&out), Ok(e));
    assert!(e.end() >= e.offset);
});
