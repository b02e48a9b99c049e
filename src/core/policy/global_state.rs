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

/// Top-level folders a follower node keeps beside its follower indices
/// while it works (the stage of the next version, and those of earlier
/// versions' layouts), by the start of their names.
pub const FOLLOWER_WORK_PREFIXES: [&str; 3] = [".ccr-next-", ".ccr-old-", ".ccr-deltas-"];

/// Whether a top-level entry is a follower node's work folder: neither an
/// index nor global state. A snapshot leaves it out (it is a second,
/// linked copy of an index at some earlier checkpoint) and a restore of
/// global state neither removes nor replaces it.
pub fn is_follower_work(name: &str, is_dir: bool) -> bool {
    is_dir && FOLLOWER_WORK_PREFIXES.iter().any(|p| name.starts_with(p))
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
    fn a_follower_nodes_work_folders_are_neither_indices_nor_data() {
        for name in [".ccr-next-logs", ".ccr-old-logs-17-0", ".ccr-deltas-logs"] {
            assert!(is_follower_work(name, true), "{name}");
            assert!(!is_follower_work(name, false), "a file named like one");
        }
        for name in [".ccr-checkpoints", ".lock", "ccr-next-logs", "_state"] {
            assert!(!is_follower_work(name, true), "{name}");
        }
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
