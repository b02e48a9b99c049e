//! What a node reports of its lifecycle policies, in Elasticsearch's
//! shapes: the counters of `GET /_slm/stats` and of each policy's
//! `stats`, the last success and failure, the snapshot name a run takes,
//! and the `slm` health indicator (`GET /_health_report/slm`). The node
//! keeps the numbers; these functions only decide and shape them.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::core::es::date_math::{resolve_name, DateMathError};
use crate::core::es::units::{iso_millis, time_value};

/// One policy's counters, as `GET /_slm/stats` lists them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStats {
    pub snapshots_taken: u64,
    pub snapshots_failed: u64,
    pub snapshots_deleted: u64,
    pub snapshot_deletion_failures: u64,
}

/// The node's counters. Totals are kept apart from the policies' own, so
/// a deleted policy's snapshots still count (as in Elasticsearch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalStats {
    pub retention_runs: u64,
    pub retention_failed: u64,
    pub retention_timed_out: u64,
    pub retention_deletion_time_millis: u64,
    pub total_snapshots_taken: u64,
    pub total_snapshots_failed: u64,
    pub total_snapshots_deleted: u64,
    pub total_snapshot_deletion_failures: u64,
}

/// A run's end, for `last_success` and `last_failure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    pub snapshot_name: String,
    pub start_time: i64,
    /// When the run's outcome was known.
    pub time: i64,
    /// Why it failed (failures only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl Invocation {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "snapshot_name": self.snapshot_name,
            "start_time": self.start_time,
            "start_time_string": iso_millis(self.start_time),
            "time": self.time,
            "time_string": iso_millis(self.time),
        });
        if let Some(d) = &self.details {
            v["details"] = Value::from(d.clone());
        }
        v
    }
}

pub fn policy_stats_json(id: &str, s: &PolicyStats) -> Value {
    json!({
        "policy": id,
        "snapshots_taken": s.snapshots_taken,
        "snapshots_failed": s.snapshots_failed,
        "snapshots_deleted": s.snapshots_deleted,
        "snapshot_deletion_failures": s.snapshot_deletion_failures,
    })
}

/// `GET /_slm/stats`.
pub fn stats_json(g: &GlobalStats, policies: &[(&str, PolicyStats)]) -> Value {
    let listed: Vec<Value> = policies
        .iter()
        .map(|(id, s)| policy_stats_json(id, s))
        .collect();
    json!({
        "retention_runs": g.retention_runs,
        "retention_failed": g.retention_failed,
        "retention_timed_out": g.retention_timed_out,
        "retention_deletion_time": time_value(g.retention_deletion_time_millis as i64),
        "retention_deletion_time_millis": g.retention_deletion_time_millis,
        "total_snapshots_taken": g.total_snapshots_taken,
        "total_snapshots_failed": g.total_snapshots_failed,
        "total_snapshots_deleted": g.total_snapshots_deleted,
        "total_snapshot_deletion_failures": g.total_snapshot_deletion_failures,
        "policy_stats": listed,
    })
}

/// The name a run of a policy takes: the policy's `name` with its date
/// math resolved at `now_ms`, `-`, and a unique suffix made of `random`
/// (Elasticsearch appends a random base64 id, lowercased, so runs within
/// one date-math period never collide).
pub fn run_snapshot_name(
    name: &str,
    now_ms: i64,
    random: [u8; 16],
) -> Result<String, DateMathError> {
    let base = resolve_name(name, now_ms)?;
    let suffix = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(random)
        .to_lowercase();
    Ok(format!("{base}-{suffix}"))
}

/// The lifecycle's operation mode, as `GET /_slm/status` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationMode {
    Running,
    /// Stopped, with runs of policies still finishing.
    Stopping,
    Stopped,
}

impl OperationMode {
    pub fn name(self) -> &'static str {
        match self {
            OperationMode::Running => "RUNNING",
            OperationMode::Stopping => "STOPPING",
            OperationMode::Stopped => "STOPPED",
        }
    }
}

/// One unhealthy policy: its id and its failed runs since its last success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhealthy {
    pub policy: String,
    pub invocations_since_last_success: u64,
}

/// The `slm` health indicator (Elasticsearch 8's `_health_report`):
/// green while the lifecycle runs and no policy is unhealthy, yellow when
/// it is stopped with policies to run or some policy is unhealthy.
pub fn health_indicator(mode: OperationMode, policies: usize, unhealthy: &[Unhealthy]) -> Value {
    let mut details = json!({"slm_status": mode.name(), "policies": policies});
    if policies == 0 {
        return json!({
            "status": "green",
            "symptom": "No Snapshot Lifecycle Management policies configured",
            "details": details,
        });
    }
    if mode != OperationMode::Running {
        return json!({
            "status": "yellow",
            "symptom": "Snapshot Lifecycle Management is not running",
            "details": details,
            "impacts": [{
                "severity": 2,
                "description": "Scheduled snapshots are not running. New backup snapshots will not be created automatically.",
                "impact_areas": ["backup"],
            }],
            "diagnosis": [{
                "cause": "Snapshot Lifecycle Management is stopped",
                "action": "Start Snapshot Lifecycle Management using [POST /_slm/start].",
                "help_url": "https://ela.st/fix-slm",
            }],
        });
    }
    if unhealthy.is_empty() {
        return json!({
            "status": "green",
            "symptom": "Snapshot Lifecycle Management is running",
            "details": details,
        });
    }
    let counts: Map<String, Value> = unhealthy
        .iter()
        .map(|u| {
            (
                u.policy.clone(),
                Value::from(u.invocations_since_last_success),
            )
        })
        .collect();
    details["unhealthy_policies"] = json!({
        "count": unhealthy.len(),
        "invocations_since_last_success": counts,
    });
    let names: Vec<&str> = unhealthy.iter().map(|u| u.policy.as_str()).collect();
    json!({
        "status": "yellow",
        "symptom": format!(
            "Encountered [{}] unhealthy snapshot lifecycle management policies.",
            unhealthy.len()
        ),
        "details": details,
        "impacts": [{
            "severity": 2,
            "description": "Some automated snapshots have not had a successful execution recently. Indices restored from affected snapshots may not contain recent changes.",
            "impact_areas": ["backup"],
        }],
        "diagnosis": [{
            "cause": "Several automated snapshot policies are unhealthy.",
            "action": "Check the snapshot lifecycle policies for detailed failure info: GET /_slm/policy/<id>?human",
            "affected_resources": {"slm_policies": names},
            "help_url": "https://ela.st/fix-recent-snapshots",
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const NOW: i64 = 1_764_781_200_000; // 2025-12-03T17:00:00Z

    #[test]
    fn a_run_name_resolves_date_math_and_gets_a_unique_lowercase_suffix() {
        let a = run_snapshot_name("<nightly-{now/d}>", NOW, [0xAB; 16]).unwrap();
        let b = run_snapshot_name("<nightly-{now/d}>", NOW, [0x01; 16]).unwrap();
        assert!(a.starts_with("nightly-2025.12.03-"), "{a}");
        assert_ne!(a, b);
        let suffix = &a["nightly-2025.12.03-".len()..];
        assert_eq!(suffix.len(), 22, "{a}");
        assert_eq!(suffix, suffix.to_lowercase());
        assert!(crate::core::es::names::snapshot_name_problem(&a).is_none());
        assert_eq!(
            run_snapshot_name("plain", NOW, [0; 16]).unwrap(),
            "plain-aaaaaaaaaaaaaaaaaaaaaa"
        );
        assert!(run_snapshot_name("<bad-{now/d>", NOW, [0; 16]).is_err());
    }

    #[test]
    fn the_health_indicator_names_what_is_wrong() {
        let none = health_indicator(OperationMode::Running, 0, &[]);
        assert_eq!(none["status"], "green");
        let ok = health_indicator(OperationMode::Running, 2, &[]);
        assert_eq!(ok["status"], "green");
        assert_eq!(ok["details"]["policies"], 2);
        let stopped = health_indicator(OperationMode::Stopped, 2, &[]);
        assert_eq!(stopped["status"], "yellow");
        assert_eq!(stopped["details"]["slm_status"], "STOPPED");
        let sick = health_indicator(
            OperationMode::Running,
            2,
            &[Unhealthy {
                policy: "nightly".into(),
                invocations_since_last_success: 3,
            }],
        );
        assert_eq!(sick["status"], "yellow");
        assert_eq!(
            sick["details"]["unhealthy_policies"]["invocations_since_last_success"]["nightly"],
            3
        );
        assert_eq!(
            sick["diagnosis"][0]["affected_resources"]["slm_policies"][0],
            "nightly"
        );
    }

    #[test]
    fn stats_take_elasticsearchs_shape() {
        let g = GlobalStats {
            retention_runs: 2,
            retention_deletion_time_millis: 1500,
            total_snapshots_taken: 7,
            ..GlobalStats::default()
        };
        let p = PolicyStats {
            snapshots_taken: 5,
            snapshots_deleted: 1,
            ..PolicyStats::default()
        };
        let v = stats_json(&g, &[("nightly", p)]);
        assert_eq!(v["retention_deletion_time"], "1.5s");
        assert_eq!(v["total_snapshots_taken"], 7);
        assert_eq!(v["policy_stats"][0]["policy"], "nightly");
        assert_eq!(v["policy_stats"][0]["snapshots_deleted"], 1);
        let inv = Invocation {
            snapshot_name: "s".into(),
            start_time: NOW,
            time: NOW + 1,
            details: Some("boom".into()),
        };
        assert_eq!(inv.to_json()["details"], "boom");
        assert_eq!(inv.to_json()["time_string"], "2025-12-03T17:00:00.001Z");
    }
}
