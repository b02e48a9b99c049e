//! `RepoConfig::decode`: no panic; a config that decodes re-encodes to one
//! that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapkeep::core::format::config::RepoConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = RepoConfig::decode(data) {
        assert_eq!(RepoConfig::decode(&c.encode()).as_ref(), Ok(&c));
    }
});
