//! Per-policy health: a policy with `unhealthy_if_no_snapshot_within` is
//! unhealthy when its newest SUCCESS snapshot ended longer ago than that,
//! or, having none, when the policy itself (its last put) is older than
//! that. A function of the repository's snapshots, the policy and a clock
//! reading, so the edge watchdog and a node answer alike.
//!
//! A SUCCESS snapshot dated in the future (starting more than
//! [`FUTURE_TOLERANCE_MS`] after the clock: a wrong clock once, or a
//! planted snapshot) never counts as the last success; it is reported
//! instead. Otherwise one far-future snapshot would keep a policy that no
//! longer runs green forever.
//!
//! The words are Elasticsearch's health report's: a repository, and the
//! whole report, is `green` when every checked policy is healthy and
//! `yellow` otherwise.

use serde::Serialize;

use crate::core::es::units::time_value;
use crate::core::slm::retention::{Candidate, Outcome, FUTURE_TOLERANCE_MS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Green,
    Yellow,
}

impl Status {
    /// The worse of the statuses (`green` when there are none).
    pub fn worst(all: impl IntoIterator<Item = Status>) -> Status {
        all.into_iter().max().unwrap_or(Status::Green)
    }
}

/// The snapshot a policy last succeeded with, as `GET /_slm/policy` names
/// its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastSuccess {
    pub snapshot_name: String,
    pub start_time: i64,
    /// When it ended: what the threshold is measured from.
    pub time: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyHealth {
    pub policy: String,
    /// False when the policy sets no threshold: it is then never unhealthy.
    pub checked: bool,
    pub healthy: bool,
    pub status: Status,
    /// `unhealthy_if_no_snapshot_within` as the policy shows it (`2d`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unhealthy_if_no_snapshot_within: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unhealthy_if_no_snapshot_within_millis: Option<i64>,
    pub last_success: Option<LastSuccess>,
    /// Why, in words an operator reads.
    pub reason: String,
    /// The policy's SUCCESS snapshots that are dated in the future, which
    /// were not taken as its last success.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub future_dated: Vec<String>,
}

/// The policy as health needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watched<'a> {
    pub id: &'a str,
    pub threshold_ms: Option<i64>,
    /// When the policy was last put (its record's `modified_date_millis`).
    pub modified_ms: i64,
}

/// The health of `policy` over the repository's `snapshots` at `now_ms`.
pub fn policy_health(policy: Watched<'_>, snapshots: &[Candidate], now_ms: i64) -> PolicyHealth {
    let successes = snapshots
        .iter()
        .filter(|s| s.policy.as_deref() == Some(policy.id) && s.outcome == Outcome::Success);
    let (future, present): (Vec<&Candidate>, Vec<&Candidate>) =
        successes.partition(|s| s.start_ms > now_ms.saturating_add(FUTURE_TOLERANCE_MS));
    let last = present
        .into_iter()
        .max_by(|a, b| (a.end_ms, &a.name).cmp(&(b.end_ms, &b.name)))
        .map(|s| LastSuccess {
            snapshot_name: s.name.clone(),
            start_time: s.start_ms,
            time: s.end_ms,
        });
    let mut future_dated: Vec<String> = future.iter().map(|s| s.name.clone()).collect();
    future_dated.sort();
    let (healthy, reason) = judge(policy, last.as_ref(), now_ms);
    PolicyHealth {
        policy: policy.id.to_string(),
        checked: policy.threshold_ms.is_some(),
        healthy,
        status: if healthy {
            Status::Green
        } else {
            Status::Yellow
        },
        unhealthy_if_no_snapshot_within: policy.threshold_ms.map(time_value),
        unhealthy_if_no_snapshot_within_millis: policy.threshold_ms,
        last_success: last,
        reason,
        future_dated,
    }
}

/// The one health rule, used by the node (over its run records) and the
/// edge watchdog (over the repository's snapshots): healthy, and why.
/// The threshold counts from the last success's end; a policy that never
/// succeeded counts from its last put, so a new policy has its chance.
pub fn judge(policy: Watched<'_>, last: Option<&LastSuccess>, now_ms: i64) -> (bool, String) {
    let ago = |t: i64| time_value(now_ms.saturating_sub(t).max(0));
    let Some(threshold) = policy.threshold_ms else {
        return (
            true,
            "not checked: the policy sets no unhealthy_if_no_snapshot_within".into(),
        );
    };
    let within = time_value(threshold);
    match last {
        Some(s) if now_ms.saturating_sub(s.time) > threshold => (
            false,
            format!(
                "no SUCCESS snapshot within {within}: the last, [{}], ended {} ago",
                s.snapshot_name,
                ago(s.time)
            ),
        ),
        Some(s) => (
            true,
            format!(
                "the last SUCCESS snapshot, [{}], ended {} ago (within {within})",
                s.snapshot_name,
                ago(s.time)
            ),
        ),
        None if now_ms.saturating_sub(policy.modified_ms) > threshold => (
            false,
            format!(
                "no SUCCESS snapshot yet, and the policy was put {} ago (more than {within})",
                ago(policy.modified_ms)
            ),
        ),
        None => (
            true,
            format!(
                "no SUCCESS snapshot yet; the policy was put {} ago (within {within})",
                ago(policy.modified_ms)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    /// 2026-01-01T00:00:00Z.
    const T0: i64 = 1_767_225_600_000;

    fn snap(name: &str, policy: &str, start_ms: i64, outcome: Outcome) -> Candidate {
        Candidate {
            name: name.into(),
            policy: Some(policy.into()),
            outcome,
            start_ms,
            end_ms: start_ms + 10 * 60_000,
            pinned: None,
        }
    }

    fn nightly(threshold_ms: Option<i64>) -> Watched<'static> {
        Watched {
            id: "nightly",
            threshold_ms,
            modified_ms: T0 - 30 * DAY,
        }
    }

    #[test]
    fn a_recent_success_is_healthy_and_an_old_one_is_not() {
        let history = vec![
            snap("n-1", "nightly", T0, Outcome::Success),
            snap("n-2", "nightly", T0 + DAY, Outcome::Success),
        ];
        // n-2 ended at T0 + 1d + 10m.
        let fine = policy_health(nightly(Some(2 * DAY)), &history, T0 + 2 * DAY);
        assert!(fine.healthy, "{fine:?}");
        assert_eq!(fine.status, Status::Green);
        let last = fine.last_success.as_ref().unwrap();
        assert_eq!(last.snapshot_name, "n-2");
        assert_eq!(last.time, T0 + DAY + 600_000);
        assert_eq!(fine.unhealthy_if_no_snapshot_within.as_deref(), Some("2d"));

        // Exactly at the threshold it is still healthy; one millisecond
        // past, not.
        let edge = T0 + 3 * DAY + 600_000;
        assert!(policy_health(nightly(Some(2 * DAY)), &history, edge).healthy);
        let late = policy_health(nightly(Some(2 * DAY)), &history, edge + 1);
        assert!(!late.healthy);
        assert_eq!(late.status, Status::Yellow);
        assert!(late.reason.contains("[n-2]"), "{}", late.reason);
        assert!(late.reason.contains("within 2d"), "{}", late.reason);
    }

    #[test]
    fn failures_partials_and_other_policies_do_not_count_as_success() {
        let history = vec![
            snap("old", "nightly", T0 - 10 * DAY, Outcome::Success),
            snap("failed", "nightly", T0, Outcome::Failed),
            snap("partial", "nightly", T0, Outcome::Partial),
            snap("other", "hourly", T0, Outcome::Success),
            Candidate {
                policy: None,
                ..snap("manual", "", T0, Outcome::Success)
            },
        ];
        let h = policy_health(nightly(Some(DAY)), &history, T0 + HOUR);
        assert!(!h.healthy, "{h:?}");
        assert_eq!(h.last_success.unwrap().snapshot_name, "old");
    }

    #[test]
    fn with_no_success_the_policys_own_age_decides() {
        let young = Watched {
            id: "nightly",
            threshold_ms: Some(DAY),
            modified_ms: T0,
        };
        let h = policy_health(young, &[], T0 + 2 * HOUR);
        assert!(h.healthy, "{h:?}");
        assert!(h.last_success.is_none());
        assert!(
            h.reason.starts_with("no SUCCESS snapshot yet"),
            "{}",
            h.reason
        );
        let h = policy_health(young, &[], T0 + DAY + 1);
        assert!(!h.healthy);
        assert!(h.reason.contains("more than 1d"), "{}", h.reason);
    }

    #[test]
    fn a_policy_without_a_threshold_is_never_unhealthy() {
        let h = policy_health(nightly(None), &[], T0 + 400 * DAY);
        assert!(h.healthy && !h.checked);
        assert_eq!(h.unhealthy_if_no_snapshot_within, None);
        let json = serde_json::to_value(&h).unwrap();
        assert!(json.get("unhealthy_if_no_snapshot_within").is_none());
        assert_eq!(json["status"], "green");
    }

    #[test]
    fn a_success_dated_in_the_future_is_reported_and_not_taken_as_the_last() {
        let history = vec![
            snap("real", "nightly", T0 - 5 * DAY, Outcome::Success),
            snap(
                "planted-2099",
                "nightly",
                4_070_908_800_000,
                Outcome::Success,
            ),
            // A little ahead of the clock is within tolerance: counted.
            snap("skewed", "other", T0 + 60_000, Outcome::Success),
        ];
        let h = policy_health(nightly(Some(DAY)), &history, T0);
        assert!(!h.healthy, "{h:?}");
        assert_eq!(h.last_success.as_ref().unwrap().snapshot_name, "real");
        assert_eq!(h.future_dated, ["planted-2099"]);
        let other = Watched {
            id: "other",
            threshold_ms: Some(HOUR),
            modified_ms: T0 - DAY,
        };
        let h = policy_health(other, &history, T0);
        assert!(h.healthy && h.future_dated.is_empty(), "{h:?}");
    }

    #[test]
    fn the_worst_status_wins() {
        assert_eq!(Status::worst([]), Status::Green);
        assert_eq!(Status::worst([Status::Green, Status::Green]), Status::Green);
        assert_eq!(
            Status::worst([Status::Green, Status::Yellow]),
            Status::Yellow
        );
        let json = serde_json::to_value(policy_health(
            nightly(Some(HOUR)),
            &[snap("n", "nightly", T0, Outcome::Success)],
            T0 + DAY,
        ))
        .unwrap();
        assert_eq!(json["status"], "yellow");
        assert_eq!(json["healthy"], false);
        assert_eq!(json["unhealthy_if_no_snapshot_within_millis"], HOUR);
        assert_eq!(json["last_success"]["snapshot_name"], "n");
        assert_eq!(json["last_success"]["start_time"], T0);
    }
}
