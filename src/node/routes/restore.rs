//! `POST /_snapshot/<repo>/<snap>/_restore` (reference 3.5): restores into
//! the node's data folder with the native restore, on a plain thread.
//!
//! The thread first plans, so the handler can refuse what ES refuses
//! before accepting: an index of the same (renamed) name that is open.
//! A closed one is restored over (reusing what its folder holds) and is
//! open afterwards, as ES opens a restored index. Once accepted, the run
//! is `restore_run`'s: recorded, live in `_recovery`, resumed after a
//! restart.

use axum::body::Body;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

use crate::core::es::params::Params;
use crate::core::es::restore_request::RestoreRequest;
use crate::core::es::snapshot_info::{accepted, restore_completed, Shards};
use crate::error::Error;
use crate::native::clock::now_millis;
use crate::native::restore::{plan, restore, RestoreOptions, RestoreOutcome};
use crate::node::reply::{internal, ok, EsError};
use crate::node::restore_records::{self, Asked, RestoreRecord};
use crate::node::restore_run::{self, Ended};
use crate::node::server::Shared;
use crate::node::{body, indices, open};

type Pairs = Vec<(String, String)>;

pub async fn restore_snapshot(
    State(node): State<Shared>,
    Path((repo, snap)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
    body: Body,
) -> Response {
    inner(node, repo, snap, uri.path().to_string(), q, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// What the planning step tells the handler.
struct Planned {
    uuid: String,
    /// (index in the snapshot, index it is restored as).
    indices: Vec<(String, String)>,
}

async fn inner(
    node: Shared,
    repo: String,
    snap: String,
    path: String,
    q: Pairs,
    body: Body,
) -> Result<Response, EsError> {
    let params = Params(&q);
    params.check_known(&path, &["wait_for_completion", "master_timeout"])?;
    let wait = params.bool("wait_for_completion", false)?;
    let request =
        body::read_optional(body, node.settings.max_body_bytes, RestoreRequest::parse).await?;
    let reg = super::registered(&node, &repo).await?;
    let asked = Asked::of(&request);
    let mut opts = restore_run::options(&node.settings.data, &snap, &asked)?;
    let limit = restore_run::registered_limit(&reg)?;
    let store = open::store(&reg, false).map_err(|e| EsError::repository(&repo, &e.to_string()))?;
    // Closing, opening and deleting wait while a restore is being planned
    // and registered, so the open/closed check below stays true.
    let closed = node.closed.lock().await;
    let (plan_tx, plan_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel::<RestoreOptions>();
    let (done_tx, done_rx) = oneshot::channel();
    let first = opts.clone();
    std::thread::spawn(move || {
        let repo = match restore_run::open_throttled(store, limit) {
            Ok(r) => r,
            Err(e) => return drop(plan_tx.send(Err(e))),
        };
        let planned = plan(&repo, &first).map(|p| Planned {
            uuid: marker_uuid(&p.plan.marker),
            indices: p.plan.indices.clone(),
        });
        if plan_tx.send(planned).is_err() {
            return;
        }
        if let Ok(opts) = go_rx.blocking_recv() {
            let _ = done_tx.send(restore(&repo, &opts));
        }
    });
    let planned = plan_rx
        .await
        .map_err(|_| ended(&repo, &snap))?
        .map_err(|e| failure(&repo, &snap, e))?;
    let data = &node.settings.data;
    for (_, target) in &planned.indices {
        let present = indices::exists(data, target);
        if present && !closed.contains(target) || node.recoveries.running(target) {
            return Err(EsError::restore_over_open_index(
                &repo,
                &snap,
                &planned.uuid,
                target,
            ));
        }
        opts.overwrite |= present;
    }
    let record = RestoreRecord {
        repository: repo.clone(),
        snapshot: snap.clone(),
        restore_uuid: uuid::Uuid::new_v4().simple().to_string(),
        start_ms: now_millis(),
        asked,
        overwrite: opts.overwrite,
        targets: planned.indices.clone(),
        failed: None,
    };
    // Persisted before anything is written, so a node killed from here
    // on resumes the restore at its next start.
    restore_records::supersede(&node.state_folder, &record.target_names())
        .and_then(|()| restore_records::save(&node.state_folder, &record))
        .map_err(|e| internal(format!("cannot record the restore: {e}")))?;
    restore_run::register(&node, &record, &mut opts);
    drop(closed);
    let _ = go_tx.send(opts);
    let finished = restore_run::finish(node.clone(), record, done_rx);
    if !wait {
        tokio::spawn(finished);
        return Ok(ok(accepted()));
    }
    let out: RestoreOutcome = finished.await.map_err(|e| match e {
        Ended::Failed(e) => failure(&repo, &snap, e),
        Ended::NoAnswer => ended(&repo, &snap),
    })?;
    let names: Vec<String> = out.indices.iter().map(|(_, t)| t.clone()).collect();
    Ok(ok(restore_completed(
        &snap,
        &names,
        Shards::of(names.len(), 0),
    )))
}

/// The snapshot's uuid, out of the plan's resume marker.
fn marker_uuid(marker: &str) -> String {
    serde_json::from_str::<serde_json::Value>(marker)
        .ok()
        .and_then(|v| v["snapshot_uuid"].as_str().map(str::to_string))
        .unwrap_or_else(|| "_na_".into())
}

fn ended(repo: &str, snap: &str) -> EsError {
    EsError::new(
        500,
        "snapshot_restore_exception",
        format!("[{repo}:{snap}] the restore thread ended without an answer"),
    )
}

fn failure(repo: &str, snap: &str, e: Error) -> EsError {
    match e {
        Error::SnapshotMissing(_) => EsError::snapshot_missing(repo, snap),
        Error::Selection(s) => EsError::illegal_argument(s.to_string()),
        other => EsError::snapshot_restore(repo, snap, "_na_", &other.to_string()),
    }
}
