//! One run of a policy, from its start to its recorded end. A run is a
//! snapshot taken through the node's create path (running list, hooks,
//! rate limits) with the policy's `config` and `metadata.policy = <id>`;
//! its outcome updates the policy's last success or failure, the counters
//! and the history, then wakes the scheduler (a queued slot may be due).
//!
//! [`run_slot`] is the one place a policy's snapshot starts, scheduled or
//! not: claims and fencing of slots across nodes plug in here.

use std::collections::BTreeMap;

use crate::core::es::create_request::CreateSnapshotRequest;
use crate::core::format::manifest::{SnapshotState, POLICY_METADATA_KEY};
use crate::core::slm::report::{run_snapshot_name, Invocation};
use crate::native::backup::SnapshotOutcome;
use crate::node::reply::EsError;
use crate::node::routes::create_snapshot::{start, Started};
use crate::node::server::Shared;

use super::history::{Entry, Operation};

/// ES's 404 for a policy id that is not there.
pub fn policy_missing(ids: &str) -> EsError {
    EsError::resource_not_found(format!(
        "snapshot lifecycle policy or policies [{ids}] not found"
    ))
}

/// Reserves a run of policy `id` (it counts as running from now on, for
/// `overlap` and `STOPPING`); [`run_slot`] must follow.
pub async fn reserve(node: &Shared, id: &str) -> Result<(), EsError> {
    let mut state = node.slm.lock().await;
    let p = state
        .policies
        .get_mut(id)
        .ok_or_else(|| policy_missing(id))?;
    p.active += 1;
    Ok(())
}

/// Starts a reserved run of policy `id` for scheduled slot `slot_ms`
/// (`None`: `_execute`), and returns the snapshot's name once it is
/// listed as running. Its end is recorded in the background. A run that
/// cannot start is recorded as a failure and its error returned.
pub async fn run_slot(node: &Shared, id: &str, slot_ms: Option<i64>) -> Result<String, EsError> {
    let now = node.slm.now();
    let prepared = prepare(node, id, now).await;
    let (repository, name, request, metadata) = match prepared {
        Ok(p) => p,
        Err(e) => {
            let repo = String::new();
            end(node, id, &repo, "", now, slot_ms, Err(e.clone())).await;
            return Err(e);
        }
    };
    match start(node, &repository, &name, &request, metadata).await {
        Ok(started) => {
            {
                let mut state = node.slm.lock().await;
                if let Some(p) = state.policies.get_mut(id) {
                    p.runs.push((name.clone(), now));
                }
            }
            tokio::spawn(finish(node.clone(), id.to_string(), started, now, slot_ms));
            Ok(name)
        }
        Err(e) => {
            end(node, id, &repository, &name, now, slot_ms, Err(e.clone())).await;
            Err(e)
        }
    }
}

type Prepared = (
    String,
    String,
    CreateSnapshotRequest,
    BTreeMap<String, String>,
);

/// The repository, snapshot name, create request and metadata of a run.
async fn prepare(node: &Shared, id: &str, now: i64) -> Result<Prepared, EsError> {
    let policy = {
        let state = node.slm.lock().await;
        let p = state.policies.get(id).ok_or_else(|| policy_missing(id))?;
        p.parsed.clone()
    };
    let name = run_snapshot_name(&policy.name, now, *uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| e.to_es())?;
    let config = serde_json::to_vec(&policy.config).unwrap_or_default();
    let request = CreateSnapshotRequest::parse(&config)?;
    let mut metadata = request.metadata_strings();
    metadata.insert(POLICY_METADATA_KEY.to_string(), id.to_string());
    Ok((policy.repository, name, request, metadata))
}

async fn finish(node: Shared, id: String, started: Started, start_ms: i64, slot_ms: Option<i64>) {
    let repository = started.repository.clone();
    let name = started.name.clone();
    let outcome = started.outcome().await;
    end(&node, &id, &repository, &name, start_ms, slot_ms, outcome).await;
}

/// Why a snapshot that was stored counts as a failed run: Elasticsearch
/// counts a run successful only when every shard was (`SUCCESS`).
fn judged(outcome: Result<SnapshotOutcome, EsError>) -> Result<(), String> {
    match outcome {
        Err(e) => Err(e.to_json().to_string()),
        Ok(out) if out.manifest.state == SnapshotState::Success => Ok(()),
        Ok(out) => Err(format!(
            "snapshot [{}] ended {} with {} failure(s)",
            out.manifest.snapshot,
            out.manifest.state.as_str(),
            out.manifest.failures.len()
        )),
    }
}

/// Records a run's end: last success or failure, counters, history; the
/// run no longer counts as active, and the scheduler is woken.
async fn end(
    node: &Shared,
    id: &str,
    repository: &str,
    name: &str,
    start_ms: i64,
    slot_ms: Option<i64>,
    outcome: Result<SnapshotOutcome, EsError>,
) {
    let verdict = judged(outcome);
    let now = node.slm.now();
    let mut state = node.slm.lock().await;
    let stats = &mut state.stats;
    match &verdict {
        Ok(()) => stats.total_snapshots_taken += 1,
        Err(_) => stats.total_snapshots_failed += 1,
    }
    if let Some(p) = state.policies.get_mut(id) {
        p.active = p.active.saturating_sub(1);
        p.runs.retain(|(n, _)| n != name);
        let invocation = Invocation {
            snapshot_name: name.to_string(),
            start_time: start_ms,
            time: now,
            details: verdict.as_ref().err().cloned(),
        };
        match &verdict {
            Ok(()) => {
                p.record.stats.snapshots_taken += 1;
                p.record.invocations_since_last_success = 0;
                p.record.last_success = Some(invocation);
            }
            Err(_) => {
                p.record.stats.snapshots_failed += 1;
                p.record.invocations_since_last_success += 1;
                p.record.last_failure = Some(invocation);
            }
        }
    }
    node.slm.save_or_report(&state).await;
    drop(state);
    node.slm.record(Entry {
        timestamp: now,
        policy: id.to_string(),
        repository: repository.to_string(),
        operation: Operation::Create,
        snapshot_name: (!name.is_empty()).then(|| name.to_string()),
        slot: slot_ms,
        success: verdict.is_ok(),
        reason: None,
        error_details: verdict.err(),
    });
    node.slm.wake.notify_one();
}
