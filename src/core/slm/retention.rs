//! Retention: which of a policy's snapshots to keep and which to delete,
//! each with its reason, as a function of the listing, the policy's rules
//! and a clock reading.
//!
//! Designed against the failures users meet elsewhere:
//! - only the policy's own snapshots are ever considered;
//! - the newest SUCCESS snapshot of the policy is never deleted, nor a
//!   pinned one (a mount or a follower reads it);
//! - a snapshot that starts more than [`FUTURE_TOLERANCE_MS`] after the
//!   clock is dated in the future (a wrong clock once, or a planted one):
//!   it is kept and reported, but never chosen for a bucket, counted or
//!   taken as the newest, so it cannot make retention delete the real
//!   ones (restic's failure). A clock far behind thus keeps more, never
//!   less;
//! - "now" is the later of the clock and the newest complete snapshot's
//!   end (within that tolerance a snapshot may end after the clock).
//!
//! Rules, first match wins: pinned, dated in the future, newest SUCCESS,
//! `min_count` newest complete ones → keep; beyond `max_count` → delete;
//! the newest of each of the `keep_hourly…keep_yearly` newest periods (in
//! the policy's time zone) → keep; `expire_after` → delete if older, keep
//! if younger; with keep buckets set, anything else → delete; otherwise
//! keep. A FAILED snapshot is deleted once a newer snapshot completed.

use std::collections::{BTreeMap, BTreeSet};

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::core::es::units::time_value;

/// How far past the clock a snapshot may start before it counts as dated
/// in the future (nodes' clocks disagree a little).
pub const FUTURE_TOLERANCE_MS: i64 = 5 * 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Partial,
    Failed,
    InProgress,
}

/// One snapshot of the repository, as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    /// The policy that made it (`metadata.policy`), if any.
    pub policy: Option<String>,
    pub outcome: Outcome,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Why something else needs it (`mounted`, `followed by x`), if it does.
    pub pinned: Option<String>,
}

/// A policy's `retention` with snapkeep's keep buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    pub expire_after_ms: Option<i64>,
    pub min_count: Option<u32>,
    pub max_count: Option<u32>,
    pub keep_hourly: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    pub keep_yearly: u32,
}

impl Retention {
    fn has_buckets(&self) -> bool {
        self.buckets().iter().any(|(_, n)| *n > 0)
    }

    fn buckets(&self) -> [(Period, u32); 5] {
        [
            (Period::Hour, self.keep_hourly),
            (Period::Day, self.keep_daily),
            (Period::Week, self.keep_weekly),
            (Period::Month, self.keep_monthly),
            (Period::Year, self.keep_yearly),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub name: String,
    pub keep: bool,
    /// Why, in words an operator reads (`daily-3`, `expired after 30d`).
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The instant the plan measured ages from.
    pub now_ms: i64,
    /// The policy's snapshots, newest first.
    pub decisions: Vec<Decision>,
    /// Names dated in the future (kept), to report.
    pub future_dated: Vec<String>,
}

impl Plan {
    pub fn deletions(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| !d.keep)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    fn label(self) -> &'static str {
        match self {
            Period::Hour => "hourly",
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
            Period::Year => "yearly",
        }
    }

    /// The period holding `ms` in `tz`, as a comparable key.
    fn key(self, tz: &TimeZone, ms: i64) -> (i16, i16, i16, i8) {
        let Ok(t) = Timestamp::from_millisecond(ms) else {
            return (i16::MIN, 0, 0, 0);
        };
        let d = tz.to_datetime(t);
        let (y, m, day, h) = (d.year(), d.month().into(), d.day().into(), d.hour());
        match self {
            Period::Hour => (y, m, day, h),
            Period::Day => (y, m, day, 0),
            Period::Week => {
                let w = d.date().iso_week_date();
                (w.year(), w.week().into(), 0, 0)
            }
            Period::Month => (y, m, 0, 0),
            Period::Year => (y, 0, 0, 0),
        }
    }
}

/// The plan for `policy` over `snapshots`, with `clock_ms` the caller's
/// clock reading.
pub fn retention_plan(
    snapshots: &[Candidate],
    policy: &str,
    rules: &Retention,
    tz: &TimeZone,
    clock_ms: i64,
) -> Plan {
    let mut own: Vec<&Candidate> = snapshots
        .iter()
        .filter(|s| s.policy.as_deref() == Some(policy))
        .collect();
    own.sort_by(|a, b| (b.start_ms, &b.name).cmp(&(a.start_ms, &a.name)));
    let future = |s: &Candidate| s.start_ms > clock_ms + FUTURE_TOLERANCE_MS;
    let complete =
        |s: &Candidate| matches!(s.outcome, Outcome::Success | Outcome::Partial) && !future(s);
    let now_ms = own
        .iter()
        .filter(|s| complete(s))
        .map(|s| s.end_ms)
        .fold(clock_ms, i64::max);
    let newest_success = own
        .iter()
        .find(|s| s.outcome == Outcome::Success && !future(s))
        .map(|s| s.name.as_str());
    let newest_complete_start = own.iter().find(|s| complete(s)).map(|s| s.start_ms);
    let bucketed = bucket_choices(&own, rules, tz, &complete);
    let mut rank = 0u32;
    let mut decisions = Vec::with_capacity(own.len());
    let mut future_dated = Vec::new();
    for s in own {
        let (keep, reason) = if let Some(pin) = &s.pinned {
            (true, format!("pinned: {pin}"))
        } else if future(s) {
            future_dated.push(s.name.clone());
            (true, "dated in the future".to_string())
        } else if s.outcome == Outcome::InProgress {
            (true, "in progress".to_string())
        } else if s.outcome == Outcome::Failed {
            match newest_complete_start {
                Some(t) if t > s.start_ms => (false, "failed; a newer snapshot completed".into()),
                _ => (true, "failed; no newer snapshot completed".into()),
            }
        } else {
            rank += 1;
            decide_complete(s, rank, newest_success, &bucketed, rules, now_ms)
        };
        decisions.push(Decision {
            name: s.name.clone(),
            keep,
            reason,
        });
    }
    Plan {
        now_ms,
        decisions,
        future_dated,
    }
}

/// A complete snapshot's decision; `rank` is its place among the complete
/// ones, newest first, from 1.
fn decide_complete(
    s: &Candidate,
    rank: u32,
    newest_success: Option<&str>,
    bucketed: &BTreeMap<&str, String>,
    rules: &Retention,
    now_ms: i64,
) -> (bool, String) {
    if newest_success == Some(s.name.as_str()) {
        return (true, "newest SUCCESS".into());
    }
    if rules.min_count.is_some_and(|n| rank <= n) {
        return (true, format!("min_count {}", rules.min_count.unwrap_or(0)));
    }
    if let Some(max) = rules.max_count.filter(|max| rank > *max) {
        return (false, format!("beyond max_count {max}"));
    }
    if let Some(label) = bucketed.get(s.name.as_str()) {
        return (true, label.clone());
    }
    if let Some(expire) = rules.expire_after_ms {
        let age = now_ms.saturating_sub(s.start_ms);
        return if age > expire {
            (false, format!("expired after {}", time_value(expire)))
        } else {
            (true, format!("younger than {}", time_value(expire)))
        };
    }
    if rules.has_buckets() {
        return (false, "in no keep bucket".into());
    }
    (true, "no rule deletes it".into())
}

/// The snapshots keep buckets choose, with their labels (`daily-3`: the
/// newest snapshot of the third newest day that has one).
fn bucket_choices<'a>(
    newest_first: &[&'a Candidate],
    rules: &Retention,
    tz: &TimeZone,
    complete: &dyn Fn(&Candidate) -> bool,
) -> BTreeMap<&'a str, String> {
    let mut chosen: BTreeMap<&str, String> = BTreeMap::new();
    for (period, wanted) in rules.buckets() {
        let mut seen = BTreeSet::new();
        for s in newest_first.iter().filter(|s| complete(s)) {
            if seen.len() as u32 >= wanted {
                break;
            }
            if seen.insert(period.key(tz, s.start_ms)) {
                let label = format!("{}-{}", period.label(), seen.len());
                chosen
                    .entry(s.name.as_str())
                    .and_modify(|l| *l = format!("{l}, {label}"))
                    .or_insert(label);
            }
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const DAY: i64 = 86_400_000;
    /// 2026-01-01T00:00:00Z.
    const T0: i64 = 1_767_225_600_000;

    fn snap(name: &str, start_ms: i64, outcome: Outcome) -> Candidate {
        Candidate {
            name: name.to_string(),
            policy: Some("nightly".into()),
            outcome,
            start_ms,
            end_ms: start_ms + 60_000,
            pinned: None,
        }
    }

    /// One SUCCESS snapshot a day at 01:30 UTC for `days` days from T0.
    fn daily(days: i64) -> Vec<Candidate> {
        (0..days)
            .map(|d| {
                snap(
                    &format!("n-{d:03}"),
                    T0 + d * DAY + 5_400_000,
                    Outcome::Success,
                )
            })
            .collect()
    }

    fn kept(plan: &Plan) -> Vec<&str> {
        plan.decisions
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.name.as_str())
            .collect()
    }

    fn reason<'a>(plan: &'a Plan, name: &str) -> &'a str {
        let d = plan.decisions.iter().find(|d| d.name == name).unwrap();
        &d.reason
    }

    fn es(expire_days: i64, min: u32, max: u32) -> Retention {
        Retention {
            expire_after_ms: Some(expire_days * DAY),
            min_count: Some(min),
            max_count: Some(max),
            ..Retention::default()
        }
    }

    #[test]
    fn elasticsearch_rules_expire_cap_and_keep_a_minimum() {
        let history = daily(100);
        let now = T0 + 100 * DAY;
        let plan = retention_plan(&history, "nightly", &es(30, 5, 50), &TimeZone::UTC, now);
        assert_eq!(plan.decisions.len(), 100);
        let k = kept(&plan);
        // Started 01:30 on days 70..99: younger than 30 days at day 100 00:00.
        assert_eq!(k.len(), 30, "{k:?}");
        assert_eq!(k[0], "n-099");
        assert_eq!(k[29], "n-070");
        assert_eq!(reason(&plan, "n-099"), "newest SUCCESS");
        assert_eq!(reason(&plan, "n-097"), "min_count 5");
        assert_eq!(reason(&plan, "n-080"), "younger than 30d");
        assert_eq!(reason(&plan, "n-069"), "expired after 30d");
        assert_eq!(reason(&plan, "n-020"), "beyond max_count 50");

        // A node down for two months: everything is old, min_count holds.
        let late = retention_plan(
            &history,
            "nightly",
            &es(30, 5, 50),
            &TimeZone::UTC,
            now + 60 * DAY,
        );
        assert_eq!(kept(&late), ["n-099", "n-098", "n-097", "n-096", "n-095"]);
    }

    #[test]
    fn the_newest_success_survives_every_rule() {
        let mut history = daily(10);
        history.push(snap("n-partial", T0 + 11 * DAY, Outcome::Partial));
        let rules = Retention {
            expire_after_ms: Some(DAY),
            max_count: Some(1),
            ..Retention::default()
        };
        let plan = retention_plan(&history, "nightly", &rules, &TimeZone::UTC, T0 + 400 * DAY);
        assert_eq!(kept(&plan), ["n-009"]);
        assert_eq!(reason(&plan, "n-009"), "newest SUCCESS");
        assert_eq!(reason(&plan, "n-partial"), "expired after 1d");
        assert_eq!(reason(&plan, "n-008"), "beyond max_count 1");
    }

    #[test]
    fn a_snapshot_dated_in_the_future_is_kept_reported_and_changes_nothing_else() {
        let mut history = daily(30);
        let planted = snap("planted-2099", 4_070_908_800_000, Outcome::Success);
        history.push(planted);
        let rules = Retention {
            keep_daily: 7,
            max_count: Some(10),
            ..Retention::default()
        };
        let now = T0 + 30 * DAY;
        let plan = retention_plan(&history, "nightly", &rules, &TimeZone::UTC, now);
        assert_eq!(plan.future_dated, ["planted-2099"]);
        assert_eq!(plan.now_ms, now.max(T0 + 29 * DAY + 5_460_000));
        assert_eq!(reason(&plan, "planted-2099"), "dated in the future");
        let k = kept(&plan);
        assert_eq!(k.len(), 8, "{k:?}");
        assert_eq!(
            &k[1..],
            ["n-029", "n-028", "n-027", "n-026", "n-025", "n-024", "n-023"]
        );
        assert_eq!(reason(&plan, "n-028"), "daily-2");
        assert_eq!(reason(&plan, "n-022"), "in no keep bucket");
        assert_eq!(reason(&plan, "n-015"), "beyond max_count 10");
    }

    #[test]
    fn now_is_never_before_the_newest_complete_snapshot() {
        // A clock two minutes behind the newest snapshot's end: ages count
        // from that end.
        let history = daily(100);
        let newest_end = T0 + 99 * DAY + 5_460_000;
        let plan = retention_plan(
            &history,
            "nightly",
            &es(30, 1, 1000),
            &TimeZone::UTC,
            newest_end - 120_000,
        );
        assert_eq!(plan.now_ms, newest_end);
        assert!(plan.future_dated.is_empty());
        assert_eq!(kept(&plan).len(), 30);
        // A clock 20 days behind: the snapshots after it are dated in the
        // future by its reading, so they are kept and reported, never
        // deleted.
        let behind = T0 + 80 * DAY;
        let plan = retention_plan(
            &history,
            "nightly",
            &es(30, 1, 1000),
            &TimeZone::UTC,
            behind,
        );
        assert_eq!(plan.future_dated.len(), 20);
        assert_eq!(kept(&plan).len(), 50);
    }

    #[test]
    fn buckets_take_the_newest_of_each_period_in_the_policys_time_zone() {
        // Two snapshots a day, at 00:30 and 23:30 UTC; in UTC+2 the late
        // one belongs to the next day.
        let mut history = Vec::new();
        for d in 0..5 {
            history.push(snap(
                &format!("a-{d}"),
                T0 + d * DAY + 1_800_000,
                Outcome::Success,
            ));
            history.push(snap(
                &format!("b-{d}"),
                T0 + d * DAY + 84_600_000,
                Outcome::Success,
            ));
        }
        let rules = Retention {
            keep_daily: 3,
            keep_monthly: 2,
            ..Retention::default()
        };
        let now = T0 + 5 * DAY;
        let utc = retention_plan(&history, "nightly", &rules, &TimeZone::UTC, now);
        assert_eq!(kept(&utc), ["b-4", "b-3", "b-2"]);
        assert_eq!(reason(&utc, "b-4"), "newest SUCCESS");
        assert_eq!(reason(&utc, "b-3"), "daily-2");
        assert_eq!(reason(&utc, "b-2"), "daily-3");
        let plus_two = TimeZone::fixed(jiff::tz::offset(2));
        // In UTC+2, b-4 is the 6th, a-4 and b-3 the 5th, a-3 the 4th.
        let east = retention_plan(&history, "nightly", &rules, &plus_two, now);
        assert_eq!(kept(&east), ["b-4", "a-4", "a-3"]);
        let mut monthly = history.clone();
        monthly.push(snap("december", T0 - 10 * DAY, Outcome::Success));
        monthly.push(snap("november", T0 - 40 * DAY, Outcome::Success));
        let plan = retention_plan(&monthly, "nightly", &rules, &TimeZone::UTC, now);
        assert_eq!(reason(&plan, "december"), "monthly-2");
        assert!(!plan
            .decisions
            .iter()
            .any(|d| d.name == "november" && d.keep));
    }

    #[test]
    fn only_the_policys_own_snapshots_are_considered_and_pins_hold() {
        let mut history = daily(5);
        let mut manual = snap("manual", T0, Outcome::Success);
        manual.policy = None;
        let mut other = snap("other", T0, Outcome::Success);
        other.policy = Some("weekly".into());
        history.extend([manual, other]);
        history[0].pinned = Some("mounted".into());
        let rules = Retention {
            max_count: Some(1),
            ..Retention::default()
        };
        let plan = retention_plan(&history, "nightly", &rules, &TimeZone::UTC, T0 + 5 * DAY);
        assert_eq!(plan.decisions.len(), 5);
        assert_eq!(kept(&plan), ["n-004", "n-000"]);
        assert_eq!(reason(&plan, "n-000"), "pinned: mounted");
    }

    #[test]
    fn failed_snapshots_go_once_a_newer_one_completed() {
        let mut history = daily(3);
        history.push(snap("failed-old", T0 + DAY / 2, Outcome::Failed));
        history.push(snap("failed-new", T0 + 10 * DAY, Outcome::Failed));
        history.push(snap("running", T0 + 11 * DAY, Outcome::InProgress));
        let plan = retention_plan(
            &history,
            "nightly",
            &Retention::default(),
            &TimeZone::UTC,
            T0 + 11 * DAY,
        );
        assert!(!kept(&plan).contains(&"failed-old"));
        assert_eq!(
            reason(&plan, "failed-new"),
            "failed; no newer snapshot completed"
        );
        assert_eq!(reason(&plan, "running"), "in progress");
        assert_eq!(reason(&plan, "n-001"), "no rule deletes it");
    }
}
