//! `GET /_snapshot/<repo>/<snap>/_status`, `/_snapshot/<repo>/_status` and
//! `/_snapshot/_status` (reference 3.4). Running snapshots answer live from
//! their progress (`crate::node::running`), stored ones from their
//! manifests, both through `core::es::status` (one shard per index, with
//! its files and bytes); which is which is `core::es::running`'s choice.

use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};

use crate::core::es::params::Params;
use crate::core::es::running::{status_names, status_picks, StatusPick};
use crate::core::es::status::{response, SnapshotStatus};
use crate::node::reply::{ok, EsError};
use crate::node::routes::snapshots::registered_reader;
use crate::node::server::Shared;

type Pairs = Vec<(String, String)>;

const ALLOWED: [&str; 2] = ["master_timeout", "ignore_unavailable"];

/// The paths without snapshot names: running snapshots only, of one
/// repository or of all.
pub async fn running(
    State(node): State<Shared>,
    repo: Option<Path<String>>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    let result = async {
        Params(&q).check_known(uri.path(), &ALLOWED)?;
        if let Some(Path(repo)) = &repo {
            super::registered(&node, repo).await?;
        }
        let repo = repo.map(|Path(r)| r);
        let out: Vec<_> = node
            .running
            .of(repo.as_deref())
            .iter()
            .map(|r| r.status().to_json(&r.repository))
            .collect();
        Ok::<_, EsError>(ok(response(&out)))
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
    params.check_known(path, &ALLOWED)?;
    let ignore = params.bool("ignore_unavailable", false)?;
    let reader = registered_reader(&node, &repo).await?;
    let names = status_names(Some(&snap));
    // Read before the root: a snapshot that commits in between is then
    // found in one of the two.
    let running = node.running.of(Some(&repo));
    let root = if names.is_empty() {
        None
    } else {
        let root = reader.root().await;
        Some(root.map_err(|e| EsError::repository(&repo, &e.to_string()))?)
    };
    let running_names: Vec<&str> = running.iter().map(|r| r.snapshot.as_str()).collect();
    let stored_names: Vec<&str> = root
        .iter()
        .flat_map(|r| r.snapshots.iter().map(|s| s.snapshot.as_str()))
        .collect();
    let picks = status_picks(&repo, &names, &running_names, &stored_names, ignore)?;
    let mut out = Vec::with_capacity(picks.len());
    for pick in picks {
        match pick {
            StatusPick::Running(name) => {
                if let Some(r) = running.iter().find(|r| r.snapshot == name) {
                    out.push(r.status().to_json(&repo));
                }
            }
            StatusPick::Stored(name) => {
                let Some(s) = root.as_ref().and_then(|r| r.snapshot(name)) else {
                    continue;
                };
                let manifest = reader
                    .manifest(s)
                    .await
                    .map_err(|e| EsError::repository(&repo, &e.to_string()))?;
                out.push(SnapshotStatus::finished(&manifest).to_json(&repo));
            }
        }
    }
    Ok(ok(response(&out)))
}
