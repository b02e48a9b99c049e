//! `Root::decode`: no panic; round trip of what decodes; a writer can
//! commit the next generation on top of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapkeep::core::format::root::{Root, RootChange};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Root::decode(data) {
        assert_eq!(Root::decode(&r.encode()).as_ref(), Ok(&r));
        for s in &r.snapshots {
            assert!(r.snapshot(&s.snapshot).is_some());
        }
        // A decoded root's next generation is representable
        // (fuzz/findings/root).
        let next = r.apply(&RootChange::Settings(r.settings.clone()));
        assert!(next.is_ok_and(|n| n.generation > r.generation));
    }
});
