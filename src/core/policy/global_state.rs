//! What counts as global state: the one rule both sides apply to the top
//! level of a data directory. Backup snapshots these entries as the global
//! state (stored under [`GLOBAL_STATE`] in a manifest) and takes every other
//! entry for an index folder; a restore with global state replaces the
//! target's entries of the same kind and leaves its other index folders
//! alone.
//!
//! [`GLOBAL_STATE`]: crate::core::format::manifest::GLOBAL_STATE

/// Whether a top-level entry named `name` is global state rather than an
/// index: anything that is not a folder (files, symlinks, even a link to a
/// folder, since entries are looked at without following links), and
/// folders whose name starts with `_` (which no index name does) or `.`
/// (hidden folders).
pub fn is_global_state(name: &str, is_dir: bool) -> bool {
    !is_dir || name.starts_with('_') || name.starts_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::manifest::GLOBAL_STATE;
    use crate::core::format::naming::validate_name;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn plain_folders_are_indices_and_everything_else_is_global_state() {
        assert!(!is_global_state("logs", true));
        assert!(!is_global_state("logs-2024.01", true));
        assert!(is_global_state("cluster.json", false));
        assert!(is_global_state("logs", false), "a file named like an index");
        assert!(is_global_state("_state", true));
        assert!(is_global_state(".lock", true));
        assert!(is_global_state(GLOBAL_STATE, true));
    }

    #[test]
    fn the_global_state_name_is_never_an_index_name() {
        // Folders named with a leading `_` are global state, and index names
        // never start with one: the manifest's `_global_state` entry cannot
        // collide with an index.
        for name in ["_state", GLOBAL_STATE] {
            assert!(validate_name("index", name).is_err(), "{name}");
        }
    }
}
