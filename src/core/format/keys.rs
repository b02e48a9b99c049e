//! Object keys: the repository's layout on storage.

use crate::core::crypto::envelope::ObjectKind;
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
/// Key slots of an encrypted repository: `keys/<id>.json`.
pub const KEY_SLOT_PREFIX: &str = "keys/";
/// The edge watchdog's switch, written by operators with plain tools.
pub const EDGE_SETTINGS: &str = "slm/edge";
/// Short-lived probes of `repo verify` and `repo analyze`.
pub const PROBE_PREFIX: &str = "verify/";

pub fn key_slot(id: &str) -> String {
    format!("{KEY_SLOT_PREFIX}{id}.json")
}

/// The envelope kind an encrypted repository stores the object at `key`
/// as, or `None` for objects stored as they are: the config (its own
/// sealed part inside), key slots, packs (whose blobs and table are sealed
/// one by one), the reserve, probes, and the edge watchdog's switch.
pub fn envelope_kind(key: &str) -> Option<ObjectKind> {
    let plain = key == CONFIG
        || key == RESERVE
        || key == EDGE_SETTINGS
        || [KEY_SLOT_PREFIX, PACK_PREFIX, PROBE_PREFIX]
            .iter()
            .any(|p| key.starts_with(p));
    if plain {
        return None;
    }
    Some(if key == LATEST {
        ObjectKind::LatestHint
    } else if parse_root(key).is_some() {
        ObjectKind::Root
    } else if key.starts_with(INDEX_PREFIX) {
        ObjectKind::Index
    } else if key.starts_with(SNAPSHOT_PREFIX) {
        ObjectKind::Manifest
    } else {
        ObjectKind::Control
    })
}

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

    #[test]
    fn envelope_kinds_follow_the_layout() {
        let id = Id::of(b"p");
        for plain in [CONFIG, RESERVE, EDGE_SETTINGS, "keys/a.json", "verify/x"] {
            assert_eq!(envelope_kind(plain), None, "{plain}");
        }
        assert_eq!(envelope_kind(&pack(&id)), None);
        assert_eq!(envelope_kind(LATEST), Some(ObjectKind::LatestHint));
        assert_eq!(envelope_kind(&root(3)), Some(ObjectKind::Root));
        assert_eq!(envelope_kind(&index_file(&id)), Some(ObjectKind::Index));
        assert_eq!(envelope_kind(&manifest("u")), Some(ObjectKind::Manifest));
        for control in [
            "inflight/u.json",
            "pins/u.json",
            "slm/policies/p",
            "slm/watchdog",
        ] {
            assert_eq!(
                envelope_kind(control),
                Some(ObjectKind::Control),
                "{control}"
            );
        }
    }
}
