//! `Root::decode`: no panic; round trip of what decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapkeep::core::root::Root;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Root::decode(data) {
        assert_eq!(Root::decode(&r.encode()).as_ref(), Ok(&r));
        for s in &r.snapshots {
            assert!(r.snapshot(&s.snapshot).is_some());
        }
    }
});
