//! `GET /_snapshot/<repo>/<snap>/_status`, `/_snapshot/<repo>/_status` and
//! `/_snapshot/_status` (reference 3.4). This node runs no snapshot that
//! the status could show live yet, so the paths without names list none;
//! named snapshots are answered from their manifests through
//! `core::es::status` (one shard per index, with its files and bytes).

use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::core::es::params::Params;
use crate::core::es::status::{response, SnapshotStatus};
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
            Some(s) => {
                let manifest = reader
                    .manifest(s)
                    .await
                    .map_err(|e| EsError::repository(&repo, &e.to_string()))?;
                out.push(SnapshotStatus::finished(&manifest).to_json(&repo));
            }
            None if ignore => {}
            None => return Err(EsError::snapshot_missing(&repo, name)),
        }
    }
    Ok(ok(response(&out)))
}
