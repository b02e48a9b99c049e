//! Which packs `repo check --read-data-subset` downloads and re-hashes.
//!
//! The choice is a function of the packs and a salt: the shell draws a
//! fresh random salt each run, so repeated runs read different packs and
//! cover the repository over time, while the same salt always picks the
//! same packs.

use crate::core::format::id::Id;

/// The packs a subset check reads: ranked by the hash of their id followed
/// by `salt`, the first `fraction` of them, rounded up and at least one
/// (none only when there are no packs). Each pack comes with its value `T`
/// (its blob table, say), in rank order.
pub fn choose_subset<'a, T>(
    packs: Vec<(&'a Id, T)>,
    fraction: f64,
    salt: &[u8],
) -> Vec<(&'a Id, T)> {
    let want = ((packs.len() as f64 * fraction).ceil() as usize).clamp(1, packs.len().max(1));
    let mut ranked: Vec<(Id, (&'a Id, T))> = packs
        .into_iter()
        .map(|p| {
            let mut keyed = p.0 .0.to_vec();
            keyed.extend_from_slice(salt);
            (Id::of(&keyed), p)
        })
        .collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().take(want).map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn packs(n: u32) -> Vec<Id> {
        (0..n).map(|i| Id::of(&i.to_le_bytes())).collect()
    }

    fn chosen(ids: &[Id], fraction: f64, salt: &[u8]) -> BTreeSet<Id> {
        let with_values: Vec<(&Id, usize)> = ids.iter().zip(0..).collect();
        let picked = choose_subset(with_values, fraction, salt);
        for (id, value) in &picked {
            assert_eq!(**id, ids[*value], "each pack keeps its own value");
        }
        picked.into_iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn takes_the_fraction_rounded_up_and_at_least_one_pack() {
        let ids = packs(10);
        assert_eq!(chosen(&ids, 0.1, b"s").len(), 1);
        assert_eq!(chosen(&ids, 0.25, b"s").len(), 3);
        assert_eq!(chosen(&ids, 0.0, b"s").len(), 1);
        assert_eq!(chosen(&ids, 1.0, b"s").len(), 10);
        assert_eq!(chosen(&ids, 1.0, b"s"), ids.iter().copied().collect());
        assert!(chosen(&[], 0.5, b"s").is_empty());
    }

    #[test]
    fn the_salt_decides_which_packs_and_the_same_salt_picks_the_same() {
        let ids = packs(40);
        let a = chosen(&ids, 0.25, b"run-1");
        assert_eq!(a, chosen(&ids, 0.25, b"run-1"));
        // The choice does not depend on the order the packs come in.
        let mut reversed = ids.clone();
        reversed.reverse();
        assert_eq!(a, chosen(&reversed, 0.25, b"run-1"));
        let b = chosen(&ids, 0.25, b"run-2");
        assert_eq!(b.len(), 10);
        assert_ne!(a, b, "another salt reads other packs");
        // Over a few runs every pack is read.
        let covered: BTreeSet<Id> = (0..40u32)
            .flat_map(|run| chosen(&ids, 0.25, &run.to_le_bytes()))
            .collect();
        assert_eq!(covered.len(), ids.len());
    }
}
