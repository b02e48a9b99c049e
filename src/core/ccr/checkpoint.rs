//! Checkpoints and their snapshot names.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a checkpoint's snapshot names start.
pub const CHECKPOINT_PREFIX: &str = "ccr-";
/// Lineage ids are this many lowercase hexadecimal digits (random, made by
/// the shell that starts the lineage).
pub const LINEAGE_LEN: usize = 16;

/// One checkpoint: the `seq`-th of its lineage (from 1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Point {
    pub lineage: String,
    pub seq: u64,
}

impl Point {
    pub fn new(lineage: &str, seq: u64) -> Point {
        Point {
            lineage: lineage.to_string(),
            seq,
        }
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.lineage, self.seq)
    }
}

/// Whether `id` is a well-formed lineage id.
pub fn is_lineage_id(id: &str) -> bool {
    id.len() == LINEAGE_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The snapshot name of checkpoint `p` of `index`. `seq` is zero-padded to
/// 20 digits so that listings sort in order, but names are always parsed,
/// never compared as strings.
pub fn snapshot_name(index: &str, p: &Point) -> String {
    format!("{CHECKPOINT_PREFIX}{index}-{}-{:020}", p.lineage, p.seq)
}

/// The index and checkpoint a snapshot name names, if it is a checkpoint's
/// (index names may hold `-`: the name is read from the right).
pub fn parse_snapshot_name(name: &str) -> Option<(String, Point)> {
    let rest = name.strip_prefix(CHECKPOINT_PREFIX)?;
    let (rest, seq) = rest.rsplit_once('-')?;
    let (index, lineage) = rest.rsplit_once('-')?;
    let canonical = seq.len() == 20 && seq.bytes().all(|b| b.is_ascii_digit());
    if index.is_empty() || !is_lineage_id(lineage) || !canonical {
        return None;
    }
    let seq: u64 = seq.parse().ok()?;
    (seq > 0).then(|| (index.to_string(), Point::new(lineage, seq)))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const L: &str = "0123456789abcdef";

    #[test]
    fn names_round_trip_with_dashes_in_the_index() {
        let p = Point::new(L, 42);
        let name = snapshot_name("logs-2026-12", &p);
        assert_eq!(name, format!("ccr-logs-2026-12-{L}-00000000000000000042"));
        assert_eq!(parse_snapshot_name(&name), Some(("logs-2026-12".into(), p)));
    }

    #[test]
    fn other_names_are_not_checkpoints() {
        for name in [
            "nightly-1",
            "ccr-logs-0123456789abcdef-42",
            "ccr-logs-0123456789ABCDEF-00000000000000000042",
            "ccr--0123456789abcdef-00000000000000000042",
            "ccr-logs-0123456789abcdef-00000000000000000000",
            "ccr-logs-0123456789abcde-00000000000000000001",
        ] {
            assert_eq!(parse_snapshot_name(name), None, "{name}");
        }
    }
}
