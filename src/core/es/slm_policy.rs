//! The body of `PUT /_slm/policy/<id>`, strictly parsed: Elasticsearch's
//! members (`name`, `schedule`, `repository`, `config`, `retention`) and
//! snapkeep's additions (`timezone`, `missed`, `overlap`, the keep buckets
//! inside `retention`, `unhealthy_if_no_snapshot_within`). Problems are
//! collected into one `action_request_validation_exception`, as ES lists
//! every problem of a policy at once.

use serde_json::{Map, Value};

use super::body::{object, unknown};
use super::create_request::CreateSnapshotRequest;
use super::date_math::resolve_name;
use super::errors::EsError;
use super::names::snapshot_name_problem;
use super::units::parse_time_value;
use crate::core::slm::retention::Retention;
use crate::core::slm::schedule::Schedule;
use crate::core::slm::slots::{Missed, Overlap};

#[derive(Debug, Clone)]
pub struct SlmPolicy {
    /// The snapshot name, possibly date math (`<nightly-{now/d}>`).
    pub name: String,
    pub schedule: Schedule,
    pub repository: String,
    /// The create body each run sends, kept as given.
    pub config: Map<String, Value>,
    pub retention: Option<Retention>,
    /// An IANA zone name; the shell resolves it.
    pub timezone: String,
    pub missed: Missed,
    pub overlap: Overlap,
    pub unhealthy_if_no_snapshot_within_ms: Option<i64>,
}

/// What ES says is wrong with a policy id, if anything.
pub fn policy_id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("cannot be empty")
    } else if id.contains(',') {
        Some("must not contain ','")
    } else if id.chars().any(char::is_whitespace) {
        Some("must not contain whitespace")
    } else if id.starts_with('_') {
        Some("must not start with '_'")
    } else if id.to_lowercase() != id {
        Some("must be lowercase")
    } else if id.contains(['/', '\\', '*', '?', '"', '<', '>', '|', '#']) {
        Some("must not contain the following characters [/, \\, *, ?, \", <, >, |, #]")
    } else {
        None
    }
}

impl SlmPolicy {
    /// Parses the body of `PUT /_slm/policy/<id>`; `now_ms` resolves the
    /// name's date math once, to check the names it makes.
    pub fn parse(id: &str, body: &[u8], now_ms: i64) -> Result<SlmPolicy, EsError> {
        let mut problems = Vec::new();
        if let Some(p) = policy_id_problem(id) {
            problems.push(format!("invalid policy id [{id}]: {p}"));
        }
        let members = object(body)?;
        let mut fields = Fields::default();
        for (name, v) in members {
            fields.take(&name, v, &mut problems)?;
        }
        let policy = fields.finish(now_ms, &mut problems);
        match policy {
            Some(p) if problems.is_empty() => Ok(p),
            _ => Err(EsError::action_request_validation(&problems)),
        }
    }
}

#[derive(Default)]
struct Fields {
    name: Option<String>,
    schedule: Option<String>,
    repository: Option<String>,
    config: Option<Map<String, Value>>,
    retention: Option<Retention>,
    timezone: Option<String>,
    missed: Option<Missed>,
    overlap: Option<Overlap>,
    unhealthy_ms: Option<i64>,
}

impl Fields {
    fn take(&mut self, name: &str, v: Value, problems: &mut Vec<String>) -> Result<(), EsError> {
        match name {
            "name" => self.name = Some(text(&v, name)?),
            "schedule" => self.schedule = Some(text(&v, name)?),
            "repository" => self.repository = Some(text(&v, name)?),
            "timezone" => self.timezone = Some(text(&v, name)?),
            "config" => self.config = Some(config(v)?),
            "retention" => self.retention = Some(retention(v, problems)?),
            "missed" => {
                self.missed = Some(match text(&v, name)?.as_str() {
                    "skip" => Missed::Skip,
                    "run_once" => Missed::RunOnce,
                    other => return Err(choice(name, other, "[skip, run_once]")),
                })
            }
            "overlap" => {
                self.overlap = Some(match text(&v, name)?.as_str() {
                    "skip" => Overlap::Skip,
                    "queue" => Overlap::Queue,
                    other => return Err(choice(name, other, "[skip, queue]")),
                })
            }
            "unhealthy_if_no_snapshot_within" => {
                self.unhealthy_ms = Some(time(&v, name)?);
            }
            other => return Err(unknown(other)),
        }
        Ok(())
    }

    fn finish(self, now_ms: i64, problems: &mut Vec<String>) -> Option<SlmPolicy> {
        let name = required(self.name, "name", problems);
        if let Some(n) = &name {
            match resolve_name(n, now_ms) {
                Ok(resolved) => {
                    if let Some(p) = snapshot_name_problem(&resolved) {
                        problems.push(format!("invalid snapshot name [{n}]: {p}"));
                    }
                }
                Err(e) => problems.push(format!("invalid snapshot name [{n}]: {e}")),
            }
        }
        let schedule = required(self.schedule, "schedule", problems).and_then(|s| {
            Schedule::parse(&s)
                .map_err(|e| problems.push(e.to_string()))
                .ok()
        });
        let repository = required(self.repository, "repository", problems);
        Some(SlmPolicy {
            name: name?,
            schedule: schedule?,
            repository: repository?,
            config: self.config.unwrap_or_default(),
            retention: self.retention,
            timezone: self.timezone.unwrap_or_else(|| "UTC".into()),
            missed: self.missed.unwrap_or(Missed::RunOnce),
            overlap: self.overlap.unwrap_or(Overlap::Skip),
            unhealthy_if_no_snapshot_within_ms: self.unhealthy_ms,
        })
    }
}

fn required(v: Option<String>, name: &str, problems: &mut Vec<String>) -> Option<String> {
    match v {
        Some(s) if !s.is_empty() => Some(s),
        _ => {
            problems.push(format!("invalid {name}: cannot be empty"));
            None
        }
    }
}

fn text(v: &Value, name: &str) -> Result<String, EsError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| EsError::parse(format!("[{name}] must be a string, got [{v}]")))
}

fn time(v: &Value, name: &str) -> Result<i64, EsError> {
    let t = text(v, name)?;
    parse_time_value(&t).filter(|ms| *ms >= 0).ok_or_else(|| {
        EsError::parse(format!(
            "failed to parse setting [{name}] with value [{t}] as a time value"
        ))
    })
}

fn count(v: &Value, name: &str) -> Result<u32, EsError> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            EsError::parse(format!(
                "[{name}] must be a non-negative integer, got [{v}]"
            ))
        })
}

fn choice(name: &str, got: &str, allowed: &str) -> EsError {
    EsError::illegal_argument(format!("[{name}] must be one of {allowed}, got [{got}]"))
}

/// The create body a run sends: checked now, so a bad one is refused at
/// `PUT` rather than failing every run.
fn config(v: Value) -> Result<Map<String, Value>, EsError> {
    let Value::Object(m) = v else {
        return Err(EsError::parse("[config] must be an object"));
    };
    let bytes = serde_json::to_vec(&m).unwrap_or_default();
    CreateSnapshotRequest::parse(&bytes)?;
    Ok(m)
}

fn retention(v: Value, problems: &mut Vec<String>) -> Result<Retention, EsError> {
    let Value::Object(m) = v else {
        return Err(EsError::parse("[retention] must be an object"));
    };
    let mut r = Retention::default();
    for (name, v) in &m {
        match name.as_str() {
            "expire_after" => r.expire_after_ms = Some(time(v, name)?),
            "min_count" => r.min_count = Some(count(v, name)?),
            "max_count" => r.max_count = Some(count(v, name)?),
            "keep_hourly" => r.keep_hourly = count(v, name)?,
            "keep_daily" => r.keep_daily = count(v, name)?,
            "keep_weekly" => r.keep_weekly = count(v, name)?,
            "keep_monthly" => r.keep_monthly = count(v, name)?,
            "keep_yearly" => r.keep_yearly = count(v, name)?,
            other => return Err(unknown(other)),
        }
    }
    if r.min_count == Some(0) {
        problems.push("retention.min_count must be greater than 0".into());
    }
    if r.max_count == Some(0) {
        problems.push("retention.max_count must be greater than 0".into());
    }
    if let (Some(min), Some(max)) = (r.min_count, r.max_count) {
        if min > max {
            problems.push("retention.min_count cannot be larger than retention.max_count".into());
        }
    }
    Ok(r)
}

/// The policy as `GET /_slm/policy` shows it (`policy` member), snapkeep's
/// additions included.
pub fn policy_json(p: &SlmPolicy) -> Value {
    let mut out = serde_json::json!({
        "name": p.name,
        "schedule": p.schedule.text(),
        "repository": p.repository,
    });
    if !p.config.is_empty() {
        out["config"] = Value::Object(p.config.clone());
    }
    if let Some(r) = &p.retention {
        out["retention"] = retention_json(r);
    }
    out["timezone"] = Value::from(p.timezone.clone());
    out["missed"] = Value::from(match p.missed {
        Missed::Skip => "skip",
        Missed::RunOnce => "run_once",
    });
    out["overlap"] = Value::from(match p.overlap {
        Overlap::Skip => "skip",
        Overlap::Queue => "queue",
    });
    if let Some(ms) = p.unhealthy_if_no_snapshot_within_ms {
        out["unhealthy_if_no_snapshot_within"] = Value::from(super::units::time_value(ms));
    }
    out
}

fn retention_json(r: &Retention) -> Value {
    let mut m = Map::new();
    if let Some(ms) = r.expire_after_ms {
        m.insert("expire_after".into(), super::units::time_value(ms).into());
    }
    if let Some(n) = r.min_count {
        m.insert("min_count".into(), n.into());
    }
    if let Some(n) = r.max_count {
        m.insert("max_count".into(), n.into());
    }
    for (name, n) in [
        ("keep_hourly", r.keep_hourly),
        ("keep_daily", r.keep_daily),
        ("keep_weekly", r.keep_weekly),
        ("keep_monthly", r.keep_monthly),
        ("keep_yearly", r.keep_yearly),
    ] {
        if n > 0 {
            m.insert(name.into(), n.into());
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const NOW: i64 = 1_764_781_200_000; // 2025-12-03T17:00:00Z

    fn reason(e: &EsError) -> String {
        e.reason.clone()
    }

    #[test]
    fn the_elasticsearch_docs_example_parses() {
        let body = br#"{
          "schedule": "0 30 1 * * ?",
          "name": "<nightly-snap-{now/d}>",
          "repository": "my_repository",
          "config": {"indices": ["data-*", "important"], "ignore_unavailable": false,
                     "include_global_state": false},
          "retention": {"expire_after": "30d", "min_count": 5, "max_count": 50}
        }"#;
        let p = SlmPolicy::parse("nightly-snapshots", body, NOW).unwrap();
        assert_eq!(p.repository, "my_repository");
        assert_eq!(p.schedule.text(), "0 30 1 * * ?");
        let r = p.retention.clone().unwrap();
        assert_eq!(r.expire_after_ms, Some(30 * 86_400_000));
        assert_eq!((r.min_count, r.max_count), (Some(5), Some(50)));
        assert_eq!((p.missed, p.overlap), (Missed::RunOnce, Overlap::Skip));
        assert_eq!(p.timezone, "UTC");
        let shown = policy_json(&p);
        assert_eq!(shown["retention"]["expire_after"], "30d");
        assert_eq!(shown["config"]["indices"][1], "important");
    }

    #[test]
    fn snapkeeps_additions_parse() {
        let body = br#"{"schedule": "30m", "name": "hourly", "repository": "r",
          "timezone": "Europe/Berlin", "missed": "skip", "overlap": "queue",
          "unhealthy_if_no_snapshot_within": "2h",
          "retention": {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12}}"#;
        let p = SlmPolicy::parse("p", body, NOW).unwrap();
        assert_eq!((p.missed, p.overlap), (Missed::Skip, Overlap::Queue));
        assert_eq!(p.unhealthy_if_no_snapshot_within_ms, Some(7_200_000));
        assert_eq!(p.retention.unwrap().keep_weekly, 4);
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let body = br#"{"schedule": "not a cron", "name": "Upper"}"#;
        let e = SlmPolicy::parse("_bad", body, NOW).unwrap_err();
        assert_eq!(e.status, 400);
        let r = reason(&e);
        assert!(r.starts_with("Validation Failed: "), "{r}");
        for part in [
            "invalid policy id [_bad]: must not start with '_'",
            "invalid snapshot name [Upper]: must be lowercase",
            "invalid schedule [not a cron]",
            "invalid repository: cannot be empty",
        ] {
            assert!(r.contains(part), "{part} missing from {r}");
        }
    }

    #[test]
    fn wrong_members_and_types_are_refused() {
        let base =
            |extra: &str| format!(r#"{{"schedule": "1h", "name": "n", "repository": "r"{extra}}}"#);
        let cases = [
            (r#", "colour": 1"#, "Unknown parameter colour"),
            (
                r#", "retention": {"keep_forever": 1}"#,
                "Unknown parameter keep_forever",
            ),
            (
                r#", "missed": "later""#,
                "[missed] must be one of [skip, run_once]",
            ),
            (r#", "config": {"indices": 3}"#, "malformed indices section"),
            (
                r#", "retention": {"expire_after": "soon"}"#,
                "as a time value",
            ),
            (
                r#", "retention": {"min_count": 9, "max_count": 2}"#,
                "cannot be larger",
            ),
            (
                r#", "retention": {"max_count": -1}"#,
                "non-negative integer",
            ),
        ];
        for (extra, expected) in cases {
            let e = SlmPolicy::parse("p", base(extra).as_bytes(), NOW).unwrap_err();
            assert!(reason(&e).contains(expected), "{extra}: {}", reason(&e));
        }
        assert!(SlmPolicy::parse("p", b"[1]", NOW).is_err());
        assert!(SlmPolicy::parse("p", b"{", NOW).is_err());
    }
}
