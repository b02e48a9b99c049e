//! A policy's schedule: Elasticsearch's cron (Quartz: seconds first, `?`,
//! `L`, `W`, `#`, an optional year) or an interval (`30m`), and when it
//! fires. Times are milliseconds since the Unix epoch; the time zone comes
//! from the caller (the shells resolve IANA names), so the answers are pure.
//!
//! A fire time is also the identity of its **slot**: every node that holds
//! the policy computes the same instants, so "slot 1764720000000 of policy
//! `nightly`" names one run wherever it is decided.
//!
//! Daylight saving follows croner (OCPS): a fixed time that falls in a
//! spring-forward gap fires once at the first valid moment after it; one
//! that occurs twice in a fall-back fires once, at the first occurrence.
//! An interval is elapsed time, anchored at the policy's modification
//! time, so it never drifts with the wall clock.

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use crate::core::es::units::parse_time_value;

/// How far ahead [`Schedule::next_fire`] looks before saying "never"
/// (croner searches up to year 5000; this bounds a search for a date such
/// as `0 0 0 30 2 ?` that cannot occur).
const SEARCH_LIMIT_YEARS: i16 = 400;

#[derive(Debug, Clone)]
pub enum Schedule {
    Cron {
        text: String,
        cron: Box<Cron>,
    },
    /// Every `ms` milliseconds from the anchor.
    Interval {
        text: String,
        ms: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid schedule [{schedule}]: {reason}")]
    Invalid { schedule: String, reason: String },
    #[error(
        "invalid schedule [{schedule}]: the interval between runs ({interval_ms} ms) is shorter \
         than slm.minimum_interval ({minimum_ms} ms)"
    )]
    TooFrequent {
        schedule: String,
        interval_ms: i64,
        minimum_ms: i64,
    },
    #[error("invalid schedule [{schedule}]: it never fires after {after}")]
    Never { schedule: String, after: String },
}

impl Schedule {
    /// Parses ES's `schedule`: an interval if it reads as a time value
    /// (`30m`, `1h`, `1d`), otherwise a Quartz cron with seconds.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let text = text.trim();
        let invalid = |reason: String| ScheduleError::Invalid {
            schedule: text.to_string(),
            reason,
        };
        if let Some(ms) = parse_time_value(text) {
            if ms <= 0 {
                return Err(invalid("an interval must be positive".into()));
            }
            return Ok(Schedule::Interval {
                text: text.to_string(),
                ms,
            });
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Optional)
            .alternative_weekdays(true)
            .sloppy_ranges(true)
            .dom_and_dow(false)
            .build()
            .parse(text)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Schedule::Cron {
            text: text.to_string(),
            cron: Box::new(cron),
        })
    }

    pub fn text(&self) -> &str {
        match self {
            Schedule::Cron { text, .. } | Schedule::Interval { text, .. } => text,
        }
    }

    /// The first fire time strictly after `after_ms`. `anchor_ms` starts
    /// an interval's count (its fires are `anchor + k·interval`, k ≥ 1).
    pub fn next_fire(&self, tz: &TimeZone, anchor_ms: i64, after_ms: i64) -> Option<i64> {
        match self {
            Schedule::Interval { ms, .. } => {
                let k = if after_ms < anchor_ms {
                    1
                } else {
                    (after_ms - anchor_ms) / ms + 1
                };
                anchor_ms.checked_add(k.checked_mul(*ms)?)
            }
            Schedule::Cron { cron, .. } => cron_next(cron, tz, after_ms),
        }
    }

    /// The latest fire time at or before `at_ms` and after `anchor_ms`
    /// (for a cron, after `anchor_ms` too: slots before a policy existed
    /// are not its slots).
    pub fn last_fire(&self, tz: &TimeZone, anchor_ms: i64, at_ms: i64) -> Option<i64> {
        match self {
            Schedule::Interval { ms, .. } => {
                let k = (at_ms.checked_sub(anchor_ms)?) / ms;
                (k >= 1).then(|| anchor_ms + k * ms)
            }
            Schedule::Cron { cron, .. } => {
                let at = zoned(tz, floor_second(at_ms))?;
                let found = cron.find_previous_occurrence(&at, true).ok()?;
                let ms = found.timestamp().as_millisecond();
                (ms > anchor_ms).then_some(ms)
            }
        }
    }

    /// Fire times in `(from_ms, to_ms]`, counted up to `cap` (a schedule of
    /// seconds left alone for a month has millions).
    pub fn count_fires(
        &self,
        tz: &TimeZone,
        anchor_ms: i64,
        from_ms: i64,
        to_ms: i64,
        cap: u64,
    ) -> u64 {
        if let Schedule::Interval { ms, .. } = self {
            let index = |t: i64| {
                if t < anchor_ms {
                    0
                } else {
                    (t - anchor_ms) / ms
                }
            };
            let n = (index(to_ms) - index(from_ms.max(anchor_ms))).max(0) as u64;
            return n.min(cap);
        }
        let mut n = 0;
        let mut at = from_ms;
        while n < cap {
            match self.next_fire(tz, anchor_ms, at) {
                Some(next) if next <= to_ms => {
                    n += 1;
                    at = next;
                }
                _ => break,
            }
        }
        n
    }

    /// Refuses a schedule that fires more often than `minimum_ms`, as
    /// Elasticsearch's `slm.minimum_interval` does: for a cron, measured
    /// between its next two fires after `now_ms`; and one that never fires.
    pub fn check(&self, tz: &TimeZone, now_ms: i64, minimum_ms: i64) -> Result<(), ScheduleError> {
        let interval_ms = match self {
            Schedule::Interval { ms, .. } => *ms,
            Schedule::Cron { cron, .. } => {
                let never = || ScheduleError::Never {
                    schedule: self.text().to_string(),
                    after: crate::core::es::units::iso_millis(now_ms),
                };
                let first = cron_next(cron, tz, now_ms).ok_or_else(never)?;
                match cron_next(cron, tz, first) {
                    Some(second) => second - first,
                    None => return Ok(()),
                }
            }
        };
        if interval_ms < minimum_ms {
            return Err(ScheduleError::TooFrequent {
                schedule: self.text().to_string(),
                interval_ms,
                minimum_ms,
            });
        }
        Ok(())
    }
}

fn cron_next(cron: &Cron, tz: &TimeZone, after_ms: i64) -> Option<i64> {
    // croner works in whole seconds: search from the second that holds
    // `after_ms`, and step past any answer not strictly after it.
    let mut from = floor_second(after_ms);
    for _ in 0..2 {
        let start = zoned(tz, from)?;
        let found = cron.find_next_occurrence(&start, false).ok()?;
        if found.year() > start.year().saturating_add(SEARCH_LIMIT_YEARS) {
            return None;
        }
        let ms = found.timestamp().as_millisecond();
        if ms > after_ms {
            return Some(ms);
        }
        from = ms;
    }
    None
}

fn floor_second(ms: i64) -> i64 {
    ms.div_euclid(1000) * 1000
}

fn zoned(tz: &TimeZone, ms: i64) -> Option<Zoned> {
    Some(Timestamp::from_millisecond(ms).ok()?.to_zoned(tz.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Central European time, by its POSIX rule (no tz database needed):
    /// summer time from the last Sunday of March 02:00 to the last Sunday
    /// of October 03:00.
    fn berlin() -> TimeZone {
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap()
    }

    /// US Eastern: second Sunday of March to first Sunday of November.
    fn new_york() -> TimeZone {
        TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap()
    }

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn iso(ms: i64) -> String {
        Timestamp::from_millisecond(ms).unwrap().to_string()
    }

    fn fires(s: &Schedule, tz: &TimeZone, from: &str, n: usize) -> Vec<String> {
        let mut at = ms(from);
        let mut out = Vec::new();
        for _ in 0..n {
            at = s.next_fire(tz, 0, at).unwrap();
            out.push(iso(at));
        }
        out
    }

    #[test]
    fn elasticsearch_cron_examples_fire_when_its_docs_say() {
        let utc = TimeZone::UTC;
        let nightly = Schedule::parse("0 30 1 * * ?").unwrap();
        assert_eq!(
            fires(&nightly, &utc, "2026-12-03T17:00:00Z", 2),
            ["2026-12-04T01:30:00Z", "2026-12-05T01:30:00Z"]
        );
        // Quartz weekdays: 1 is Sunday, 6 Friday.
        let friday_noon = Schedule::parse("0 0 12 ? * 6").unwrap();
        assert_eq!(
            fires(&friday_noon, &utc, "2026-12-03T00:00:00Z", 1),
            ["2026-12-04T12:00:00Z"]
        );
        let last_day = Schedule::parse("0 0 0 L * ?").unwrap();
        assert_eq!(
            fires(&last_day, &utc, "2027-02-01T00:00:00Z", 1),
            ["2027-02-28T00:00:00Z"]
        );
        let second_monday = Schedule::parse("0 15 3 ? * MON#2").unwrap();
        assert_eq!(
            fires(&second_monday, &utc, "2026-12-01T00:00:00Z", 1),
            ["2026-12-14T03:15:00Z"]
        );
        let every_5s = Schedule::parse("*/5 * * * * ?").unwrap();
        assert_eq!(
            fires(&every_5s, &utc, "2026-12-03T17:00:02.500Z", 2),
            ["2026-12-03T17:00:05Z", "2026-12-03T17:00:10Z"]
        );
        let in_2027 = Schedule::parse("0 0 0 1 1 ? 2027").unwrap();
        assert_eq!(
            fires(&in_2027, &utc, "2026-06-01T00:00:00Z", 1),
            ["2027-01-01T00:00:00Z"]
        );
        assert_eq!(in_2027.next_fire(&utc, 0, ms("2027-06-01T00:00:00Z")), None);
    }

    #[test]
    fn a_fire_time_is_strictly_after_the_asked_instant() {
        let every_second = Schedule::parse("* * * * * ?").unwrap();
        let at = ms("2026-12-03T17:00:00Z");
        assert_eq!(
            every_second.next_fire(&TimeZone::UTC, 0, at),
            Some(at + 1000)
        );
        assert_eq!(
            every_second.next_fire(&TimeZone::UTC, 0, at + 999),
            Some(at + 1000)
        );
    }

    #[test]
    fn daylight_saving_days_in_berlin() {
        let tz = berlin();
        let half_past_two = Schedule::parse("0 30 2 * * ?").unwrap();
        // 2027-03-28 has no 02:30: one run at 03:00 CEST, the first valid
        // time after the gap. On 2027-10-31 02:30 happens twice: one run,
        // at the first (CEST).
        assert_eq!(
            fires(&half_past_two, &tz, "2027-03-27T12:00:00Z", 2),
            ["2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"]
        );
        assert_eq!(
            fires(&half_past_two, &tz, "2027-10-30T12:00:00Z", 2),
            ["2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"]
        );
        // A wildcard job skips the gap's instants and goes on.
        let half_hourly = Schedule::parse("0 */30 * * * ?").unwrap();
        assert_eq!(
            fires(&half_hourly, &tz, "2027-03-28T00:40:00Z", 2),
            ["2027-03-28T01:00:00Z", "2027-03-28T01:30:00Z"]
        );
    }

    #[test]
    fn daylight_saving_days_in_new_york() {
        let tz = new_york();
        let half_past_two = Schedule::parse("0 30 2 * * ?").unwrap();
        assert_eq!(
            fires(&half_past_two, &tz, "2027-03-13T12:00:00Z", 2),
            ["2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z"]
        );
        let half_past_one = Schedule::parse("0 30 1 * * ?").unwrap();
        assert_eq!(
            fires(&half_past_one, &tz, "2027-11-06T12:00:00Z", 2),
            ["2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z"]
        );
    }

    #[test]
    fn intervals_count_elapsed_time_from_their_anchor() {
        let tz = berlin();
        let s = Schedule::parse("30m").unwrap();
        let anchor = ms("2027-03-28T00:10:00Z");
        // Over the spring-forward gap the wall clock jumps; runs do not.
        assert_eq!(
            s.next_fire(&tz, anchor, anchor - 5),
            Some(anchor + 1_800_000)
        );
        assert_eq!(
            s.next_fire(&tz, anchor, anchor + 1_800_000),
            Some(anchor + 3_600_000)
        );
        assert_eq!(s.last_fire(&tz, anchor, anchor + 1_799_999), None);
        assert_eq!(
            s.last_fire(&tz, anchor, anchor + 3_700_000),
            Some(anchor + 3_600_000)
        );
        assert_eq!(
            s.count_fires(&tz, anchor, anchor, anchor + 10 * 1_800_000, 100),
            10
        );
        assert_eq!(
            s.count_fires(&tz, anchor, anchor, anchor + 10 * 1_800_000, 4),
            4
        );
    }

    #[test]
    fn last_fire_and_counts_for_a_cron() {
        let utc = TimeZone::UTC;
        let hourly = Schedule::parse("0 0 * * * ?").unwrap();
        let at = ms("2026-12-03T17:20:00Z");
        assert_eq!(
            hourly.last_fire(&utc, 0, at),
            Some(ms("2026-12-03T17:00:00Z"))
        );
        // Slots from before the policy existed are not its slots.
        assert_eq!(hourly.last_fire(&utc, ms("2026-12-03T17:10:00Z"), at), None);
        let day = ms("2026-12-03T00:00:00Z");
        assert_eq!(hourly.count_fires(&utc, 0, day, day + 86_400_000, 1000), 24);
    }

    #[test]
    fn bad_schedules_are_named() {
        for bad in ["", "0 30 1 * *", "nonsense", "0 61 * * * ?", "-5m", "0s"] {
            let e = Schedule::parse(bad).unwrap_err();
            assert!(e.to_string().contains("invalid schedule"), "{bad}: {e}");
        }
        let utc = TimeZone::UTC;
        let now = ms("2026-12-03T17:00:00Z");
        let e = Schedule::parse("*/10 * * * * ?")
            .unwrap()
            .check(&utc, now, 15 * 60_000)
            .unwrap_err();
        assert!(
            matches!(
                e,
                ScheduleError::TooFrequent {
                    interval_ms: 10_000,
                    ..
                }
            ),
            "{e}"
        );
        assert!(Schedule::parse("1s")
            .unwrap()
            .check(&utc, now, 15 * 60_000)
            .is_err());
        assert!(Schedule::parse("1s")
            .unwrap()
            .check(&utc, now, 1000)
            .is_ok());
        assert!(Schedule::parse("0 0 0 30 2 ?")
            .unwrap()
            .check(&utc, now, 1000)
            .is_err());
        assert!(Schedule::parse("0 0 1 * * ?")
            .unwrap()
            .check(&utc, now, 15 * 60_000)
            .is_ok());
    }
}
