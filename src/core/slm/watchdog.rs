//! The edge watchdog's decisions and records: which repositories ask the
//! edge to run retention (`slm/edge`), which snapshots that retention
//! removes from a root, and what the last watchdog run saw
//! (`slm/watchdog`). The Worker's cron reads and writes these objects;
//! a node or the CLI can read them back.
//!
//! Retention at the edge removes snapshots from the root only (a
//! [`RootChange::Rewrite`] with no index change, as deletes commit) and
//! leaves their data to a node's `repo cleanup`. The new root is meant to
//! be committed on exactly the generation it was planned from (a
//! create-only put of generation N+1): a concurrent delete could
//! otherwise have removed a snapshot the plan counted on keeping, such
//! as the newest SUCCESS one.

use std::collections::BTreeSet;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::core::format::manifest::{SnapshotState, SnapshotSummary};
use crate::core::format::root::{Root, RootChange, RootConflict};
use crate::core::slm::health::{PolicyHealth, Status};
use crate::core::slm::retention::{retention_plan, Candidate, Outcome, Plan, Retention};

/// The repository's opt-in: `{"format":1,"retention":true}`.
pub const EDGE_SETTINGS_KEY: &str = "slm/edge";
/// What the last watchdog run saw and did (overwritten by each run).
pub const WATCHDOG_REPORT_KEY: &str = "slm/watchdog";

/// The record format this code writes and reads.
pub const WATCHDOG_FORMAT: u32 = 1;

/// A repository's settings for the edge Worker. Absent means the defaults:
/// the watchdog reports health and deletes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeSettings {
    pub format: u32,
    /// Run each policy's retention from the Worker's cron.
    #[serde(default)]
    pub retention: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeSettingsError {
    #[error("edge settings [{EDGE_SETTINGS_KEY}] are not valid JSON: {0}")]
    Json(String),
    #[error("edge settings [{EDGE_SETTINGS_KEY}] have format {0}; this snapkeep reads format {WATCHDOG_FORMAT}")]
    Format(u32),
}

impl EdgeSettings {
    pub fn new(retention: bool) -> EdgeSettings {
        EdgeSettings {
            format: WATCHDOG_FORMAT,
            retention,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("settings always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<EdgeSettings, EdgeSettingsError> {
        let s: EdgeSettings =
            serde_json::from_slice(bytes).map_err(|e| EdgeSettingsError::Json(e.to_string()))?;
        if s.format != WATCHDOG_FORMAT {
            return Err(EdgeSettingsError::Format(s.format));
        }
        Ok(s)
    }
}

/// Whether a root summary lacks the policy that made it and must be
/// completed from its manifest: a summary that lost its `policy` to an
/// older writer's rebase also lacks the manifest binding.
pub fn needs_manifest(s: &SnapshotSummary) -> bool {
    s.policy.is_none() && s.manifest.is_none()
}

/// A root summary as retention and health see it; `manifest_policy` is the
/// manifest's `metadata.policy` where [`needs_manifest`] says to read it.
pub fn candidate(s: &SnapshotSummary, manifest_policy: Option<String>) -> Candidate {
    Candidate {
        name: s.snapshot.clone(),
        policy: s.policy.clone().or(manifest_policy),
        outcome: match s.state {
            SnapshotState::Success => Outcome::Success,
            SnapshotState::Partial => Outcome::Partial,
            SnapshotState::Failed => Outcome::Failed,
        },
        start_ms: s.start_time_in_millis,
        end_ms: s.end_time_in_millis,
        pinned: None,
    }
}

/// One policy's retention rules, its zone resolved by the shell.
#[derive(Debug, Clone)]
pub struct PolicyRules<'a> {
    pub id: &'a str,
    pub rules: &'a Retention,
    pub tz: &'a TimeZone,
}

/// Each policy's plan over the root's snapshots, and the names every plan
/// together deletes.
pub fn plan_all(
    policies: &[PolicyRules<'_>],
    snapshots: &[Candidate],
    clock_ms: i64,
) -> (Vec<(String, Plan)>, BTreeSet<String>) {
    let plans: Vec<(String, Plan)> = policies
        .iter()
        .map(|p| {
            let plan = retention_plan(snapshots, p.id, p.rules, p.tz, clock_ms);
            (p.id.to_string(), plan)
        })
        .collect();
    let doomed = plans
        .iter()
        .flat_map(|(_, plan)| plan.deletions().map(|d| d.name.clone()))
        .collect();
    (plans, doomed)
}

/// The root that removes `doomed` from `root`, for a create-only put at
/// the next generation; `None` when there is nothing to remove.
pub fn retention_root(
    root: &Root,
    doomed: &BTreeSet<String>,
) -> Result<Option<Root>, RootConflict> {
    if doomed.is_empty() {
        return Ok(None);
    }
    let change = RootChange::Rewrite {
        remove_snapshots: doomed.iter().cloned().collect(),
        remove_index_files: vec![],
        add_index_files: vec![],
        known_snapshots: root.snapshots.iter().map(|s| s.uuid.clone()).collect(),
    };
    root.apply(&change).map(Some)
}

/// What retention did for one policy in a watchdog run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionOutcome {
    pub policy: String,
    /// Removed from the root by this run.
    pub deleted: Vec<String>,
    /// How many of the policy's snapshots the plan keeps.
    pub kept: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub future_dated: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RetentionOutcome {
    /// A committed plan's outcome.
    pub fn of(policy: &str, plan: &Plan) -> RetentionOutcome {
        RetentionOutcome {
            policy: policy.to_string(),
            deleted: plan.deletions().map(|d| d.name.clone()).collect(),
            kept: plan.decisions.iter().filter(|d| d.keep).count(),
            future_dated: plan.future_dated.clone(),
            error: None,
        }
    }

    pub fn failed(policy: &str, error: String) -> RetentionOutcome {
        RetentionOutcome {
            policy: policy.to_string(),
            deleted: vec![],
            kept: 0,
            future_dated: vec![],
            error: Some(error),
        }
    }
}

/// The `slm/watchdog` record: one repository's view from the last run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchdogReport {
    pub format: u32,
    pub ran_at_millis: i64,
    /// The cron expression that fired the run.
    pub cron: String,
    pub status: Status,
    pub policies: Vec<PolicyHealth>,
    /// Whether the repository asked for retention at the edge.
    pub retention_enabled: bool,
    pub retention: Vec<RetentionOutcome>,
    /// Records or objects the run could not read.
    pub problems: Vec<String>,
}

impl WatchdogReport {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("reports always serialize")
    }
}

/// A repository's status: `yellow` when a policy is unhealthy or a
/// record could not be read (its health is then unknown).
pub fn repository_status(policies: &[PolicyHealth], problems: &[String]) -> Status {
    let unreadable = (!problems.is_empty()).then_some(Status::Yellow);
    Status::worst(policies.iter().map(|p| p.status).chain(unreadable))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::slm::health::{policy_health, Watched};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const DAY: i64 = 86_400_000;
    const T0: i64 = 1_767_225_600_000;

    fn summary(
        name: &str,
        policy: Option<&str>,
        day: i64,
        state: SnapshotState,
    ) -> SnapshotSummary {
        SnapshotSummary {
            snapshot: name.into(),
            uuid: format!("uuid-{name}"),
            state,
            start_time_in_millis: T0 + day * DAY,
            end_time_in_millis: T0 + day * DAY + 60_000,
            indices: vec![],
            include_global_state: false,
            size_in_bytes: 0,
            new_bytes: 0,
            new_stored_bytes: 0,
            files: 0,
            failures: 0,
            manifest: None,
            policy: policy.map(str::to_string),
        }
    }

    fn root(snapshots: Vec<SnapshotSummary>) -> Root {
        Root {
            generation: 7,
            snapshots,
            ..Root::empty()
        }
    }

    #[test]
    fn settings_round_trip_and_refuse_damage_or_a_newer_format() {
        let on = EdgeSettings::new(true);
        assert_eq!(EdgeSettings::decode(&on.encode()), Ok(on));
        assert_eq!(
            EdgeSettings::decode(br#"{"format":1}"#),
            Ok(EdgeSettings::new(false))
        );
        assert!(matches!(
            EdgeSettings::decode(b"yes"),
            Err(EdgeSettingsError::Json(_))
        ));
        assert_eq!(
            EdgeSettings::decode(br#"{"format":2,"retention":true}"#),
            Err(EdgeSettingsError::Format(2))
        );
    }

    #[test]
    fn a_summary_without_its_policy_is_completed_from_the_manifest() {
        let mut s = summary("a", None, 0, SnapshotState::Partial);
        assert!(needs_manifest(&s));
        let c = candidate(&s, Some("nightly".into()));
        assert_eq!(c.policy.as_deref(), Some("nightly"));
        assert_eq!(c.outcome, Outcome::Partial);
        assert_eq!((c.start_ms, c.end_ms), (T0, T0 + 60_000));
        s.policy = Some("hourly".into());
        assert!(!needs_manifest(&s));
        assert_eq!(candidate(&s, None).policy.as_deref(), Some("hourly"));
    }

    #[test]
    fn retention_removes_exactly_the_plans_deletions_from_the_root() {
        let mut snapshots: Vec<SnapshotSummary> = (0..6)
            .map(|d| {
                summary(
                    &format!("n-{d}"),
                    Some("nightly"),
                    d,
                    SnapshotState::Success,
                )
            })
            .collect();
        snapshots.push(summary("w-0", Some("weekly"), 0, SnapshotState::Success));
        snapshots.push(summary("manual", None, 0, SnapshotState::Success));
        let before = root(snapshots);
        let candidates: Vec<Candidate> = before
            .snapshots
            .iter()
            .map(|s| candidate(s, None))
            .collect();
        let keep_two = Retention {
            max_count: Some(2),
            ..Retention::default()
        };
        let policies = [PolicyRules {
            id: "nightly",
            rules: &keep_two,
            tz: &TimeZone::UTC,
        }];
        let (plans, doomed) = plan_all(&policies, &candidates, T0 + 10 * DAY);
        assert_eq!(
            doomed.iter().map(String::as_str).collect::<Vec<_>>(),
            ["n-0", "n-1", "n-2", "n-3"]
        );
        let outcome = RetentionOutcome::of("nightly", &plans[0].1);
        assert_eq!(outcome.kept, 2);
        assert_eq!(outcome.deleted, ["n-3", "n-2", "n-1", "n-0"]);

        let next = retention_root(&before, &doomed).unwrap().unwrap();
        assert_eq!(next.generation, 8);
        let left: Vec<&str> = next.snapshots.iter().map(|s| s.snapshot.as_str()).collect();
        assert_eq!(left, ["n-4", "n-5", "w-0", "manual"]);
        assert_eq!(next.index_files, before.index_files);
        assert_eq!(retention_root(&before, &BTreeSet::new()), Ok(None));
    }

    #[test]
    fn a_read_only_repository_refuses_edge_retention() {
        let mut r = root(vec![summary("a", Some("p"), 0, SnapshotState::Success)]);
        r.settings.readonly = true;
        let doomed = BTreeSet::from(["a".to_string()]);
        assert_eq!(retention_root(&r, &doomed), Err(RootConflict::ReadOnly));
    }

    #[test]
    fn a_repository_is_yellow_when_a_policy_is_unhealthy_or_a_record_unreadable() {
        let watched = |threshold| Watched {
            id: "p",
            threshold_ms: Some(threshold),
            modified_ms: T0,
        };
        let fine = policy_health(watched(2 * DAY), &[], T0 + DAY);
        let stale = policy_health(watched(DAY / 2), &[], T0 + DAY);
        assert_eq!(
            repository_status(std::slice::from_ref(&fine), &[]),
            Status::Green
        );
        assert_eq!(repository_status(&[], &[]), Status::Green);
        assert_eq!(
            repository_status(&[fine.clone(), stale], &[]),
            Status::Yellow
        );
        assert_eq!(
            repository_status(&[fine], &["slm/policies/x: not JSON".into()]),
            Status::Yellow
        );
    }
}
