//! The edge Worker's `Range` header parser: no panic; a parsed range
//! resolves inside the object or not at all, and prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapkeep::repo::http_range::{parse, Wanted};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let Some(w) = parse(header) else { return };
    let printed = match w {
        Wanted::From {
            start,
            last: Some(l),
        } => {
            assert!(start <= l);
            format!("bytes={start}-{l}")
        }
        Wanted::From { start, last: None } => format!("bytes={start}-"),
        Wanted::Suffix(n) => format!("bytes=-{n}"),
    };
    assert_eq!(parse(&printed), Some(w));
    for size in [0, 1, 2, 1000, u64::MAX - 1, u64::MAX] {
        if let Some(r) = w.resolve(size) {
            assert!(r.start < r.end && r.end <= size, "{w:?} in {size}: {r:?}");
        }
    }
    if let Some(r) = w.without_size() {
        assert!(r.start < r.end);
    }
});
