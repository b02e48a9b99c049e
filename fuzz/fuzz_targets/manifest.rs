//! `Manifest::decode`: no panic, also in the totals and summary that readers
//! (listing, the inspector, the Worker) derive from a decoded manifest;
//! round trip of what decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapkeep::core::format::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::decode(data) {
        assert_eq!(Manifest::decode(&m.encode()).as_ref(), Ok(&m));
        // Totals saturate on counts a decoded manifest can hold
        // (fuzz/findings/manifest).
        let _ = m.summary();
    }
});
