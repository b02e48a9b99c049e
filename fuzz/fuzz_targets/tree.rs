//! `Tree::decode` then `Tree::validate`: no panic; round trip of what
//! decodes; a validated tree's names are safe, unique path components.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapkeep::core::format::tree::{is_safe_name, Tree};

fuzz_target!(|data: &[u8]| {
    let Ok(t) = Tree::decode(data) else { return };
    assert_eq!(Tree::decode(&t.encode()).as_ref(), Ok(&t));
    if t.validate().is_ok() {
        let mut names: Vec<&str> = t.nodes.iter().map(|n| n.name.as_str()).collect();
        assert!(names.iter().all(|n| is_safe_name(n) && !n.contains('/')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), t.nodes.len());
        // Canonical order makes every entry findable by name.
        let sorted = Tree::new(t.nodes.clone());
        for n in &t.nodes {
            assert_eq!(sorted.get(&n.name), Some(n));
        }
        // `get` and the diff's merge walk rely on canonical order
        // (fuzz/findings/tree).
        assert_eq!(t, sorted, "a validated tree is in canonical order");
    }
});
