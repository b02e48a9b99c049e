//! Elasticsearch's `_slm` API (and the `slm` health indicator): policies
//! put, read and deleted; runs on demand; retention on demand; the
//! operation mode; counters; and snapkeep's `_history` listing. The work
//! is `node::slm`'s; these handlers parse, check and answer.

use axum::body::Body;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::core::es::params::Params;
use crate::core::es::slm_policy::{policy_json, SlmPolicy};
use crate::core::es::units::{iso_millis, time_value};
use crate::core::slm::health::{judge, LastSuccess, Watched};
use crate::core::slm::report::{
    health_indicator, policy_stats_json, stats_json, OperationMode, Unhealthy,
};
use crate::core::slm::stored::{policy_key, StoredPolicy};
use crate::native::tz;
use crate::node::body;
use crate::node::open;
use crate::node::reply::{ok, EsError};
use crate::node::server::Shared;
use crate::node::slm::records::{Policy, PolicyRecord, SlmState};
use crate::node::slm::run::{policy_missing, reserve, run_slot};
use crate::node::slm::Slm;
use crate::storage::{PutMode, Storage};

type Pairs = Vec<(String, String)>;

fn answer(result: Result<Response, EsError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

fn acknowledged() -> Response {
    ok(json!({"acknowledged": true}))
}

/// `PUT /_slm/policy/<id>`.
pub async fn put(
    State(node): State<Shared>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
    body: Body,
) -> Response {
    answer(put_inner(node, id, uri.path().to_string(), q, body).await)
}

async fn put_inner(
    node: Shared,
    id: String,
    path: String,
    q: Pairs,
    body: Body,
) -> Result<Response, EsError> {
    Params(&q).check_known(&path, &["master_timeout", "timeout"])?;
    let bytes = body::read(body, node.settings.max_body_bytes).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(EsError::body_required());
    }
    let now = node.slm.now();
    let policy = SlmPolicy::parse(&id, &bytes, now)?;
    let zone = tz::zone(&policy.timezone).ok_or_else(|| {
        EsError::action_request_validation(&[format!(
            "invalid timezone [{}]: not an IANA time zone name",
            policy.timezone
        )])
    })?;
    policy
        .schedule
        .check(&zone, now, node.settings.slm_minimum_interval_ms)
        .map_err(|e| EsError::action_request_validation(&[e.to_string()]))?;
    let reg = super::registered(&node, &policy.repository)
        .await
        .map_err(|_| {
            EsError::illegal_argument(format!("no such repository [{}]", policy.repository))
        })?;
    let mut state = node.slm.lock().await;
    let old = state.policies.get(&id).map(|p| p.record.clone());
    let store = open::store(&reg, false)
        .map_err(|e| EsError::repository(&policy.repository, &e.to_string()))?;
    let in_repository = repository_record(store.as_ref(), &id).await;
    let stored = match in_repository {
        // Another node put this very policy (this node holds no record
        // of it, or an older one): adopt that record, so every node
        // holding it anchors interval slots at the same instant and
        // computes the same slot ids (their claims and fence then meet).
        // A put again on the node that holds the record is a new version,
        // as in ES; the other nodes adopt it when it is put on them.
        Some(r)
            if r.policy == policy_json(&policy)
                && old.as_ref().is_none_or(|o| o.stored.version < r.version) =>
        {
            r
        }
        other => {
            let version = old
                .as_ref()
                .map(|r| r.stored.version)
                .max(other.map(|r| r.version))
                .map_or(1, |v| v + 1);
            let stored = StoredPolicy::new(&id, version, now, &policy);
            // The repository's record first: a repository that refuses
            // it refuses the put, and the node's state never names a
            // policy its repository lacks.
            store
                .put(&policy_key(&id), stored.encode().into(), PutMode::Overwrite)
                .await
                .map_err(|e| EsError::repository(&policy.repository, &e.to_string()))?;
            stored
        }
    };
    let moved_from = old
        .as_ref()
        .map(|r| {
            r.stored.policy["repository"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .filter(|r| *r != policy.repository);
    let record = match old {
        Some(r) => PolicyRecord { stored, ..r },
        None => PolicyRecord {
            stored,
            last_success: None,
            last_failure: None,
            stats: Default::default(),
            invocations_since_last_success: 0,
            handled_ms: None,
            queued_ms: None,
        },
    };
    let mut fresh = Policy::from_record(record).map_err(EsError::illegal_argument)?;
    if let Some(kept) = state.policies.get(&id) {
        fresh.active = kept.active;
        fresh.runs = kept.runs.clone();
    }
    state.policies.insert(id.clone(), fresh);
    node.slm.save(&state).await?;
    drop(state);
    if let Some(old_repo) = moved_from {
        remove_record(&node, &old_repo, &id).await;
    }
    node.slm.wake.notify_one();
    Ok(acknowledged())
}

/// Deletes policy `id`'s record from `repo`; a failure is reported, not
/// returned (the policy is gone from the node either way).
async fn remove_record(node: &Shared, repo: &str, id: &str) {
    let Ok(reg) = super::registered(node, repo).await else {
        return;
    };
    let removed = match open::store(&reg, false) {
        Ok(store) => store
            .delete(&policy_key(id))
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = removed {
        eprintln!("snapkeep node: cannot remove policy [{id}]'s record from [{repo}]: {e}");
    }
}

/// The policy record of `id` the repository holds, if it holds a valid one.
async fn repository_record(store: &dyn Storage, id: &str) -> Option<StoredPolicy> {
    let key = policy_key(id);
    let bytes = store.get(&key, None).await.ok()?;
    StoredPolicy::decode(&key, &bytes)
        .ok()
        .map(|(record, _)| record)
}

/// `DELETE /_slm/policy/<id>`.
pub async fn delete(
    State(node): State<Shared>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    answer(delete_inner(node, id, uri.path().to_string(), q).await)
}

async fn delete_inner(
    node: Shared,
    id: String,
    path: String,
    q: Pairs,
) -> Result<Response, EsError> {
    Params(&q).check_known(&path, &["master_timeout", "timeout"])?;
    let mut state = node.slm.lock().await;
    let removed = state
        .policies
        .remove(&id)
        .ok_or_else(|| policy_missing(&id))?;
    if let Err(e) = node.slm.save(&state).await {
        state.policies.insert(id, removed);
        return Err(e);
    }
    drop(state);
    remove_record(&node, &removed.parsed.repository, &id).await;
    node.slm.wake.notify_one();
    Ok(acknowledged())
}

/// `GET /_slm/policy` and `GET /_slm/policy/<id>[,<id>...]`.
pub async fn get_all(
    State(node): State<Shared>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    answer(get_inner(node, None, uri.path().to_string(), q).await)
}

pub async fn get(
    State(node): State<Shared>,
    Path(ids): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    answer(get_inner(node, Some(ids), uri.path().to_string(), q).await)
}

async fn get_inner(
    node: Shared,
    ids: Option<String>,
    path: String,
    q: Pairs,
) -> Result<Response, EsError> {
    Params(&q).check_known(&path, &["master_timeout", "timeout", "human"])?;
    let state = node.slm.lock().await;
    let wanted: Vec<String> = match ids.as_deref() {
        None | Some("_all") | Some("*") => state.policies.keys().cloned().collect(),
        Some(list) => list.split(',').map(str::to_string).collect(),
    };
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|id| !state.policies.contains_key(*id))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(policy_missing(&missing.join(",")));
    }
    let now = node.slm.now();
    let mut out = Map::new();
    for id in wanted {
        let p = &state.policies[&id];
        out.insert(id.clone(), describe(&node, &id, p, now));
    }
    Ok(ok(Value::Object(out)))
}

/// One policy as `GET /_slm/policy` shows it.
fn describe(node: &Shared, id: &str, p: &Policy, now: i64) -> Value {
    let r = &p.record;
    let modified = r.stored.modified_date_millis;
    let mut v = json!({
        "version": r.stored.version,
        "modified_date": iso_millis(modified),
        "modified_date_millis": modified,
        "policy": r.stored.policy,
    });
    if let Some(s) = &r.last_success {
        v["last_success"] = s.to_json();
    }
    if let Some(f) = &r.last_failure {
        v["last_failure"] = f.to_json();
    }
    if let Some(next) = p.next_execution(now) {
        v["next_execution"] = json!(iso_millis(next));
        v["next_execution_millis"] = json!(next);
    }
    if let Some((name, start)) = p.runs.first() {
        let live = node
            .running
            .of(Some(&p.parsed.repository))
            .into_iter()
            .find(|s| &s.snapshot == name);
        let (uuid, run_state) = match live {
            Some(s) => {
                let st = s.status();
                (st.uuid, st.state.as_str())
            }
            None => ("_na_".to_string(), "INIT"),
        };
        v["in_progress"] = json!({
            "name": name,
            "uuid": uuid,
            "state": run_state,
            "start_time": iso_millis(*start),
            "start_time_millis": start,
        });
    }
    v["stats"] = policy_stats_json(id, &r.stats);
    if let Some(threshold) = p.parsed.unhealthy_if_no_snapshot_within_ms {
        let (healthy, reason) = policy_health(id, p, now);
        v["health"] = json!({
            "status": if healthy { "green" } else { "yellow" },
            "unhealthy_if_no_snapshot_within": time_value(threshold),
            "invocations_since_last_success": r.invocations_since_last_success,
            "reason": reason,
        });
    }
    v
}

/// The policy's health by the rule the edge watchdog uses too.
fn policy_health(id: &str, p: &Policy, now: i64) -> (bool, String) {
    let r = &p.record;
    let watched = Watched {
        id,
        threshold_ms: p.parsed.unhealthy_if_no_snapshot_within_ms,
        modified_ms: r.stored.modified_date_millis,
    };
    let last = r.last_success.as_ref().map(|s| LastSuccess {
        snapshot_name: s.snapshot_name.clone(),
        start_time: s.start_time,
        time: s.time,
    });
    judge(watched, last.as_ref(), now)
}

/// `POST /_slm/policy/<id>/_execute`: a run now, in the background.
pub async fn execute(
    State(node): State<Shared>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    answer(execute_inner(node, id, uri.path().to_string(), q).await)
}

async fn execute_inner(
    node: Shared,
    id: String,
    path: String,
    q: Pairs,
) -> Result<Response, EsError> {
    Params(&q).check_known(&path, &["master_timeout", "timeout"])?;
    reserve(&node, &id).await?;
    let name = run_slot(&node, &id, None).await?;
    Ok(ok(json!({"snapshot_name": name})))
}

/// `GET /_slm/policy/<id>/_history` (snapkeep): runs, skips and
/// deletions, newest first.
pub async fn history(
    State(node): State<Shared>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    answer(history_inner(node, id, uri.path().to_string(), q).await)
}

async fn history_inner(
    node: Shared,
    id: String,
    path: String,
    q: Pairs,
) -> Result<Response, EsError> {
    Params(&q).check_known(&path, &["master_timeout"])?;
    let known = node.slm.lock().await.policies.contains_key(&id);
    let entries = node.slm.history_of(&id);
    if !known && entries.is_empty() {
        return Err(policy_missing(&id));
    }
    let listed = serde_json::to_value(&entries).unwrap_or_default();
    Ok(ok(json!({"policy": id, "history": listed})))
}

/// `POST /_slm/_execute_retention`: answered once retention has run.
pub async fn execute_retention(
    State(node): State<Shared>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    let run = async {
        Params(&q).check_known(uri.path(), &["master_timeout", "timeout"])?;
        crate::node::slm::retention::run_retention(&node).await?;
        Ok::<Response, EsError>(acknowledged())
    };
    answer(run.await)
}

/// `GET /_slm/stats`.
pub async fn stats(State(node): State<Shared>) -> Response {
    let state = node.slm.lock().await;
    let policies: Vec<(&str, _)> = state
        .policies
        .iter()
        .map(|(id, p)| (id.as_str(), p.record.stats))
        .collect();
    ok(stats_json(&state.stats, &policies))
}

/// `POST /_slm/start`.
pub async fn start(State(node): State<Shared>) -> Response {
    answer(set_stopped(&node, false).await)
}

/// `POST /_slm/stop`: no new runs; runs in progress finish (`STOPPING`).
pub async fn stop(State(node): State<Shared>) -> Response {
    answer(set_stopped(&node, true).await)
}

async fn set_stopped(node: &Shared, stopped: bool) -> Result<Response, EsError> {
    let mut state = node.slm.lock().await;
    let was = state.stopped;
    state.stopped = stopped;
    if let Err(e) = node.slm.save(&state).await {
        state.stopped = was;
        return Err(e);
    }
    drop(state);
    node.slm.wake.notify_one();
    Ok(acknowledged())
}

/// `GET /_slm/status`.
pub async fn status(State(node): State<Shared>) -> Response {
    let state = node.slm.lock().await;
    ok(json!({"operation_mode": Slm::mode(&state).name()}))
}

/// `GET /_health_report` and `GET /_health_report/slm`: the `slm`
/// indicator (the only one this node computes).
pub async fn health_report(State(node): State<Shared>) -> Response {
    let state = node.slm.lock().await;
    let indicator = slm_indicator(&state, node.slm.now());
    let status = indicator["status"].clone();
    ok(json!({
        "status": status,
        "cluster_name": node.settings.name,
        "indicators": {"slm": indicator},
    }))
}

fn slm_indicator(state: &SlmState, now: i64) -> Value {
    let sick: Vec<Unhealthy> = state
        .policies
        .iter()
        .filter(|(id, p)| !policy_health(id, p, now).0)
        .map(|(id, p)| Unhealthy {
            policy: id.clone(),
            invocations_since_last_success: p.record.invocations_since_last_success,
        })
        .collect();
    let mode: OperationMode = Slm::mode(state);
    health_indicator(mode, state.policies.len(), &sick)
}
