//! Snapshot APIs (reference section 3) over registered repositories. So
//! far: `GET /_snapshot/<repo>/<snap>` (listing with wildcards, `_all`,
//! sorting and paging by `core::es::get_snapshots`) and
//! `DELETE /_snapshot/<repo>/<snap>` (the repository layer's delete).

use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};

use crate::core::es::get_snapshots::{self, Candidate, GetSnapshotsQuery, GetSnapshotsResponse};
use crate::core::es::params::Params;
use crate::core::es::patterns::NamePatterns;
use crate::core::es::snapshot_info::{Detail, SnapshotInfo};
use std::sync::Arc;

use crate::core::es::snapshot_info::acknowledged;
use crate::error::Error;
use crate::native::clock::{SystemClock, TokioSleep};
use crate::node::open;
use crate::node::reply::{ok, EsError};
use crate::node::server::Shared;
use crate::repo::delete::Delete;
use crate::repo::RepoWriter;

type Pairs = Vec<(String, String)>;

/// `GET /_snapshot/<repo>/<snap>`.
pub async fn get(
    State(node): State<Shared>,
    Path((repo, snap)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    get_inner(node, repo, snap, uri.path().to_string(), q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn get_inner(
    node: Shared,
    repo: String,
    snap: String,
    path: String,
    q: Pairs,
) -> Result<Response, EsError> {
    let params = Params(&q);
    params.check_known(&path, &get_snapshots::ALLOWED)?;
    let query = GetSnapshotsQuery::parse(&params)?;
    let reg = super::registered(&node, &repo).await?;
    let reader = node
        .listing_readers
        .get(&repo, &reg)
        .await
        .map_err(|e| EsError::repository(&repo, &e.to_string()))?;
    let root = reader
        .root_shared()
        .await
        .map_err(|e| EsError::repository(&repo, &e.to_string()))?;
    let patterns = NamePatterns::parse(&snap);
    if !query.ignore_unavailable {
        if let Some(missing) = patterns
            .literal_names()
            .into_iter()
            .find(|n| !root.snapshots.iter().any(|s| s.snapshot == *n))
        {
            return Err(EsError::snapshot_missing(&repo, missing));
        }
    }
    // Sized up front: growing a vector of thousands of candidates step by
    // step copies it and faults in fresh pages at every step.
    let mut candidates = Vec::with_capacity(root.snapshots.len());
    candidates.extend(
        root.snapshots
            .iter()
            .filter(|s| patterns.matches(&s.snapshot))
            .map(|s| Candidate::stored(&repo, s, s)),
    );
    let page = get_snapshots::select(&query, candidates)?;
    let page = get_snapshots::Selected {
        items: page
            .items
            .into_iter()
            .map(|s| SnapshotInfo::stored(&repo, s, Detail::default(), query.info))
            .collect(),
        total: page.total,
        remaining: page.remaining,
        next: page.next,
    };
    Ok(ok(
        serde_json::to_value(GetSnapshotsResponse::new(page)).unwrap_or_default()
    ))
}

pub(super) async fn registered_reader(
    node: &Shared,
    repo: &str,
) -> Result<crate::repo::RepoReader, EsError> {
    let reg = super::registered(node, repo).await?;
    let reader = open::reader(&reg)
        .await
        .map_err(|e| EsError::repository(repo, &e.to_string()))?;
    Ok(reader)
}

/// `DELETE /_snapshot/<repo>/<names or wildcards>`: removes the snapshots
/// and the data only they needed; a name that matches nothing is 404.
pub async fn delete(
    State(node): State<Shared>,
    Path((repo, snap)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    delete_inner(node, repo, snap, uri.path().to_string(), q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn delete_inner(
    node: Shared,
    repo: String,
    snap: String,
    path: String,
    q: Pairs,
) -> Result<Response, EsError> {
    Params(&q).check_known(&path, &["master_timeout", "wait_for_completion"])?;
    let reader = registered_reader(&node, &repo).await?;
    let failed = |e: Error| match e {
        Error::SnapshotMissing(name) => EsError::snapshot_missing(&repo, &name),
        other => EsError::repository(&repo, &other.to_string()),
    };
    if reader.root().await.map_err(failed)?.settings.readonly {
        return Err(EsError::repository_readonly(&repo));
    }
    let patterns: Vec<String> = snap.split(',').map(str::to_string).collect();
    let uuid = uuid::Uuid::new_v4().to_string();
    let control = reader.store.clone();
    let writer = RepoWriter::new(reader, Arc::new(TokioSleep));
    let delete = Delete {
        writer: &writer,
        control,
        clock: Arc::new(SystemClock),
        sleep: &TokioSleep,
        uuid: &uuid,
        patterns: &patterns,
        tight: false,
    };
    delete.run().await.map_err(failed)?;
    Ok(ok(acknowledged()))
}
