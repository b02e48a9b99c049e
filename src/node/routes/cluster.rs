//! `_cluster/settings` (remote clusters only) and `_remote/info`.

use axum::body::Body;
use axum::extract::{OriginalUri, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::core::ccr::remote::{apply_settings, info_json, settings_json, Via};
use crate::core::es::params::Params;
use crate::node::body;
use crate::node::remotes;
use crate::node::reply::{internal, ok, EsError};
use crate::node::server::Shared;

type Pairs = Vec<(String, String)>;

const SETTINGS_PARAMS: &[&str] = &[
    "flat_settings",
    "include_defaults",
    "master_timeout",
    "timeout",
];

/// `GET /_cluster/settings`.
pub async fn get_settings(
    State(node): State<Shared>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    if let Err(e) = Params(&q).check_known(uri.path(), SETTINGS_PARAMS) {
        return e.into_response();
    }
    ok(settings_json(&*node.remotes.lock().await))
}

/// `PUT /_cluster/settings`: remote clusters are the settings a node has.
pub async fn put_settings(
    State(node): State<Shared>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
    body: Body,
) -> Response {
    put_inner(node, uri.path(), q, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn put_inner(node: Shared, path: &str, q: Pairs, body: Body) -> Result<Response, EsError> {
    Params(&q).check_known(path, SETTINGS_PARAMS)?;
    let bytes = body::read(body, node.settings.max_body_bytes).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(EsError::body_required());
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        EsError::new(
            400,
            "parse_exception",
            format!("request body is not JSON: {e}"),
        )
    })?;
    let mut remotes = node.remotes.lock().await;
    let next = apply_settings(&remotes, &value)
        .map_err(|e| EsError::new(400, "illegal_argument_exception", e.to_string()))?;
    // A repository remote must name a repository registered here (one
    // deleted since is reported by `_remote/info` and the followers).
    let registered = node.repositories.lock().await.clone();
    for (alias, r) in &next {
        if let Via::Repository(name) = r.via() {
            if remotes.get(alias) != Some(r) && !registered.contains_key(name) {
                return Err(EsError::illegal_argument(format!(
                    "repository [{name}] of cluster.remote.{alias}.repository is not registered \
                     on this node: register it first (PUT /_snapshot/{name})"
                )));
            }
        }
    }
    remotes::save(&node.state_folder, &next).map_err(|e| internal(e.to_string()))?;
    *remotes = next;
    let mut answer = settings_json(&remotes);
    answer["acknowledged"] = true.into();
    Ok(ok(answer))
}

/// `GET /_remote/info`: every remote, checked now, at once.
pub async fn remote_info(State(node): State<Shared>) -> Response {
    let remotes = node.remotes.lock().await.clone();
    let mut checks = tokio::task::JoinSet::new();
    for (alias, r) in remotes {
        let node = node.clone();
        checks.spawn(async move {
            let reach = remotes::reach(&node, &alias, &r).await;
            (alias, info_json(&r, &reach))
        });
    }
    let mut out = Map::new();
    while let Some(done) = checks.join_next().await {
        match done {
            Ok((alias, info)) => out.insert(alias, info),
            Err(e) => return internal(format!("a connection check failed: {e}")).into_response(),
        };
    }
    ok(json!(out))
}
