//! `POST /_snapshot/<repo>/<snap>/_restore` (reference 3.5): restores into
//! the node's data folder with the native restore, on a plain thread.
//!
//! The thread first plans, so the handler can refuse what ES refuses
//! before accepting: an index of the same (renamed) name that is open.
//! A closed one is restored over (reusing what its folder holds) and is
//! open afterwards, as ES opens a restored index.

use axum::body::Body;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

use crate::core::es::params::Params;
use crate::core::es::restore_request::RestoreRequest;
use crate::core::es::snapshot_info::{accepted, restore_completed, Shards};
use crate::core::policy::selection::{Rename, Selection};
use crate::error::Error;
use crate::native::clock::now_millis;
use crate::native::progress::ProgressMode;
use crate::native::repo::Repo;
use crate::native::restore::{plan, restore, RestoreOptions, RestoreOutcome};
use crate::node::recoveries::Recovery;
use crate::node::reply::{ok, EsError};
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
    let mut opts = options(&node, &snap, &request)?;
    let store = open::store(&reg, false).map_err(|e| EsError::repository(&repo, &e.to_string()))?;
    // Closing, opening and deleting wait while a restore is being planned
    // and registered, so the open/closed check below stays true.
    let closed = node.closed.lock().await;
    let (plan_tx, plan_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel::<RestoreOptions>();
    let (done_tx, done_rx) = oneshot::channel();
    let first = opts.clone();
    std::thread::spawn(move || {
        let repo = match Repo::open_in(store) {
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
    let restore_uuid = uuid::Uuid::new_v4().simple().to_string();
    node.recoveries
        .begin(records(&repo, &snap, &restore_uuid, &planned));
    drop(closed);
    let _ = go_tx.send(opts);
    let finisher = node.clone();
    let asked = snap.clone();
    let names: Vec<String> = planned.indices.iter().map(|(_, t)| t.clone()).collect();
    let finished = async move {
        let outcome = done_rx.await.map_err(|_| ended(&repo, &snap))?;
        let stage = if outcome.is_ok() { "DONE" } else { "FAILED" };
        if outcome.is_ok() {
            reopen(&finisher, &names).await;
        }
        let data = finisher.settings.data.clone();
        finisher
            .recoveries
            .finish(&restore_uuid, now_millis(), stage, |index| {
                indices::list(&data)
                    .ok()
                    .and_then(|l| l.into_iter().find(|f| f.name == index))
                    .map_or((0, 0), |f| (f.files, f.bytes))
            });
        outcome.map_err(|e| failure(&repo, &snap, e))
    };
    if !wait {
        tokio::spawn(finished);
        return Ok(ok(accepted()));
    }
    let out: RestoreOutcome = finished.await?;
    let names: Vec<String> = out.indices.iter().map(|(_, t)| t.clone()).collect();
    Ok(ok(restore_completed(
        &asked,
        &names,
        Shards::of(names.len(), 0),
    )))
}

fn options(node: &Shared, snap: &str, r: &RestoreRequest) -> Result<RestoreOptions, EsError> {
    let bad = |e: crate::core::policy::selection::SelectionError| {
        EsError::illegal_argument(e.to_string())
    };
    let rename = match (&r.rename_pattern, &r.rename_replacement) {
        (Some(p), Some(rep)) => Some(Rename::new(p, rep).map_err(bad)?),
        (Some(p), None) => Some(Rename::new(p, "").map_err(bad)?),
        _ => None,
    };
    let indices = if r.indices.is_empty() {
        "*".to_string()
    } else {
        r.indices.join(",")
    };
    Ok(RestoreOptions {
        snapshot: snap.to_string(),
        target: node.settings.data.clone(),
        selection: Selection::parse(&indices).map_err(bad)?,
        rename,
        include_global_state: r.include_global_state,
        overwrite: false,
        progress: ProgressMode::Quiet,
        concurrency: None,
        ..Default::default()
    })
}

fn records(repo: &str, snap: &str, restore_uuid: &str, p: &Planned) -> Vec<Recovery> {
    let start_ms = now_millis();
    p.indices
        .iter()
        .map(|(source, target)| Recovery {
            index: target.clone(),
            source_index: source.clone(),
            repository: repo.to_string(),
            snapshot: snap.to_string(),
            restore_uuid: restore_uuid.to_string(),
            start_ms,
            stop_ms: None,
            stage: "INDEX",
            files: 0,
            bytes: 0,
        })
        .collect()
}

/// A restored index is open: its name leaves the closed set.
async fn reopen(node: &Shared, names: &[String]) {
    let mut closed = node.closed.lock().await;
    if names.iter().any(|n| closed.contains(n)) {
        let mut next = closed.clone();
        next.retain(|n| !names.contains(n));
        if indices::write_closed(&node.state_folder, &next).is_ok() {
            *closed = next;
        }
    }
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
