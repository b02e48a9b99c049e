//! Following through shared object storage: the objects a leader's
//! publisher and its followers exchange inside one repository both nodes
//! reach, when the nodes have no connection to each other.
//!
//! ```text
//!  ccr/<index>/feed.json                  the publisher's: history and head
//!  ccr/<index>/leases/<follower>.json     a follower's: the points it reads
//! ```
//!
//! The feed holds what a long-poll read of `_ccr/changes` answers, and is
//! replaced after each checkpoint is committed, so a head it names is
//! always in the repository. A follower polls it (a small GET) every
//! [`poll_every_ms`] until its head differs from what it holds.
//!
//! Leases: a follower writes its lease object after each read (the head
//! it is about to apply and the checkpoint it holds), and the publisher,
//! before pruning, reads them as [`Lease`]s renewed at the object's
//! modification time: the object store's clock, never the follower's, so
//! two nodes' clocks never need to agree; only the store's and the
//! publisher's, at the scale of the lease period (12 hours by default).
//! An object whose time the store does not say counts as renewed now
//! (kept). Pruning is then `lease::prunable`, unchanged.
//!
//! The repository layer leaves `ccr/` alone (its cleanup deletes only the
//! objects it owns), so these objects live beside the snapshots.

use serde::{Deserialize, Serialize};

use crate::core::ccr::checkpoint::Point;
use crate::core::ccr::lease::Lease;
use crate::core::ccr::lineage::History;

/// Every object of following through a repository is under this prefix.
pub const PREFIX: &str = "ccr/";
const FEED: &str = "feed.json";

/// The feed object of `index`.
pub fn feed_key(index: &str) -> String {
    format!("{PREFIX}{index}/{FEED}")
}

/// Where `index`'s lease objects are.
pub fn lease_prefix(index: &str) -> String {
    format!("{PREFIX}{index}/leases/")
}

/// The lease object of `follower` (`<node id>:<follower index>`) on `index`.
pub fn lease_key(index: &str, follower: &str) -> String {
    format!("{}{follower}.json", lease_prefix(index))
}

/// The indices published in a repository, from the keys under [`PREFIX`].
pub fn published(keys: &[String]) -> Vec<String> {
    let mut out: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            k.strip_prefix(PREFIX)?
                .strip_suffix(FEED)?
                .strip_suffix('/')
        })
        .filter(|i| !i.is_empty() && !i.contains('/'))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A lease object's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseFile {
    pub follower: String,
    /// The checkpoints the follower reads: the head it is about to apply
    /// and the one its folder holds (its local-write check reads it).
    pub points: Vec<Point>,
}

impl LeaseFile {
    pub fn new(follower: &str, head: Option<&Point>, held: Option<&Point>) -> LeaseFile {
        let mut points: Vec<Point> = head.into_iter().chain(held).cloned().collect();
        points.dedup();
        LeaseFile {
            follower: follower.to_string(),
            points,
        }
    }
}

/// The leases of lease objects read with their modification times
/// (milliseconds, the store's clock), judged at `now_ms`.
pub fn leases_of(files: &[(LeaseFile, Option<i64>)], now_ms: i64) -> Vec<Lease> {
    files
        .iter()
        .flat_map(|(file, modified)| {
            file.points.iter().map(move |p| Lease {
                follower: file.follower.clone(),
                point: p.clone(),
                renewed_ms: modified.unwrap_or(now_ms),
            })
        })
        .collect()
}

/// Lease objects not renewed for `lease_ms` at `now_ms`, to delete: a
/// follower that went away stops holding anything.
pub fn expired_objects(
    objects: &[(String, Option<i64>)],
    now_ms: i64,
    lease_ms: i64,
) -> Vec<String> {
    objects
        .iter()
        .filter(|(_, m)| m.is_some_and(|m| now_ms >= m.saturating_add(lease_ms)))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Whether a publisher of an index with `history` may replace the feed
/// in place, whose newest checkpoint is `in_place`: only when that
/// checkpoint is part of its history (its own earlier feed, or the
/// leader's it was promoted from). A feed of another line is left alone
/// and the publisher reports it: another node's index of the same name,
/// or the feed of a follower promoted after a failover, which an old
/// leader that comes back must not overwrite (its followers would be
/// switched back to a diverged line). Checked before the publisher's
/// first checkpoint, so a refused one leaves nothing in the repository.
pub fn may_replace(history: &History, in_place: Option<&Point>) -> bool {
    in_place.is_none_or(|p| history.contains(p))
}

/// How often a follower looks at the feed while it waits: a tenth of its
/// `read_poll_timeout`, between 100 ms (the store's request rate) and 1 s
/// (the lag a waiting follower adds).
pub fn poll_every_ms(read_poll_timeout_ms: i64) -> i64 {
    (read_poll_timeout_ms / 10).clamp(100, 1_000)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::core::ccr::lease::{prunable, Retention};

    const A: &str = "aaaaaaaaaaaaaaaa";

    #[test]
    fn keys_name_the_index_and_list_back_to_it() {
        assert_eq!(feed_key("logs-1"), "ccr/logs-1/feed.json");
        assert_eq!(
            lease_key("logs-1", "n1:copy"),
            "ccr/logs-1/leases/n1:copy.json"
        );
        let keys = [
            feed_key("b"),
            feed_key("a"),
            lease_key("a", "n:x"),
            "ccr/feed.json".to_string(),
            "ccr/x/y/feed.json".to_string(),
            "snapshots/feed.json".to_string(),
        ];
        assert_eq!(published(&keys), ["a", "b"]);
    }

    #[test]
    fn lease_objects_keep_what_their_followers_read_until_they_expire() {
        let cps: Vec<Point> = (1..=6).map(|s| Point::new(A, s)).collect();
        let r = Retention {
            keep_last: 2,
            lease_ms: 1_000,
        };
        let slow = LeaseFile::new("n1:copy", Some(&cps[3]), Some(&cps[1]));
        let unknown_time = LeaseFile::new("n2:copy", Some(&cps[2]), Some(&cps[2]));
        assert_eq!(unknown_time.points.len(), 1);
        let files = vec![(slow, Some(100)), (unknown_time, None)];
        let seqs = |v: Vec<Point>| v.into_iter().map(|p| p.seq).collect::<Vec<_>>();
        // Both held: 2 and 4 by n1 (renewed at 100 on the store's clock), 3
        // by n2 (no time known: renewed now, whenever now is).
        let leases = leases_of(&files, 900);
        assert_eq!(seqs(prunable(&cps, A, &leases, 900, r)), [1]);
        let leases = leases_of(&files, 1_100);
        assert_eq!(seqs(prunable(&cps, A, &leases, 1_100, r)), [1, 2, 4]);
        let objects = vec![
            ("ccr/i/leases/n1:copy.json".to_string(), Some(100)),
            ("ccr/i/leases/n2:copy.json".to_string(), None),
        ];
        assert!(expired_objects(&objects, 1_099, 1_000).is_empty());
        assert_eq!(
            expired_objects(&objects, 1_100, 1_000),
            [objects[0].0.clone()]
        );
    }

    #[test]
    fn only_a_feed_of_the_publishers_own_history_is_replaced() {
        const B: &str = "bbbbbbbbbbbbbbbb";
        let ours = History::start(A).unwrap();
        // Its own earlier feed, or none.
        assert!(may_replace(&ours, Some(&Point::new(A, 3))));
        assert!(may_replace(&ours, None));
        // Another node's index of the same name.
        assert!(!may_replace(&ours, Some(&Point::new(B, 1))));
        // A follower promoted at A:4 publishes B:2: the old leader, back,
        // must not overwrite it; the promoted one may replace the old
        // leader's A:3, but not a feed the old leader wrote past the fork.
        let promoted = ours.fork(&Point::new(A, 4), B).unwrap();
        assert!(!may_replace(&ours, Some(&Point::new(B, 2))));
        assert!(may_replace(&promoted, Some(&Point::new(A, 3))));
        assert!(!may_replace(&promoted, Some(&Point::new(A, 6))));
    }

    #[test]
    fn the_feed_is_polled_a_tenth_of_the_wait_within_bounds() {
        assert_eq!(poll_every_ms(0), 100);
        assert_eq!(poll_every_ms(2_000), 200);
        assert_eq!(poll_every_ms(60_000), 1_000);
    }
}
