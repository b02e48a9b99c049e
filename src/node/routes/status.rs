//! `GET /_snapshot/<repo>/<snap>/_status`, `/_snapshot/<repo>/_status` and
//! `/_snapshot/_status` (reference 3.4). This node runs no snapshot that
//! the status could show live yet, so the paths without names list none;
//! named snapshots are read from the repository's root: the totals are the
//! snapshot's, each index is one done shard (per-index figures are not in
//! the root, so an index's stats are left out).

use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::core::es::params::Params;
use crate::core::format::manifest::{SnapshotState, SnapshotSummary};
use crate::node::reply::{ok, EsError};
use crate::node::routes::snapshots::registered_reader;
use crate::node::server::Shared;

type Pairs = Vec<(String, String)>;

/// The paths without snapshot names: running snapshots only.
pub async fn running(
    State(node): State<Shared>,
    repo: Option<Path<String>>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    let result = async {
        Params(&q).check_known(uri.path(), &["master_timeout", "ignore_unavailable"])?;
        if let Some(Path(repo)) = repo {
            registered_reader(&node, &repo).await?;
        }
        Ok::<_, EsError>(ok(json!({ "snapshots": [] })))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

pub async fn named(
    State(node): State<Shared>,
    Path((repo, snap)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    named_inner(node, repo, snap, uri.path(), &q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn named_inner(
    node: Shared,
    repo: String,
    snap: String,
    path: &str,
    q: &Pairs,
) -> Result<Response, EsError> {
    let params = Params(q);
    params.check_known(path, &["master_timeout", "ignore_unavailable"])?;
    let ignore = params.bool("ignore_unavailable", false)?;
    let reader = registered_reader(&node, &repo).await?;
    let root = reader
        .root()
        .await
        .map_err(|e| EsError::repository(&repo, &e.to_string()))?;
    let mut out = Vec::new();
    for name in snap.split(',').filter(|n| *n != "_all") {
        match root.snapshots.iter().find(|s| s.snapshot == name) {
            Some(s) => out.push(status(&repo, s)),
            None if ignore => {}
            None => return Err(EsError::snapshot_missing(&repo, name)),
        }
    }
    Ok(ok(json!({ "snapshots": out })))
}

fn status(repo: &str, s: &SnapshotSummary) -> Value {
    let failed = matches!(s.state, SnapshotState::Failed);
    let shards = |n: usize| {
        let (done, bad) = if failed { (0, n) } else { (n, 0) };
        json!({"initializing": 0, "started": 0, "finalizing": 0, "done": done, "failed": bad, "total": n})
    };
    let indices: Map<String, Value> = s
        .indices
        .iter()
        .map(|i| {
            let stage = if failed { "FAILURE" } else { "DONE" };
            (
                i.clone(),
                json!({"shards_stats": shards(1), "shards": {"0": {"stage": stage}}}),
            )
        })
        .collect();
    json!({
        "snapshot": s.snapshot, "repository": repo, "uuid": s.uuid,
        "state": if failed { "FAILED" } else { "SUCCESS" },
        "include_global_state": s.include_global_state,
        "shards_stats": shards(s.indices.len()),
        "stats": {
            "incremental": {"file_count": s.files, "size_in_bytes": s.new_bytes},
            "total": {"file_count": s.files, "size_in_bytes": s.size_in_bytes},
            "start_time_in_millis": s.start_time_in_millis,
            "time_in_millis": s.duration_in_millis(),
        },
        "indices": indices,
    })
}
