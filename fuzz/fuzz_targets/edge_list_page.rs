//! The JSON listing page the CLI's edge client parses: no panic; round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapkeep::storage::edge_wire::parse_list_page;

fuzz_target!(|data: &[u8]| {
    if let Ok(page) = parse_list_page(data) {
        let bytes = serde_json::to_vec(&page).unwrap();
        assert_eq!(parse_list_page(&bytes).unwrap(), page);
    }
});
