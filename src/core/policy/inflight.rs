//! In-flight markers: a running snapshot or delete announces itself with
//! `inflight/<uuid>.json` and refreshes it while it works. No operation ever
//! waits for a marker; markers only tell the reclaiming operations what to
//! leave alone:
//!
//! - cleanup keeps every unreferenced object newer than the oldest live
//!   marker (what a running snapshot or delete has uploaded but not yet
//!   committed), and everything the roots from the oldest live snapshot's
//!   base generation onwards reference (what it may deduplicate against);
//! - a delete leaves the packs it dropped to cleanup while a snapshot runs.
//!
//! A marker whose heartbeat is older than [`STALE_AFTER`] belongs to a
//! process that died: it is ignored, so a killed snapshot never blocks anyone
//! for long, and cleanup removes it once it is also older than its grace.
//! A live process that could not refresh its marker for half that time may
//! have looked dead to others: it refuses to commit ([`stalled_for`]).
//!
//! This module holds the values and the rules; `crate::repo::inflight`
//! writes, refreshes and reads the markers.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const PREFIX: &str = "inflight/";
/// How often a running operation refreshes its marker.
pub const HEARTBEAT: Duration = Duration::from_secs(60);
/// A marker not refreshed for this long is considered dead.
pub const STALE_AFTER: Duration = Duration::from_secs(10 * 60);

const STALE_MS: i64 = STALE_AFTER.as_millis() as i64;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activity {
    #[default]
    Snapshot,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub uuid: String,
    /// The snapshot being created, or the patterns being deleted.
    pub snapshot: String,
    pub started_ms: i64,
    pub heartbeat_ms: i64,
    #[serde(default)]
    pub activity: Activity,
    /// A root generation no newer than the one the operation works from:
    /// everything that root references may be reused.
    #[serde(default)]
    pub base_generation: u64,
}

impl Marker {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("markers serialize")
    }

    /// `None` for bytes that are not a marker (a torn or foreign object).
    pub fn decode(bytes: &[u8]) -> Option<Marker> {
        serde_json::from_slice(bytes).ok()
    }
}

/// The object key of the marker of operation `uuid`.
pub fn key(uuid: &str) -> String {
    format!("{PREFIX}{uuid}.json")
}

/// One stored marker as a listing and a read found it.
#[derive(Debug, Clone)]
pub struct Found {
    pub key: String,
    /// The object's modification time, when the storage reports one.
    pub modified_ms: Option<i64>,
    /// The decoded marker; `None` if it could not be read or decoded.
    pub marker: Option<Marker>,
}

/// The markers in a repository, split by liveness.
#[derive(Debug, Default)]
pub struct Markers {
    pub live: Vec<Marker>,
    /// Keys of markers whose heartbeat is older than [`STALE_AFTER`] (or
    /// that cannot be read), with their last sign of life.
    pub stale: Vec<(String, i64)>,
}

impl Markers {
    /// Sorts what a scan found into live and stale as of `now_ms`. A marker's
    /// last sign of life is the later of its heartbeat and its object's
    /// modification time; an unreadable marker is judged by its age alone
    /// and ignored while young (it may be mid-write).
    pub fn sort(found: Vec<Found>, now_ms: i64) -> Markers {
        let mut out = Markers::default();
        for f in found {
            let modified = f.modified_ms.unwrap_or(i64::MIN);
            match f.marker {
                Some(m) => {
                    let seen = m.heartbeat_ms.max(modified);
                    if now_ms.saturating_sub(seen) < STALE_MS {
                        out.live.push(m);
                    } else {
                        out.stale.push((f.key, seen));
                    }
                }
                None if now_ms.saturating_sub(modified) < STALE_MS => {}
                None => out.stale.push((f.key, modified)),
            }
        }
        out
    }

    /// Start time of the oldest live operation.
    pub fn oldest_start(&self) -> Option<i64> {
        self.live.iter().map(|m| m.started_ms).min()
    }

    /// Whether a snapshot other than `except` is running.
    pub fn snapshot_running(&self, except: Option<&str>) -> bool {
        self.live
            .iter()
            .any(|m| m.activity == Activity::Snapshot && Some(m.uuid.as_str()) != except)
    }

    /// The live snapshot of the same name that came first, if another
    /// writer is creating `name` too (the one with the smaller start time,
    /// then uuid, goes on). Two writers that see each other's markers pick
    /// the same one; one that started before the other's marker existed is
    /// the one that goes on. The root commit refuses a duplicate anyway;
    /// this makes the later one fail at once rather than after uploading.
    pub fn creating_first(&self, name: &str, uuid: &str, started_ms: i64) -> Option<&Marker> {
        self.live.iter().find(|m| {
            m.activity == Activity::Snapshot
                && m.snapshot == name
                && m.uuid != uuid
                && (m.started_ms, m.uuid.as_str()) < (started_ms, uuid)
        })
    }

    /// The live snapshots that are not in `stored`, oldest first: what a
    /// listing shows as IN_PROGRESS.
    pub fn running_snapshots<'a>(&'a self, stored: &dyn Fn(&str) -> bool) -> Vec<&'a Marker> {
        let mut out: Vec<&Marker> = self
            .live
            .iter()
            .filter(|m| m.activity == Activity::Snapshot && !stored(&m.snapshot))
            .collect();
        out.sort_by(|a, b| (a.started_ms, &a.uuid).cmp(&(b.started_ms, &b.uuid)));
        out
    }

    /// The oldest root generation a running snapshot may reuse data from.
    pub fn oldest_snapshot_base(&self) -> Option<u64> {
        self.live
            .iter()
            .filter(|m| m.activity == Activity::Snapshot)
            .map(|m| m.base_generation)
            .min()
    }
}

/// How long, in whole seconds, an operation whose marker was last written
/// at `last_beat_ms` has been silent, if that is long enough (half of
/// [`STALE_AFTER`]) that others may have taken it for dead: it must not
/// commit, since data it relies on may have been reclaimed.
pub fn stalled_for(last_beat_ms: i64, now_ms: i64) -> Option<u64> {
    let silent_ms = now_ms.saturating_sub(last_beat_ms);
    (silent_ms > STALE_MS / 2).then_some((silent_ms / 1000) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const MIN: i64 = 60_000;

    fn marker(uuid: &str, activity: Activity, started: i64, beat: i64, base: u64) -> Marker {
        Marker {
            uuid: uuid.into(),
            snapshot: format!("snap-{uuid}"),
            started_ms: started,
            heartbeat_ms: beat,
            activity,
            base_generation: base,
        }
    }

    fn found(m: Option<Marker>, modified: Option<i64>) -> Found {
        Found {
            key: key(m.as_ref().map_or("torn", |m| m.uuid.as_str())),
            modified_ms: modified,
            marker: m,
        }
    }

    #[test]
    fn of_two_writers_creating_one_name_the_first_goes_on() {
        let mut a = marker("a", Activity::Snapshot, 10, 10, 0);
        let mut b = marker("b", Activity::Snapshot, 20, 20, 0);
        a.snapshot = "nightly".into();
        b.snapshot = "nightly".into();
        let other = marker("c", Activity::Snapshot, 5, 5, 0);
        let delete = Marker {
            snapshot: "nightly".into(),
            ..marker("d", Activity::Delete, 1, 1, 0)
        };
        let both = Markers {
            live: vec![a.clone(), b.clone(), other, delete],
            stale: vec![],
        };
        assert!(both.creating_first("nightly", "a", 10).is_none());
        assert_eq!(both.creating_first("nightly", "b", 20).unwrap().uuid, "a");
        // Equal start times: the uuid decides, the same way for both.
        b.started_ms = 10;
        let tie = Markers {
            live: vec![a, b],
            stale: vec![],
        };
        assert!(tie.creating_first("nightly", "a", 10).is_none());
        assert_eq!(tie.creating_first("nightly", "b", 10).unwrap().uuid, "a");
        let running = tie.running_snapshots(&|n| n == "snap-x");
        assert_eq!(running.len(), 2);
        assert!(tie.running_snapshots(&|n| n == "nightly").is_empty());
    }

    #[test]
    fn a_marker_is_live_until_ten_minutes_without_a_heartbeat() {
        let now = 100 * MIN;
        let markers = Markers::sort(
            vec![
                found(
                    Some(marker("a", Activity::Snapshot, 0, now - 9 * MIN, 1)),
                    None,
                ),
                found(
                    Some(marker("b", Activity::Snapshot, 0, now - 10 * MIN, 1)),
                    None,
                ),
            ],
            now,
        );
        assert_eq!(markers.live.len(), 1);
        assert_eq!(markers.live[0].uuid, "a");
        assert_eq!(markers.stale, vec![(key("b"), now - 10 * MIN)]);
    }

    #[test]
    fn a_newer_object_time_counts_as_a_sign_of_life() {
        let now = 100 * MIN;
        let m = marker("a", Activity::Delete, 0, now - 30 * MIN, 0);
        let markers = Markers::sort(vec![found(Some(m), Some(now - MIN))], now);
        assert_eq!(markers.live.len(), 1);
    }

    #[test]
    fn an_unreadable_marker_is_ignored_while_young_and_stale_when_old() {
        let now = 100 * MIN;
        let young = Markers::sort(vec![found(None, Some(now - MIN))], now);
        assert!(young.live.is_empty() && young.stale.is_empty());
        let old = Markers::sort(vec![found(None, Some(now - 11 * MIN))], now);
        assert_eq!(old.stale, vec![(key("torn"), now - 11 * MIN)]);
        let undated = Markers::sort(vec![found(None, None)], now);
        assert_eq!(undated.stale.len(), 1);
    }

    #[test]
    fn oldest_start_and_base_consider_only_live_markers_and_snapshots_for_the_base() {
        let now = 100 * MIN;
        let markers = Markers::sort(
            vec![
                found(
                    Some(marker("s1", Activity::Snapshot, 50 * MIN, now, 7)),
                    None,
                ),
                found(
                    Some(marker("s2", Activity::Snapshot, 60 * MIN, now, 5)),
                    None,
                ),
                found(Some(marker("d", Activity::Delete, 40 * MIN, now, 2)), None),
                found(Some(marker("dead", Activity::Snapshot, MIN, MIN, 1)), None),
            ],
            now,
        );
        assert_eq!(markers.oldest_start(), Some(40 * MIN));
        assert_eq!(markers.oldest_snapshot_base(), Some(5));
        assert!(markers.snapshot_running(None));
        assert!(markers.snapshot_running(Some("s1")));
        let only_one = Markers::sort(
            vec![found(
                Some(marker("s1", Activity::Snapshot, 0, now, 7)),
                None,
            )],
            now,
        );
        assert!(!only_one.snapshot_running(Some("s1")));
    }

    #[test]
    fn an_operation_silent_for_half_the_stale_time_must_not_commit() {
        assert_eq!(stalled_for(0, 5 * MIN), None);
        assert_eq!(stalled_for(0, 5 * MIN + 1000), Some(301));
        assert_eq!(
            stalled_for(i64::MIN, i64::MAX),
            Some((i64::MAX / 1000) as u64)
        );
    }

    #[test]
    fn markers_round_trip_and_old_markers_without_new_fields_decode() {
        let m = marker("a", Activity::Delete, 1, 2, 3);
        assert_eq!(Marker::decode(&m.encode()), Some(m));
        let old = br#"{"uuid":"u","snapshot":"s","started_ms":1,"heartbeat_ms":2}"#;
        let decoded = Marker::decode(old).unwrap();
        assert_eq!(decoded.activity, Activity::Snapshot);
        assert_eq!(decoded.base_generation, 0);
        assert_eq!(Marker::decode(b"{torn"), None);
    }
}
