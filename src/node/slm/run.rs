//! One run of a policy, from its start to its recorded end. A run is a
//! snapshot taken through the node's create path (running list, hooks,
//! rate limits) with the policy's `config` and `metadata.policy = <id>`;
//! its outcome updates the policy's last success or failure, the counters
//! and the history, then wakes the scheduler (a queued slot may be due).
//!
//! [`run_slot`] is the one place a policy's snapshot starts, scheduled or
//! not; a scheduled one claims its slot in the repository first and
//! carries the claim's fence to its commit (`repo::slot_claims`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::core::es::create_request::CreateSnapshotRequest;
use crate::core::format::manifest::{SnapshotState, POLICY_METADATA_KEY};
use crate::core::slm::claims::Release;
use crate::core::slm::report::{run_snapshot_name, Invocation};
use crate::core::slm::stored::Follow;
use crate::error::Error;
use crate::native::backup::SnapshotOutcome;
use crate::native::clock::{SystemClock, TokioSleep};
use crate::node::reply::EsError;
use crate::node::routes::create_snapshot::{described, start, Started};
use crate::node::routes::snapshots::registered_reader;
use crate::node::server::Shared;
use crate::repo::slot_claims::{with_claim, SlotClaim, SlotClaimer, Turn};

use super::history::{Entry, Operation};

/// The metadata key a scheduled run's snapshot records its slot under
/// (the slot's fire time, milliseconds since the epoch).
pub const SLOT_METADATA_KEY: &str = "slm_slot";

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
///
/// A scheduled slot is first claimed in the repository, so that of the
/// nodes holding the policy one runs it, and the snapshot carries the
/// claim's fence, so that it can only commit if no node committed the
/// slot (or a newer one) before it. A slot another node handled ends
/// here, as a skip.
pub async fn run_slot(node: &Shared, id: &str, slot_ms: Option<i64>) -> Result<String, EsError> {
    if let Some(slot) = slot_ms {
        match super::follow::follow_policy(node, id).await {
            Follow::Keep => {}
            // Dropped: the policy, and the reservation with it, is gone.
            Follow::Drop => return Ok(String::new()),
            Follow::Adopt => {
                let repository = {
                    let state = node.slm.lock().await;
                    let p = state.policies.get(id);
                    p.map(|p| p.parsed.repository.clone()).unwrap_or_default()
                };
                let why = "not run: the policy was changed through another node";
                handled_elsewhere(node, id, &repository, slot, why).await;
                return Ok(String::new());
            }
        }
    }
    let now = node.slm.now();
    let prepared = prepare(node, id, now).await;
    let (repository, name, request, mut metadata) = match prepared {
        Ok(p) => p,
        Err(e) => {
            let repo = String::new();
            end(node, id, &repo, "", now, slot_ms, Err(e.clone())).await;
            return Err(e);
        }
    };
    let claim = match slot_ms {
        None => None,
        Some(slot) => match claim(node, id, &repository, slot).await {
            Ok(Turn::Mine(claim)) => Some(claim),
            Ok(Turn::Done(_)) => {
                handled_elsewhere(node, id, &repository, slot, "run by another node").await;
                return Ok(String::new());
            }
            Err(e) => {
                end(node, id, &repository, "", now, slot_ms, Err(e.clone())).await;
                return Err(e);
            }
        },
    };
    let fence = claim.as_ref().map(SlotClaim::fence);
    if let Some(slot) = slot_ms {
        // Which slot a snapshot ran for, for audits across nodes.
        metadata.insert(SLOT_METADATA_KEY.to_string(), slot.to_string());
    }
    match start(node, &repository, &name, &request, metadata, fence).await {
        Ok(started) => {
            {
                let mut state = node.slm.lock().await;
                if let Some(p) = state.policies.get_mut(id) {
                    p.runs.push((name.clone(), now));
                }
            }
            let run = Finishing {
                id: id.to_string(),
                started,
                start_ms: now,
                slot_ms,
                claim,
            };
            tokio::spawn(finish(node.clone(), run));
            Ok(name)
        }
        Err(e) => {
            if let Some(claim) = &claim {
                let _ = claim.release(Release::Failed).await;
            }
            end(node, id, &repository, &name, now, slot_ms, Err(e.clone())).await;
            Err(e)
        }
    }
}

/// This process's name in slot claims: the node and a uuid per start, so
/// a restarted node's old claims are taken over like any other's.
fn holder(node: &Shared) -> &'static str {
    static HOLDER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOLDER.get_or_init(|| format!("{}/{}", node.identity.id, uuid::Uuid::new_v4().simple()))
}

/// Waits for slot `slot_ms` of policy `id` to be this node's to run, or
/// handled by another.
async fn claim(node: &Shared, id: &str, repository: &str, slot_ms: i64) -> Result<Turn, EsError> {
    let reader = registered_reader(node, repository).await?;
    let claimer = SlotClaimer::new(reader, Arc::new(SystemClock), holder(node));
    claimer
        .claim_slot(id, slot_ms, &TokioSleep)
        .await
        .map_err(|e| EsError::repository(repository, &format!("cannot claim slot {slot_ms}: {e}")))
}

/// A slot this node did not run after all: another node ran it, or
/// committed it first. Not a failure; the history says why.
async fn handled_elsewhere(node: &Shared, id: &str, repository: &str, slot_ms: i64, why: &str) {
    {
        let mut state = node.slm.lock().await;
        if let Some(p) = state.policies.get_mut(id) {
            p.active = p.active.saturating_sub(1);
        }
    }
    node.slm.record(Entry {
        timestamp: node.slm.now(),
        policy: id.to_string(),
        repository: repository.to_string(),
        operation: Operation::Skip,
        snapshot_name: None,
        slot: Some(slot_ms),
        success: true,
        reason: Some(format!("slot {why}")),
        error_details: None,
    });
    node.slm.wake.notify_one();
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

/// A started run and what its end needs.
struct Finishing {
    id: String,
    started: Started,
    start_ms: i64,
    slot_ms: Option<i64>,
    claim: Option<SlotClaim>,
}

/// Waits for a run's end (its claim beating meanwhile) and records it. A
/// run the fence refused (another node committed the slot first) is not a
/// failure: its uploads are left to cleanup like an aborted snapshot's.
async fn finish(node: Shared, run: Finishing) {
    let Finishing {
        id,
        started,
        start_ms,
        slot_ms,
        claim,
    } = run;
    let repository = started.repository.clone();
    let name = started.name.clone();
    let raw = match &claim {
        Some(claim) => with_claim(claim, &TokioSleep, started.raw_outcome()).await,
        None => started.raw_outcome().await,
    };
    if let (Some(claim), Some(outcome)) = (&claim, &raw) {
        claim.finish(outcome).await;
    }
    if let (Some(Err(Error::SlotTaken { .. })), Some(slot)) = (&raw, slot_ms) {
        {
            let mut state = node.slm.lock().await;
            if let Some(p) = state.policies.get_mut(&id) {
                p.runs.retain(|(n, _)| n != &name);
            }
        }
        handled_elsewhere(
            &node,
            &id,
            &repository,
            slot,
            "committed by another node first",
        )
        .await;
        return;
    }
    let outcome = described(&repository, &name, raw);
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
