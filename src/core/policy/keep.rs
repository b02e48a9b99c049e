//! Cleanup's keep rule: which objects a cleanup leaves alone although the
//! newest root no longer references them, as a function of the times and
//! generations the shell read (its clock, the listing, the in-flight
//! markers). Kept:
//! - objects modified after `now - grace`, or after the start of the oldest
//!   live snapshot or delete: they may be uploads not yet committed;
//! - what the roots from the oldest running snapshot's base generation
//!   onwards reference ([`protected_from`]): that snapshot may deduplicate
//!   against it, even if a delete has since dropped it from the newest root;
//! - the last few root generations, and any younger than [`ROOT_MIN_AGE`]
//!   or the grace period (a writer that read a root a moment ago commits
//!   the next generation, and that key must never have existed);
//! - everything written after the newest root (a lost root's snapshot, or
//!   a commit on its way).
//!
//! Markers of dead processes go once their last sign of life is older than
//! the grace period, and a killed writer's leftovers once older than the
//! grace period and [`TEMP_MIN_AGE`].

use std::time::Duration;

/// Root generations kept besides the newest (readers that started from an
/// older hint can still finish).
pub const KEEP_OLD_ROOTS: u64 = 2;
/// Root generations younger than this are kept whatever the grace period:
/// a writer that read the newest root commits the next generation with a
/// create-only put, and that key must not be a removed one (the put would
/// succeed unseen, above a hole).
pub const ROOT_MIN_AGE: Duration = Duration::from_secs(15 * 60);
/// A local writer's temporary file this old is abandoned: a live one is
/// being written (its mtime moves) or renamed within moments.
pub const TEMP_MIN_AGE: Duration = Duration::from_secs(10 * 60);
/// Unreferenced objects younger than this are kept by default: they may be
/// parts of a snapshot that has not committed yet.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60 * 60);
/// How long before the oldest live operation's start objects are still
/// kept: its clock and the store's may disagree a little.
const LIVE_START_MARGIN_MS: i64 = 60_000;

/// The oldest root generation whose references cleanup keeps: the base of
/// the oldest running snapshot, never newer than the newest root.
pub fn protected_from(oldest_snapshot_base: Option<u64>, latest_generation: u64) -> u64 {
    oldest_snapshot_base
        .unwrap_or(latest_generation)
        .min(latest_generation)
}

/// What one cleanup run knows, times in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepRule {
    /// When the cleanup started.
    pub now_ms: i64,
    pub grace: Duration,
    /// Start of the oldest live snapshot or delete, if one runs.
    pub oldest_live_start_ms: Option<i64>,
    /// The newest root generation.
    pub latest_generation: u64,
    /// From [`protected_from`].
    pub protect_from: u64,
    /// When the newest root was written, if the listing says.
    pub newest_root_ms: Option<i64>,
}

/// Why cleanup keeps an object the newest root does not reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepReason {
    /// Written after the newest root (or in its millisecond): a lost
    /// root's, or a commit's on its way.
    AfterNewestRoot,
    /// A root generation younger than [`ROOT_MIN_AGE`] and the grace period.
    RecentRoot,
    /// Younger than the grace period.
    Grace,
    /// Older than the grace period but written since the oldest live
    /// snapshot or delete started (its in-flight marker): it may be one of
    /// its uploads.
    LiveOperation,
}

/// An object the newest root does not reference, as the listing shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreferenced {
    pub modified_ms: Option<i64>,
    /// It is a root generation.
    pub is_root: bool,
    /// It is the marker of a dead process whose last sign of life is past
    /// the grace period ([`KeepRule::marker_expired`]).
    pub expired_marker: bool,
}

impl KeepRule {
    /// Whether root generation `n` still counts as referenced.
    pub fn keeps_root_generation(&self, n: u64) -> bool {
        n + KEEP_OLD_ROOTS >= self.latest_generation || n >= self.protect_from
    }

    /// Whether a dead process's marker, last alive at `last_beat_ms`, may go.
    pub fn marker_expired(&self, last_beat_ms: i64) -> bool {
        last_beat_ms < self.grace_start()
    }

    /// Leftovers of killed writers last modified before this may go.
    pub fn leftovers_before(&self) -> i64 {
        self.now_ms - self.grace.max(TEMP_MIN_AGE).as_millis() as i64
    }

    /// Whether cleanup keeps an unreferenced object.
    pub fn keeps(&self, object: &Unreferenced) -> bool {
        self.keep_reason(object).is_some()
    }

    /// Why cleanup keeps an unreferenced object, or `None` if it may go.
    pub fn keep_reason(&self, object: &Unreferenced) -> Option<KeepReason> {
        let modified = object.modified_ms.map(latest_possible);
        // Nothing written after the newest root is garbage of a generation
        // cleanup knows: it may belong to a newer root that was lost, or to
        // a commit still on its way. Within the root's own millisecond the
        // order is unknown (file systems stamp times from a coarse clock),
        // so that counts as after.
        if self
            .newest_root_ms
            .is_some_and(|r| modified.is_none_or(|m| m >= r))
        {
            return Some(KeepReason::AfterNewestRoot);
        }
        if object.is_root && modified.is_none_or(|m| m >= self.young_root_since()) {
            return Some(KeepReason::RecentRoot);
        }
        if object.expired_marker {
            return None;
        }
        let Some(m) = modified else {
            return (!self.grace.is_zero()).then_some(KeepReason::Grace);
        };
        if m >= self.grace_start() {
            return Some(KeepReason::Grace);
        }
        let live = self
            .oldest_live_start_ms
            .is_some_and(|start| m >= start - LIVE_START_MARGIN_MS);
        live.then_some(KeepReason::LiveOperation)
    }

    fn grace_start(&self) -> i64 {
        self.now_ms - self.grace.as_millis() as i64
    }

    fn young_root_since(&self) -> i64 {
        self.now_ms - self.grace.max(ROOT_MIN_AGE).as_millis() as i64
    }
}

/// The latest time an object with this modification time can have been
/// written. S3 and Azure list times in whole seconds, truncated: an object
/// written at 12:00:00.900 lists as 12:00:00, and would look older than a
/// cleanup that started at 12:00:00.700 and must not touch it.
fn latest_possible(modified_ms: i64) -> i64 {
    if modified_ms.rem_euclid(1000) == 0 {
        modified_ms + 999
    } else {
        modified_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const MIN: i64 = 60_000;
    const NOW: i64 = 1_700_000_000_123;

    fn rule(grace_min: u64) -> KeepRule {
        KeepRule {
            now_ms: NOW,
            grace: Duration::from_secs(grace_min * 60),
            oldest_live_start_ms: None,
            latest_generation: 10,
            protect_from: 10,
            newest_root_ms: None,
        }
    }

    fn object(modified_ms: Option<i64>) -> Unreferenced {
        Unreferenced {
            modified_ms,
            is_root: false,
            expired_marker: false,
        }
    }

    /// Cleanup names the rule that keeps an object, so an operator can
    /// tell a live marker from the grace period.
    #[test]
    fn the_reason_names_the_rule_that_keeps_an_object() {
        let r = KeepRule {
            oldest_live_start_ms: Some(NOW - 120 * MIN),
            ..rule(60)
        };
        assert_eq!(
            r.keep_reason(&object(Some(NOW - 10 * MIN))),
            Some(KeepReason::Grace)
        );
        assert_eq!(
            r.keep_reason(&object(Some(NOW - 90 * MIN))),
            Some(KeepReason::LiveOperation)
        );
        assert_eq!(r.keep_reason(&object(Some(NOW - 200 * MIN))), None);
        assert_eq!(rule(60).keep_reason(&object(Some(NOW - 90 * MIN))), None);
        let after_root = KeepRule {
            newest_root_ms: Some(NOW - 300 * MIN),
            ..r
        };
        assert_eq!(
            after_root.keep_reason(&object(Some(NOW - 200 * MIN))),
            Some(KeepReason::AfterNewestRoot)
        );
        let root = Unreferenced {
            is_root: true,
            ..object(Some(NOW - 5 * MIN))
        };
        assert_eq!(rule(0).keep_reason(&root), Some(KeepReason::RecentRoot));
    }

    #[test]
    fn the_oldest_running_snapshot_protects_from_its_base() {
        assert_eq!(protected_from(None, 7), 7);
        assert_eq!(protected_from(Some(3), 7), 3);
        assert_eq!(protected_from(Some(9), 7), 7);
        let r = KeepRule {
            protect_from: 4,
            ..rule(60)
        };
        assert!([4, 5, 7, 8, 9, 10]
            .iter()
            .all(|&n| r.keeps_root_generation(n)));
        assert!(!r.keeps_root_generation(3));
        // Without a running snapshot, the newest and the two before it.
        assert!(rule(60).keeps_root_generation(8));
        assert!(!rule(60).keeps_root_generation(7));
    }

    #[test]
    fn objects_younger_than_the_grace_period_are_kept() {
        let r = rule(60);
        assert!(r.keeps(&object(Some(NOW - 59 * MIN))));
        assert!(!r.keeps(&object(Some(NOW - 61 * MIN))));
        // An unknown age is young, unless there is no grace at all.
        assert!(r.keeps(&object(None)));
        assert!(!rule(0).keeps(&object(None)));
    }

    #[test]
    fn objects_younger_than_the_oldest_live_operation_are_kept() {
        let r = KeepRule {
            oldest_live_start_ms: Some(NOW - 120 * MIN),
            ..rule(60)
        };
        assert!(r.keeps(&object(Some(NOW - 90 * MIN))));
        assert!(r.keeps(&object(Some(NOW - 120 * MIN - 30_000))));
        assert!(!r.keeps(&object(Some(NOW - 122 * MIN))));
        // A live operation that started recently moves nothing.
        let r = KeepRule {
            oldest_live_start_ms: Some(NOW - MIN),
            ..rule(60)
        };
        assert!(!r.keeps(&object(Some(NOW - 61 * MIN))));
    }

    #[test]
    fn anything_written_after_the_newest_root_is_kept() {
        let r = KeepRule {
            newest_root_ms: Some(NOW - 300 * MIN),
            ..rule(0)
        };
        assert!(r.keeps(&object(Some(NOW - 299 * MIN))));
        // The root's own millisecond: its order is unknown.
        assert!(r.keeps(&object(Some(NOW - 300 * MIN + 1))));
        assert!(r.keeps(&object(Some(NOW - 300 * MIN))));
        assert!(!r.keeps(&object(Some(NOW - 300 * MIN - 1))));
        assert!(r.keeps(&object(None)));
        assert!(!r.keeps(&object(Some(NOW - 301 * MIN))));
    }

    #[test]
    fn root_generations_are_kept_for_a_minimum_age() {
        let root = |m| Unreferenced {
            is_root: true,
            ..object(m)
        };
        let r = rule(0);
        assert!(r.keeps(&root(Some(NOW - 14 * MIN))));
        assert!(r.keeps(&root(None)));
        assert!(!r.keeps(&root(Some(NOW - 16 * MIN))));
        // A longer grace period keeps them longer.
        assert!(rule(60).keeps(&root(Some(NOW - 59 * MIN))));
    }

    #[test]
    fn expired_markers_go_whatever_their_age() {
        let r = rule(60);
        assert!(r.marker_expired(NOW - 61 * MIN));
        assert!(!r.marker_expired(NOW - 59 * MIN));
        let marker = Unreferenced {
            expired_marker: true,
            ..object(Some(NOW - MIN))
        };
        assert!(!r.keeps(&marker));
    }

    #[test]
    fn leftovers_wait_for_the_longer_of_grace_and_their_minimum_age() {
        assert_eq!(rule(0).leftovers_before(), NOW - 10 * MIN);
        assert_eq!(rule(60).leftovers_before(), NOW - 60 * MIN);
    }

    #[test]
    fn whole_second_times_are_read_as_the_end_of_their_second() {
        assert_eq!(latest_possible(5_000), 5_999);
        assert_eq!(latest_possible(5_321), 5_321);
        assert_eq!(latest_possible(-1_000), -1);
        // An object listed at the whole second a zero-grace cleanup started
        // may have been written after it.
        let r = KeepRule {
            now_ms: 7_000_500,
            ..rule(0)
        };
        assert!(r.keeps(&object(Some(7_000_000))));
        assert!(!r.keeps(&object(Some(6_999_000))));
    }
}
