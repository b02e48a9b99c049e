//! `/_ccr/auto_follow`: auto-follow patterns (`node::ccr::auto_follow`).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::node::body;
use crate::node::ccr::auto_follow::{list_remote, save, AutoFollow};
use crate::node::ccr::request::parse_auto_follow;
use crate::node::ccr::stats::parameters;
use crate::node::reply::{internal, ok, EsError};
use crate::node::server::Shared;

fn answer(r: Result<Response, EsError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

fn missing(name: &str) -> EsError {
    EsError::resource_not_found(format!("auto-follow pattern [{name}] is missing"))
}

fn shown(name: &str, a: &AutoFollow) -> Value {
    let p = &a.pattern;
    let mut pattern = json!({
        "active": !a.paused,
        "remote_cluster": p.remote_cluster,
        "leader_index_patterns": p.leader_index_patterns,
        "leader_index_exclusion_patterns": p.leader_index_exclusion_patterns,
        "follow_index_pattern": p.follow_index_pattern,
    });
    if let (Value::Object(out), Value::Object(params)) = (&mut pattern, parameters(&a.parameters)) {
        out.extend(params);
    }
    json!({"name": name, "pattern": pattern})
}

/// `PUT /_ccr/auto_follow/<name>`: the remote's indices that match now
/// are recorded as seen (a pattern follows indices made after it), so the
/// remote must answer a listing.
pub async fn put(State(node): State<Shared>, Path(name): Path<String>, body: Body) -> Response {
    answer(put_inner(node, name, body).await)
}

async fn put_inner(node: Shared, name: String, body: Body) -> Result<Response, EsError> {
    let bytes = body::read(body, node.settings.max_body_bytes).await?;
    let (pattern, parameters) = parse_auto_follow(&bytes)?;
    let alias = &pattern.remote_cluster;
    let remote = node
        .remotes
        .lock()
        .await
        .get(alias)
        .cloned()
        .ok_or_else(|| {
            EsError::new(
                404,
                "no_such_remote_cluster_exception",
                format!("no such remote cluster: [{alias}]"),
            )
        })?;
    let listed = list_remote(&node, alias, &remote).await.map_err(|reason| {
        EsError::illegal_argument(format!(
            "cannot list the indices of remote cluster [{alias}]: {reason}"
        ))
    })?;
    let mut all = node.ccr.auto_follows.all.lock().await;
    let mut seen = all.get(&name).map(|a| a.seen.clone()).unwrap_or_default();
    seen.extend(listed.into_iter().filter(|l| pattern.matches(l)));
    let paused = all.get(&name).is_some_and(|a| a.paused);
    let mut next = all.clone();
    next.insert(
        name,
        AutoFollow {
            pattern,
            parameters,
            paused,
            seen,
        },
    );
    save(&node.state_folder, &next).map_err(|e| internal(e.to_string()))?;
    *all = next;
    Ok(ok(json!({"acknowledged": true})))
}

/// `GET /_ccr/auto_follow`.
pub async fn get_all(State(node): State<Shared>) -> Response {
    let all = node.ccr.auto_follows.all.lock().await;
    let patterns: Vec<Value> = all.iter().map(|(n, a)| shown(n, a)).collect();
    ok(json!({"patterns": patterns}))
}

/// `GET /_ccr/auto_follow/<name>`.
pub async fn get(State(node): State<Shared>, Path(name): Path<String>) -> Response {
    let all = node.ccr.auto_follows.all.lock().await;
    match all.get(&name) {
        Some(a) => ok(json!({"patterns": [shown(&name, a)]})),
        None => missing(&name).into_response(),
    }
}

/// `DELETE /_ccr/auto_follow/<name>`: the followers it started go on.
pub async fn delete(State(node): State<Shared>, Path(name): Path<String>) -> Response {
    answer(change(&node, &name, |all| all.remove(&name).map(|_| ())).await)
}

/// `POST /_ccr/auto_follow/<name>/pause`.
pub async fn pause(State(node): State<Shared>, Path(name): Path<String>) -> Response {
    answer(
        change(&node, &name, |all| {
            all.get_mut(&name).map(|a| a.paused = true)
        })
        .await,
    )
}

/// `POST /_ccr/auto_follow/<name>/resume`: indices that appeared while
/// it was paused are followed at its next look.
pub async fn resume(State(node): State<Shared>, Path(name): Path<String>) -> Response {
    answer(
        change(&node, &name, |all| {
            all.get_mut(&name).map(|a| a.paused = false)
        })
        .await,
    )
}

/// Applies `f` to the patterns and records them; `None` from `f`: no such
/// pattern.
async fn change(
    node: &Shared,
    name: &str,
    f: impl FnOnce(&mut std::collections::BTreeMap<String, AutoFollow>) -> Option<()>,
) -> Result<Response, EsError> {
    let mut all = node.ccr.auto_follows.all.lock().await;
    let mut next = all.clone();
    f(&mut next).ok_or_else(|| missing(name))?;
    save(&node.state_folder, &next).map_err(|e| internal(e.to_string()))?;
    *all = next;
    Ok(ok(json!({"acknowledged": true})))
}
