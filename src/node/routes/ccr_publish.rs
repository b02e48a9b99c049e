//! `/<index>/_ccr/publish`: publishing a leader index into a registered
//! repository for followers with no connection to this node
//! (`node::ccr::publish`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::node::ccr::publish::{self, PublishRecord, Publisher};
use crate::node::ccr::request::parse_publish;
use crate::node::reply::{internal, ok, EsError};
use crate::node::server::Shared;
use crate::node::{body, indices};

/// How long a stop waits for a checkpoint in progress to end.
const STOP_WAIT: Duration = Duration::from_secs(60);
/// How long a publish request waits for the index's first feed.
const FIRST_FEED_WAIT: Duration = Duration::from_secs(30);

fn answer(r: Result<Response, EsError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

fn not_published(index: &str) -> EsError {
    EsError::resource_not_found(format!("index [{index}] is not published"))
}

/// `PUT /<index>/_ccr/publish {"repository": "<registered repository>"}`:
/// starts publishing (again with the same repository: nothing changes).
pub async fn put(State(node): State<Shared>, Path(index): Path<String>, body: Body) -> Response {
    answer(put_inner(node, index, body).await)
}

async fn put_inner(node: Shared, index: String, body: Body) -> Result<Response, EsError> {
    if !indices::exists(&node.settings.data, &index) {
        return Err(EsError::index_not_found(&index));
    }
    let bytes = body::read(body, node.settings.max_body_bytes).await?;
    let repository = parse_publish(&bytes)?;
    if node.ccr.follows.get(&index).is_some() {
        return Err(EsError::illegal_argument(format!(
            "index [{index}] is a follower index: promote it (POST /{index}/_ccr/promote) \
             before publishing it"
        )));
    }
    let reg = node
        .repositories
        .lock()
        .await
        .get(&repository)
        .cloned()
        .ok_or_else(|| EsError::repository_missing(&repository))?;
    if reg.readonly {
        return Err(EsError::illegal_argument(format!(
            "repository [{repository}] is registered readonly: publishing writes checkpoints \
             into it"
        )));
    }
    if let Some(p) = node.ccr.publishers.get(&index) {
        if p.record.repository == repository {
            return Ok(ok(acknowledged(&index, &repository)));
        }
        return Err(EsError::illegal_argument(format!(
            "index [{index}] is published into repository [{}]: DELETE /{index}/_ccr/publish \
             first",
            p.record.repository
        )));
    }
    crate::node::open::reader(&reg).await.map_err(|e| {
        EsError::new(
            500,
            "repository_exception",
            format!("[{repository}] cannot be read: {e}"),
        )
    })?;
    let p = Arc::new(Publisher::new(&index, PublishRecord { repository }));
    if !node.ccr.publishers.insert(p.clone()) {
        return Err(EsError::illegal_argument(format!(
            "index [{index}] is already published"
        )));
    }
    if let Err(e) = node.ccr.publishers.save(&node.state_folder) {
        node.ccr.publishers.remove(&index);
        return Err(internal(e.to_string()));
    }
    let repository = p.record.repository.clone();
    publish::start(&node, p.clone());
    // Answered once the first feed is written (or the first attempt
    // failed), so a follow made right after finds the index published.
    let deadline = tokio::time::Instant::now() + FIRST_FEED_WAIT;
    while tokio::time::Instant::now() < deadline {
        let s = p.status().clone();
        if let Some(e) = s.last_error {
            let mut answer = json!({"acknowledged": true, "index": index,
                                    "repository": repository, "published": false});
            answer["last_error"] = e.into();
            return Ok(ok(answer));
        }
        if s.last_published_ms.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let published = p.status().last_published_ms.is_some();
    let mut answer = acknowledged(&index, &repository);
    answer["published"] = published.into();
    Ok(ok(answer))
}

fn acknowledged(index: &str, repository: &str) -> serde_json::Value {
    json!({"acknowledged": true, "index": index, "repository": repository})
}

/// `GET /<index>/_ccr/publish`: what the publisher did.
pub async fn get(State(node): State<Shared>, Path(index): Path<String>) -> Response {
    match node.ccr.publishers.get(&index) {
        Some(p) => ok(shown(&p)),
        None => not_published(&index).into_response(),
    }
}

/// `GET /_ccr/publish`: every publisher of the node.
pub async fn get_all(State(node): State<Shared>) -> Response {
    let all: Vec<serde_json::Value> = node
        .ccr
        .publishers
        .list()
        .iter()
        .map(|p| shown(p))
        .collect();
    ok(json!({"publishers": all}))
}

fn shown(p: &Publisher) -> serde_json::Value {
    let index = &p.index;
    let s = p.status().clone();
    let mut v = json!({
        "index": index,
        "repository": p.record.repository,
        "checkpoints_published": s.checkpoints_published,
        "checkpoints_pruned": s.checkpoints_pruned,
        "lease_objects": s.leases,
        "consecutive_failures": s.consecutive_failures,
    });
    if let Some(h) = &s.head {
        v["head"] = json!({"checkpoint": h.point.to_string(), "snapshot": h.snapshot,
                           "time_in_millis": h.time_ms});
    }
    if let Some(t) = s.last_published_ms {
        v["last_published_in_millis"] = t.into();
    }
    if let Some(e) = &s.last_error {
        v["last_error"] = e.clone().into();
    }
    v
}

/// `DELETE /<index>/_ccr/publish`: stops publishing (what was published
/// stays in the repository; its followers see no new checkpoint).
pub async fn delete(State(node): State<Shared>, Path(index): Path<String>) -> Response {
    let Some(p) = node.ccr.publishers.remove(&index) else {
        return not_published(&index).into_response();
    };
    p.stop();
    if tokio::time::timeout(STOP_WAIT, p.alive.lock())
        .await
        .is_err()
    {
        eprintln!("snapkeep node: the publisher of [{index}] is still ending");
    }
    answer(
        node.ccr
            .publishers
            .save(&node.state_folder)
            .map(|()| ok(json!({"acknowledged": true})))
            .map_err(|e| internal(e.to_string())),
    )
}
