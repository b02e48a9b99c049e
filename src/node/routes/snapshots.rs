//! Snapshot APIs (reference section 3) over registered repositories. So
//! far: `GET /_snapshot/<repo>/<snap>` (listing with wildcards, `_all`,
//! `_current`, sorting and paging by `core::es::get_snapshots`) and
//! `DELETE /_snapshot/<repo>/<snap>` (running snapshots aborted, stored
//! ones removed by the repository layer's delete). Which running and
//! stored snapshots a request names is `core::es::running`'s decision.

use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};

use crate::core::es::get_snapshots::{self, Candidate, GetSnapshotsQuery, GetSnapshotsResponse};
use crate::core::es::params::Params;
use crate::core::es::patterns::NamePatterns;
use crate::core::es::running::{delete_plan, listed_running};
use crate::core::es::snapshot_info::{Detail, Running, SnapshotInfo};
use crate::core::format::manifest::{SnapshotState, SnapshotSummary};
use std::sync::Arc;

use crate::core::es::snapshot_info::acknowledged;
use crate::error::Error;
use crate::native::clock::{SystemClock, TokioSleep};
use crate::node::open;
use crate::node::reply::{ok, EsError};
use crate::node::running::Ending;
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
    let running = node.running.of(Some(&repo));
    let running: Vec<Running> = running.iter().map(|r| r.info()).collect();
    let running_names: Vec<&str> = running.iter().map(|r| r.snapshot.as_str()).collect();
    let stored_names: Vec<&str> = root.snapshots.iter().map(|s| s.snapshot.as_str()).collect();
    let patterns = NamePatterns::parse(&snap);
    let picked = listed_running(
        &repo,
        &patterns,
        &running_names,
        &stored_names,
        query.ignore_unavailable,
    )?;
    let live = running
        .iter()
        .filter(|r| picked.contains(&r.snapshot.as_str()))
        .map(|r| Candidate::running(&repo, r, Listing::Running(r)));
    let stored = root
        .snapshots
        .iter()
        .filter(|s| patterns.matches(&s.snapshot))
        .map(|s| Candidate::stored(&repo, s, Listing::Stored(s)));
    // Sized up front: growing a vector of thousands of candidates step by
    // step copies it and faults in fresh pages at every step.
    let mut candidates = Vec::with_capacity(root.snapshots.len() + running.len());
    candidates.extend(live.chain(stored));
    let page = get_snapshots::select(&query, candidates)?;
    // The root counts a snapshot's failures; which indices failed and why
    // is in its manifest, read only for the page's stored snapshots that
    // did not succeed.
    let mut manifests = Vec::with_capacity(page.items.len());
    for item in &page.items {
        manifests.push(match item {
            Listing::Stored(s) if query.info.verbose && s.state != SnapshotState::Success => {
                reader.manifest(s).await.ok()
            }
            _ => None,
        });
    }
    let page = get_snapshots::Selected {
        items: page
            .items
            .into_iter()
            .zip(&manifests)
            .map(|(item, m)| match item {
                Listing::Stored(s) => {
                    let detail = Detail {
                        metadata: None,
                        failures: m.as_ref().map(|m| &m.failures[..]),
                    };
                    SnapshotInfo::stored(&repo, s, detail, query.info)
                }
                Listing::Running(r) => SnapshotInfo::in_progress(&repo, r, query.info),
            })
            .collect(),
        total: page.total,
        remaining: page.remaining,
        next: page.next,
    };
    Ok(ok(
        serde_json::to_value(GetSnapshotsResponse::new(page)).unwrap_or_default()
    ))
}

/// A listed snapshot: stored, or being taken.
enum Listing<'a> {
    Stored(&'a SnapshotSummary),
    Running(&'a Running),
}

pub(crate) async fn registered_reader(
    node: &Shared,
    repo: &str,
) -> Result<crate::repo::RepoReader, EsError> {
    let reg = super::registered(node, repo).await?;
    let reader = open::reader(&reg)
        .await
        .map_err(|e| EsError::repository(repo, &e.to_string()))?;
    Ok(reader)
}

/// `DELETE /_snapshot/<repo>/<names or wildcards>`: aborts the running
/// snapshots it names and waits for them to stop (nothing of theirs is
/// committed), then removes the stored ones and the data only they
/// needed; a name that matches nothing is 404.
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
    let patterns: Vec<String> = snap.split(',').map(str::to_string).collect();
    delete_snapshots(&node, &repo, &patterns).await?;
    Ok(ok(acknowledged()))
}

/// Deletes what `patterns` name in registered repository `repo`: the
/// running snapshots they name are aborted and waited for, the stored
/// ones removed with the data only they needed. The one delete path of
/// the node (the API and lifecycle retention).
pub async fn delete_snapshots(
    node: &Shared,
    repo: &str,
    patterns: &[String],
) -> Result<(), EsError> {
    let repo = repo.to_string();
    let reader = registered_reader(node, &repo).await?;
    let failed = |e: Error| match e {
        Error::SnapshotMissing(name) => EsError::snapshot_missing(&repo, &name),
        e @ Error::SnapshotPinned { .. } => {
            EsError::new(400, "snapshot_in_use_deletion_exception", e.to_string())
        }
        other => EsError::repository(&repo, &other.to_string()),
    };
    let running = node.running.of(Some(&repo));
    let root = reader.root().await.map_err(failed)?;
    if root.settings.readonly {
        return Err(EsError::repository_readonly(&repo));
    }
    let running_names: Vec<&str> = running.iter().map(|r| r.snapshot.as_str()).collect();
    let stored_names: Vec<&str> = root.snapshots.iter().map(|s| s.snapshot.as_str()).collect();
    let mut plan = delete_plan(&repo, patterns, &running_names, &stored_names)?;
    let aborted: Vec<_> = running
        .iter()
        .filter(|r| plan.abort.contains(&r.snapshot.as_str()))
        .collect();
    for r in &aborted {
        r.abort.abort();
    }
    for r in &aborted {
        // One that committed before it saw the abort is stored now: it
        // goes as a stored one does.
        if r.ended().await == Ending::Committed {
            plan.stored.push(r.snapshot.clone());
        }
    }
    if plan.stored.is_empty() {
        return Ok(());
    }
    let patterns = plan.stored;
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
    Ok(())
}
