//! Retention on the node: for each policy with a `retention` section, the
//! core's `retention_plan` over its repository's snapshots (only the
//! policy's own; a snapshot still being taken is never a candidate), and
//! the plan's deletions made through the node's one delete path. Every
//! deletion goes to the history with the plan's reason, and the counters
//! of `GET /_slm/stats` move.

use std::time::Instant;

use jiff::tz::TimeZone;

use crate::core::es::slm_policy::SlmPolicy;
use crate::core::slm::retention::{retention_plan, Plan};
use crate::node::reply::EsError;
use crate::node::routes::snapshots::{delete_snapshots, registered_reader};
use crate::node::server::Shared;

use super::history::{Entry, Operation};

/// One pass over every policy with retention. An error is returned only
/// when some policy's retention failed (the others still ran).
pub async fn run_retention(node: &Shared) -> Result<(), EsError> {
    let began = Instant::now();
    let policies: Vec<(String, SlmPolicy, TimeZone)> = {
        let state = node.slm.lock().await;
        state
            .policies
            .iter()
            .filter(|(_, p)| p.parsed.retention.is_some())
            .map(|(id, p)| (id.clone(), p.parsed.clone(), p.tz.clone()))
            .collect()
    };
    let mut first_error = None;
    for (id, policy, tz) in policies {
        if let Err(e) = policy_retention(node, &id, &policy, &tz).await {
            eprintln!("snapkeep node: retention of policy [{id}]: {}", e.reason);
            first_error.get_or_insert(e);
        }
    }
    let mut state = node.slm.lock().await;
    state.stats.retention_runs += 1;
    state.stats.retention_failed += u64::from(first_error.is_some());
    state.stats.retention_deletion_time_millis += began.elapsed().as_millis() as u64;
    node.slm.save_or_report(&state).await;
    first_error.map_or(Ok(()), Err)
}

async fn policy_retention(
    node: &Shared,
    id: &str,
    policy: &SlmPolicy,
    tz: &TimeZone,
) -> Result<(), EsError> {
    let Some(rules) = &policy.retention else {
        return Ok(());
    };
    let repo = &policy.repository;
    let plan = plan(node, id, policy, rules, tz).await?;
    let doomed: Vec<(String, String)> = plan
        .deletions()
        .map(|d| (d.name.clone(), d.reason.clone()))
        .collect();
    if doomed.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = doomed.iter().map(|(n, _)| n.clone()).collect();
    let deleted = delete_snapshots(node, repo, &names).await;
    let now = node.slm.now();
    let n = names.len() as u64;
    {
        let mut state = node.slm.lock().await;
        let ok = deleted.is_ok();
        if ok {
            state.stats.total_snapshots_deleted += n;
        } else {
            state.stats.total_snapshot_deletion_failures += n;
        }
        if let Some(p) = state.policies.get_mut(id) {
            if ok {
                p.record.stats.snapshots_deleted += n;
            } else {
                p.record.stats.snapshot_deletion_failures += n;
            }
        }
        node.slm.save_or_report(&state).await;
    }
    let details = deleted.as_ref().err().map(|e| e.to_json().to_string());
    for (name, reason) in doomed {
        node.slm.record(Entry {
            timestamp: now,
            policy: id.to_string(),
            repository: repo.clone(),
            operation: Operation::Delete,
            snapshot_name: Some(name),
            slot: None,
            success: deleted.is_ok(),
            reason: Some(reason),
            error_details: details.clone(),
        });
    }
    deleted
}

/// The plan over the repository's stored snapshots, leaving out any the
/// node is taking now.
async fn plan(
    node: &Shared,
    id: &str,
    policy: &SlmPolicy,
    rules: &crate::core::slm::retention::Retention,
    tz: &TimeZone,
) -> Result<Plan, EsError> {
    let repo = &policy.repository;
    let reader = registered_reader(node, repo).await?;
    let root = reader
        .root()
        .await
        .map_err(|e| EsError::repository(repo, &e.to_string()))?;
    let running: Vec<String> = node
        .running
        .of(Some(repo))
        .iter()
        .map(|r| r.snapshot.clone())
        .collect();
    let mut candidates = Vec::with_capacity(root.snapshots.len());
    for s in &root.snapshots {
        if running.contains(&s.snapshot) {
            continue;
        }
        candidates.push(
            reader
                .retention_candidate(s)
                .await
                .map_err(|e| EsError::repository(repo, &e.to_string()))?,
        );
    }
    Ok(retention_plan(&candidates, id, rules, tz, node.slm.now()))
}
