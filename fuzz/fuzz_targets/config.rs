//! `StoredConfig::decode` (a plain config, or an encrypted repository's
//! plain part): no panic; a plain config that decodes re-encodes to one
//! that decodes to the same value, and an encrypted one's sealed part
//! never opens under a key that did not seal it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapkeep::core::crypto::keys::MasterKey;
use snapkeep::core::format::config::RepoConfig;
use snapkeep::core::format::sealed_config::StoredConfig;

fuzz_target!(|data: &[u8]| {
    match StoredConfig::decode(data) {
        Ok(StoredConfig::Plain(c)) => {
            assert_eq!(RepoConfig::decode(&c.encode()).as_ref(), Ok(&c));
        }
        Ok(StoredConfig::Encrypted(e)) => {
            let key = MasterKey::from_bytes([7; 32]).data_key();
            assert!(e.open(&key).is_err(), "a forged envelope opened");
        }
        Err(_) => {}
    }
});
