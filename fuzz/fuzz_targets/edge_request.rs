//! What the edge Worker takes from a request's path and body before any
//! storage is touched: the repository name and object key (percent-escaped
//! path segments, then validated), and the restore plan's index selection.
//! No panic; every valid key survives the client's escaping.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapkeep::core::format::naming::validate_name;
use snapkeep::core::policy::selection::Selection;
use snapkeep::storage::edge_wire::{escape_key, unescape_key, unescape_segment};
use snapkeep::storage::validate_key;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let name = unescape_segment(&text);
    let _ = validate_name("repository", &name);
    let key = unescape_key(&text);
    if validate_key(&key).is_ok() {
        assert_eq!(unescape_key(&escape_key(&key)), key);
    }
    if validate_key(&text).is_ok() {
        assert_eq!(unescape_key(&escape_key(&text)), text);
    }
    let _ = Selection::parse(&text);
});
