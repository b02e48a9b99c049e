//! `PUT /_snapshot/<repo>/<snap>/_clone/<target>`: a new snapshot naming
//! some indices of an existing one, metadata only (`repo::clone`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};

use crate::core::es::clone_request::CloneSnapshotRequest;
use crate::core::es::names::validate_snapshot_name;
use crate::core::es::params::Params;
use crate::core::es::snapshot_info::acknowledged;
use crate::core::format::root::RootConflict;
use crate::core::policy::selection::Selection;
use crate::error::Error;
use crate::native::clock::{now_millis, TokioSleep};
use crate::node::reply::{ok, EsError};
use crate::node::server::Shared;
use crate::node::{body, open};
use crate::repo::clone::{clone_snapshot, CloneSnapshot};
use crate::repo::RepoWriter;

type Pairs = Vec<(String, String)>;

pub async fn clone(
    State(node): State<Shared>,
    Path((repo, source, target)): Path<(String, String, String)>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
    body: Body,
) -> Response {
    let names = Names {
        repo,
        source,
        target,
    };
    clone_inner(node, &names, uri.path(), q, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

struct Names {
    repo: String,
    source: String,
    target: String,
}

async fn clone_inner(
    node: Shared,
    n: &Names,
    path: &str,
    q: Pairs,
    body: Body,
) -> Result<Response, EsError> {
    Params(&q).check_known(path, &["master_timeout", "timeout"])?;
    let bytes = body::read(body, node.settings.max_body_bytes).await?;
    let request = CloneSnapshotRequest::parse(&bytes)?;
    let reg = super::registered(&node, &n.repo).await?;
    validate_snapshot_name(&n.repo, &n.target)?;
    let selection = Selection::parse(&request.indices.join(","))
        .map_err(|e| EsError::illegal_argument(e.to_string()))?;
    let reader = open::reader(&reg)
        .await
        .map_err(|e| EsError::repository(&n.repo, &e.to_string()))?;
    let uuid = uuid::Uuid::new_v4().to_string();
    let writer = RepoWriter::new(reader, Arc::new(TokioSleep));
    let c = CloneSnapshot {
        source: &n.source,
        target: &n.target,
        indices: &selection,
        uuid: &uuid,
        now_ms: now_millis(),
    };
    clone_snapshot(&writer, &c)
        .await
        .map_err(|e| failure(n, reg.readonly, e))?;
    Ok(ok(acknowledged()))
}

fn failure(n: &Names, readonly: bool, e: Error) -> EsError {
    match e {
        Error::Conflict(RootConflict::DuplicateSnapshot(_)) => {
            EsError::snapshot_name_already_in_use(&n.repo, &n.target, false)
        }
        Error::Conflict(RootConflict::ReadOnly) => EsError::repository_readonly(&n.repo),
        Error::Storage(crate::storage::StorageError::ReadOnly { .. }) if readonly => {
            EsError::repository_readonly(&n.repo)
        }
        Error::SnapshotMissing(name) => EsError::snapshot_missing(&n.repo, &name),
        Error::Selection(s) => EsError::illegal_argument(s.to_string()),
        other => EsError::repository(&n.repo, &other.to_string()),
    }
}
