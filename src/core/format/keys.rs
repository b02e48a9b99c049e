//! Object keys: the repository's layout on storage.

use crate::core::format::id::Id;

pub const CONFIG: &str = "config";
pub const LATEST: &str = "index.latest";
pub const ROOT_PREFIX: &str = "index-";
pub const INDEX_PREFIX: &str = "index/";
pub const PACK_PREFIX: &str = "packs/";
pub const SNAPSHOT_PREFIX: &str = "snapshots/";
/// Space a local repository keeps allocated for deletes on a full disk
/// (see `native::reserve`); its content means nothing.
pub const RESERVE: &str = "reserve";

pub fn root(generation: u64) -> String {
    format!("{ROOT_PREFIX}{generation}")
}

/// The generation named by a root key, if it is one.
pub fn parse_root(key: &str) -> Option<u64> {
    let n = key.strip_prefix(ROOT_PREFIX)?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0'))
    {
        return None;
    }
    // Generations past 2^63 - 1 are not ours (see `root::MAX_GENERATION`).
    n.parse().ok().filter(|g| *g <= i64::MAX as u64)
}

pub fn index_file(id: &Id) -> String {
    format!("{INDEX_PREFIX}{id}")
}

/// Packs are fanned out by their first byte so no directory grows huge.
pub fn pack(id: &Id) -> String {
    let h = id.to_hex();
    format!("{PACK_PREFIX}{}/{h}", &h[..2])
}

pub fn parse_pack(key: &str) -> Option<Id> {
    key.strip_prefix(PACK_PREFIX)?
        .rsplit('/')
        .next()?
        .parse()
        .ok()
}

pub fn manifest(uuid: &str) -> String {
    format!("{SNAPSHOT_PREFIX}{uuid}.json")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn keys_round_trip() {
        assert_eq!(parse_root(&root(42)), Some(42));
        assert_eq!(parse_root("index-"), None);
        assert_eq!(parse_root("index-007"), None);
        assert_eq!(parse_root("index.latest"), None);
        let id = Id::of(b"p");
        assert_eq!(parse_pack(&pack(&id)), Some(id));
        assert!(pack(&id).starts_with(&format!("packs/{}/", &id.to_hex()[..2])));
    }
}
