//! Leases: the leader keeps the checkpoints its followers are reading.
//!
//! A follower applies the newest checkpoint over whatever it holds, so no
//! checkpoint is needed to *catch up*; a lease only keeps the one a
//! follower is reading from being deleted under it. Every read of a
//! checkpoint renews its follower's lease, and the leader judges expiry on
//! its own clock (it records `renewed_ms` itself), so followers' clocks
//! never matter. A lease that expires costs nothing but a retry: the
//! follower's next read takes the newest checkpoint instead.

use serde::{Deserialize, Serialize};

use crate::core::ccr::checkpoint::Point;

/// Elasticsearch's `index.soft_deletes.retention_lease.period` default.
pub const DEFAULT_LEASE_MS: i64 = 12 * 3_600_000;

/// One follower's hold on one checkpoint, as the leader recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The follower's identity (its cluster alias and index).
    pub follower: String,
    pub point: Point,
    /// When the leader last saw the follower read `point`, on its own clock.
    pub renewed_ms: i64,
}

impl Lease {
    pub fn is_live(&self, now_ms: i64, lease_ms: i64) -> bool {
        now_ms < self.renewed_ms.saturating_add(lease_ms)
    }
}

/// What a leader keeps of one index's checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The newest checkpoints of the current lineage kept regardless.
    pub keep_last: usize,
    pub lease_ms: i64,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            keep_last: 2,
            lease_ms: DEFAULT_LEASE_MS,
        }
    }
}

/// The renewed lease set after `follower` read `point` at `now_ms`: one
/// lease per follower, the newest read wins.
pub fn renew(leases: &[Lease], follower: &str, point: &Point, now_ms: i64) -> Vec<Lease> {
    let mut out: Vec<Lease> = leases
        .iter()
        .filter(|l| l.follower != follower)
        .cloned()
        .collect();
    out.push(Lease {
        follower: follower.to_string(),
        point: point.clone(),
        renewed_ms: now_ms,
    });
    out
}

/// The checkpoints (of one index, any lineage) that may be deleted now:
/// all but the newest `keep_last` of `current` and those a live lease
/// holds. Listed oldest first.
pub fn prunable(
    checkpoints: &[Point],
    current: &str,
    leases: &[Lease],
    now_ms: i64,
    r: Retention,
) -> Vec<Point> {
    let mut newest: Vec<&Point> = checkpoints
        .iter()
        .filter(|p| p.lineage == current)
        .collect();
    newest.sort_by_key(|p| std::cmp::Reverse(p.seq));
    newest.truncate(r.keep_last);
    let leased = |p: &Point| {
        leases
            .iter()
            .any(|l| &l.point == p && l.is_live(now_ms, r.lease_ms))
    };
    let mut out: Vec<Point> = checkpoints
        .iter()
        .filter(|p| !newest.contains(p) && !leased(p))
        .cloned()
        .collect();
    out.sort();
    out
}

/// The leases that have expired at `now_ms` (to drop and to report).
pub fn expired(leases: &[Lease], now_ms: i64, lease_ms: i64) -> Vec<Lease> {
    leases
        .iter()
        .filter(|l| !l.is_live(now_ms, lease_ms))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbb";

    #[test]
    fn the_newest_and_the_leased_checkpoints_are_kept() {
        let cps: Vec<Point> = (1..=6).map(|s| Point::new(A, s)).collect();
        let r = Retention {
            keep_last: 2,
            lease_ms: 1_000,
        };
        let leases = renew(&[], "b:logs", &Point::new(A, 2), 0);
        let leases = renew(&leases, "c:logs", &Point::new(A, 3), 500);
        let seqs = |v: Vec<Point>| v.into_iter().map(|p| p.seq).collect::<Vec<_>>();
        assert_eq!(seqs(prunable(&cps, A, &leases, 900, r)), [1, 4]);
        // b's lease ran out at 1000 (on the leader's clock); c's at 1500.
        assert_eq!(seqs(prunable(&cps, A, &leases, 1_000, r)), [1, 2, 4]);
        assert_eq!(expired(&leases, 1_000, 1_000).len(), 1);
        // A new read by b moves its lease.
        let leases = renew(&leases, "b:logs", &Point::new(A, 6), 1_200);
        assert_eq!(leases.len(), 2);
        assert_eq!(seqs(prunable(&cps, A, &leases, 1_200, r)), [1, 2, 4]);
    }

    #[test]
    fn checkpoints_of_an_old_lineage_go_once_unleased() {
        let cps = vec![Point::new(A, 1), Point::new(A, 2), Point::new(B, 1)];
        let r = Retention {
            keep_last: 2,
            lease_ms: 1_000,
        };
        assert_eq!(
            prunable(&cps, B, &[], 0, r),
            [Point::new(A, 1), Point::new(A, 2)]
        );
        let leases = renew(&[], "x", &Point::new(A, 2), 0);
        assert_eq!(prunable(&cps, B, &leases, 10, r), [Point::new(A, 1)]);
    }
}
