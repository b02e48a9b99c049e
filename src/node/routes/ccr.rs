//! Cross-cluster replication (`node::ccr`): the leader's changes feed, and
//! a follower index's follow, pause, resume, unfollow, stats and info.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::core::ccr::checkpoint::Point;
use crate::core::ccr::delta::{encode_batch_parts, Ask as DeltaAsk, MAX_ASKS};
use crate::core::ccr::follower::PauseReason;
use crate::core::es::params::Params;
use crate::core::format::naming::validate_name;
use crate::native::clock::now_millis;
use crate::node::ccr::begin::begin;
use crate::node::ccr::blocking;
use crate::node::ccr::follows::Follower;
use crate::node::ccr::leader::{self, parse_point, Ask, DEFAULT_POLL_MS, MAX_POLL_MS};
use crate::node::ccr::request::{parse_follow, parse_forget, parse_resume};
use crate::node::ccr::stats;
use crate::node::reply::{internal, ok, EsError, OwnContentType};
use crate::node::server::Shared;
use crate::node::{body, indices};

type Pairs = Vec<(String, String)>;

fn answer(r: Result<Response, EsError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /<index>/_ccr/changes?after=&follower=&timeout=`: a follower's
/// long-poll read (`leader::changes`).
pub async fn changes(
    State(node): State<Shared>,
    Path(index): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    answer(changes_inner(node, index, uri.path(), q).await)
}

async fn changes_inner(
    node: Shared,
    index: String,
    path: &str,
    q: Pairs,
) -> Result<Response, EsError> {
    let p = Params(&q);
    p.check_known(path, &["after", "held", "follower", "timeout"])?;
    let point = |name: &str| -> Result<Option<Point>, EsError> {
        match p.get(name).filter(|a| !a.is_empty()) {
            None => Ok(None),
            Some(a) => Ok(Some(parse_point(a).ok_or_else(|| {
                EsError::illegal_argument(format!(
                    "[{name}] must be a checkpoint as lineage:seq, not [{a}]"
                ))
            })?)),
        }
    };
    let after = point("after")?;
    // A read made while the follower applies `after` names what it still
    // holds, so the lease that keeps its delta bases stays on that.
    let held = point("held")?.or_else(|| after.clone());
    let follower = p.get("follower").filter(|f| !f.is_empty()).ok_or_else(|| {
        EsError::action_request_validation(&["[follower] is missing: who reads holds the lease"])
    })?;
    let timeout_ms = match p.time("timeout")? {
        None => DEFAULT_POLL_MS,
        Some(t) if t < 0 => MAX_POLL_MS,
        Some(t) => t.min(MAX_POLL_MS),
    };
    let ask = Ask {
        index,
        after,
        held,
        follower: follower.to_string(),
        timeout_ms,
    };
    let changes = leader::changes(&node, ask).await?;
    Ok(ok(
        serde_json::to_value(changes).map_err(|e| internal(e.to_string()))?
    ))
}

/// `POST /<index>/_ccr/deltas[?whole=true]`: a follower's asks (a JSON
/// list of `{"id", "base"}` chunk ids, at most `MAX_ASKS`), answered as
/// `core::ccr::delta`'s binary batch (`ccr::deltas::answer`); with
/// `whole`, a chunk no delta saves enough on is sent as stored.
pub async fn deltas(
    State(node): State<Shared>,
    Path(index): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
    body: Body,
) -> Response {
    answer(deltas_inner(node, index, uri.path(), q, body).await)
}

async fn deltas_inner(
    node: Shared,
    index: String,
    path: &str,
    q: Pairs,
    body: Body,
) -> Result<Response, EsError> {
    let params = Params(&q);
    params.check_known(path, &["whole"])?;
    let whole = params.bool("whole", false)?;
    if !indices::exists(&node.settings.data, &index) {
        return Err(EsError::index_not_found(&index));
    }
    let bytes = body::read(body, node.settings.max_body_bytes).await?;
    let asks: Vec<DeltaAsk> = serde_json::from_slice(&bytes).map_err(|e| {
        EsError::illegal_argument(format!(
            "the body must be a list of {{\"id\", \"base\"}} chunk ids: {e}"
        ))
    })?;
    if asks.len() > MAX_ASKS {
        return Err(EsError::illegal_argument(format!(
            "at most {MAX_ASKS} chunks per request, not {}",
            asks.len()
        )));
    }
    let state = node.state_folder.clone();
    let entries = blocking(move || crate::node::ccr::deltas::answer(&state, &asks, whole))
        .await
        .map_err(internal)?;
    // Sent piece by piece: the stored chunks go out from the buffers they
    // were read into, not copied into one batch first.
    let parts = encode_batch_parts(&entries);
    let length: usize = parts.iter().map(|p| p.len()).sum();
    let stream = futures::stream::iter(parts.into_iter().map(Ok::<_, std::io::Error>));
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response();
    response.extensions_mut().insert(OwnContentType);
    Ok(response)
}

/// `PUT /<follower>/_ccr/follow`.
pub async fn follow(
    State(node): State<Shared>,
    Path(index): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
    body: Body,
) -> Response {
    answer(follow_inner(node, index, uri.path(), q, body).await)
}

async fn follow_inner(
    node: Shared,
    index: String,
    path: &str,
    q: Pairs,
    body: Body,
) -> Result<Response, EsError> {
    Params(&q).check_known(path, &["wait_for_active_shards", "master_timeout"])?;
    validate_name("index", &index)
        .map_err(|e| EsError::new(400, "invalid_index_name_exception", e.to_string()))?;
    let bytes = body::read(body, node.settings.max_body_bytes).await?;
    let (remote_cluster, leader_index, parameters) = parse_follow(&bytes)?;
    begin(&node, &index, remote_cluster, leader_index, parameters).await?;
    Ok(ok(json!({
        "follow_index_created": true,
        "follow_index_shards_acked": true,
        "index_following_started": true,
    })))
}

/// The follower of `index`, or Elasticsearch's refusal for an index that
/// is not one.
fn follower(node: &Shared, index: &str) -> Result<Arc<Follower>, EsError> {
    node.ccr.follows.get(index).ok_or_else(|| {
        EsError::illegal_argument(format!("follow index [{index}] does not have ccr metadata"))
    })
}

fn saved(node: &Shared) -> Result<Response, EsError> {
    node.ccr
        .follows
        .save(&node.state_folder)
        .map_err(|e| internal(e.to_string()))?;
    Ok(ok(json!({"acknowledged": true})))
}

/// `POST /<follower>/_ccr/pause_follow`: a pause for another reason is
/// kept (its reason stays in the stats).
pub async fn pause(State(node): State<Shared>, Path(index): Path<String>) -> Response {
    answer((|| {
        let f = follower(&node, &index)?;
        f.record()
            .tracker
            .paused
            .get_or_insert(crate::core::ccr::follower::PauseReason::Requested);
        f.wake.notify_one();
        saved(&node)
    })())
}

/// `POST /<follower>/_ccr/resume_follow`, with new parameters in an
/// optional body (`reuse_existing` among them, to resync a follower
/// paused as diverged). The loop checks the folder again first, so a
/// follower paused by a local write pauses again until the folder is back
/// at its checkpoint.
pub async fn resume(State(node): State<Shared>, Path(index): Path<String>, body: Body) -> Response {
    let bytes = match body::read(body, node.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    answer((|| {
        let f = follower(&node, &index)?;
        let parameters = parse_resume(&bytes)?;
        {
            let mut r = f.record();
            if r.tracker.paused.take().is_none() {
                return Err(EsError::illegal_argument(format!(
                    "follower index [{index}] is not paused"
                )));
            }
            if let Some(p) = parameters {
                r.parameters = p;
            }
        }
        f.wake.notify_one();
        saved(&node)
    })())
}

/// How long unfollow waits for an apply in progress to end.
const UNFOLLOW_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `POST /<follower>/_ccr/unfollow`: the folder stays as a normal index.
/// Answers once the follower's loop has ended, so no apply of it runs
/// any more (a new follow of the same index then starts clean).
pub async fn unfollow(State(node): State<Shared>, Path(index): Path<String>) -> Response {
    let f = match follower(&node, &index) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    if f.record().tracker.paused.is_none() {
        return EsError::new(
            400,
            "illegal_state_exception",
            format!(
                "cannot convert the follower index [{index}] to a non-follower, because it has \
                 not been paused"
            ),
        )
        .into_response();
    }
    stop_following(&node, &index, &f).await;
    answer(saved(&node))
}

/// Removes follower `f` of `index` and waits for its loop to end.
async fn stop_following(node: &Shared, index: &str, f: &Follower) {
    node.ccr.follows.remove(index);
    f.stop();
    if tokio::time::timeout(UNFOLLOW_WAIT, f.alive.lock())
        .await
        .is_err()
    {
        eprintln!("snapkeep node: the follower loop of [{index}] is still ending");
    }
    // What a killed apply may have left beside the folder, and old
    // versions still being removed (a removal racing another is harmless).
    for left in [format!(".ccr-next-{index}"), format!(".ccr-deltas-{index}")] {
        let left = node.settings.data.join(left);
        if left.is_dir() {
            let _ = std::fs::remove_dir_all(&left);
        }
    }
    crate::native::ccr::apply::remove_old_versions(&node.settings.data, index, None);
}

/// `POST /<follower>/_ccr/promote` (snapkeep's failover in one call):
/// stops following and makes this node the index's leader, with a new
/// lineage forked at the checkpoint the folder holds. The old leader, if
/// it returns and follows this index, is compared with that history: a
/// fast-forward if it wrote nothing since, split brain otherwise.
pub async fn promote(State(node): State<Shared>, Path(index): Path<String>) -> Response {
    answer(promote_inner(node, index).await)
}

async fn promote_inner(node: Shared, index: String) -> Result<Response, EsError> {
    let f = follower(&node, &index)?;
    let (held, history) = {
        let r = f.record();
        (r.tracker.held.clone(), r.history.clone())
    };
    let (Some((held, _)), Some(history)) = (held, history) else {
        return Err(EsError::new(
            400,
            "illegal_state_exception",
            format!(
                "follower index [{index}] holds no checkpoint yet: there is nothing to promote"
            ),
        ));
    };
    let lineage = leader::new_lineage();
    let forked = history
        .fork(&held, &lineage)
        .map_err(|e| EsError::new(400, "illegal_state_exception", e.to_string()))?;
    f.record()
        .tracker
        .paused
        .get_or_insert(PauseReason::Requested);
    stop_following(&node, &index, &f).await;
    leader::adopt(&node, &index, forked).await?;
    saved(&node)?;
    Ok(ok(json!({
        "acknowledged": true,
        "lineage": lineage,
        "forked_from": held.to_string(),
    })))
}

/// `POST /<leader>/_ccr/forget_follower`: body `follower_cluster` (the
/// follower node's `cluster_uuid`, its id) and `follower_index`; ES's
/// `follower_index_uuid` and `leader_remote_cluster` are accepted.
pub async fn forget_follower(
    State(node): State<Shared>,
    Path(index): Path<String>,
    body: Body,
) -> Response {
    answer(forget_inner(node, index, body).await)
}

async fn forget_inner(node: Shared, index: String, body: Body) -> Result<Response, EsError> {
    if !indices::exists(&node.settings.data, &index) {
        return Err(EsError::index_not_found(&index));
    }
    let bytes = body::read(body, node.settings.max_body_bytes).await?;
    let (cluster, follower_index) = parse_forget(&bytes)?;
    let follower = format!("{cluster}:{follower_index}");
    leader::forget(&node, &index, &follower).await?;
    crate::node::ccr::publish::forget(&node, &index, &follower)
        .await
        .map_err(internal)?;
    Ok(ok(
        json!({"_shards": {"total": 1, "successful": 1, "failed": 0}}),
    ))
}

/// `GET /<index>/_ccr/stats`.
pub async fn index_stats(State(node): State<Shared>, Path(index): Path<String>) -> Response {
    match node.ccr.follows.get(&index) {
        Some(f) => ok(json!({"indices": [stats::index(&index, &f.record(), now_millis())]})),
        None => EsError::resource_not_found(format!(
            "No shard follow tasks for follower indices [{index}]"
        ))
        .into_response(),
    }
}

/// `GET /_ccr/stats`.
pub async fn all_stats(State(node): State<Shared>) -> Response {
    let now = now_millis();
    let indices = node
        .ccr
        .follows
        .list()
        .iter()
        .map(|f| stats::index(&f.index, &f.record(), now))
        .collect();
    ok(stats::all(node.ccr.auto_follows.stats(), indices))
}

/// `GET /<index>/_ccr/info`: empty for an index that follows nothing.
pub async fn info(State(node): State<Shared>, Path(index): Path<String>) -> Response {
    match node.ccr.follows.get(&index) {
        Some(f) => ok(json!({"follower_indices": [stats::info(&index, &f.record())]})),
        None if indices::exists(&node.settings.data, &index) => ok(json!({"follower_indices": []})),
        None => EsError::index_not_found(&index).into_response(),
    }
}
