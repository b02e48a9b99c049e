//! `POST /_snapshot/<repo>/_analyze`: the repository layer's storage
//! probes (`repo::analyze`), the same the CLI's `repo analyze` runs,
//! answered with the members of Elasticsearch's analysis response that
//! they can fill, plus `probes`, each probe's own result (snapkeep's).
//! Elasticsearch's tuning parameters are accepted and have no effect: the
//! probes are fixed.

use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::core::es::params::Params;
use crate::core::es::units::time_value;
use crate::native::clock::SystemClock;
use crate::node::open;
use crate::node::reply::{ok, EsError};
use crate::node::server::Shared;
use crate::repo::analyze::Probe;

type Pairs = Vec<(String, String)>;

/// Elasticsearch's query parameters for the analysis.
const ALLOWED: &[&str] = &[
    "blob_count",
    "concurrency",
    "detailed",
    "early_read_node_count",
    "max_blob_size",
    "max_total_data_size",
    "rare_action_probability",
    "rarely_abort_writes",
    "read_node_count",
    "register_operation_count",
    "seed",
    "timeout",
    "master_timeout",
];

/// Where the probes write (and remove what they wrote).
const BLOB_PATH: &str = "verify";

pub async fn analyze(
    State(node): State<Shared>,
    Path(repo): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    analyze_inner(node, repo, uri.path(), q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn analyze_inner(
    node: Shared,
    repo: String,
    path: &str,
    q: Pairs,
) -> Result<Response, EsError> {
    Params(&q).check_known(path, ALLOWED)?;
    let reg = super::registered(&node, &repo).await?;
    let reader = open::reader(&reg)
        .await
        .map_err(|e| EsError::repository(&repo, &e.to_string()))?;
    let readonly = reg.readonly
        || reader
            .root()
            .await
            .map_err(|e| EsError::repository(&repo, &e.to_string()))?
            .settings
            .readonly;
    if readonly {
        // Every probe writes; refuse as the CLI does rather than fail them all.
        return Err(EsError::repository_readonly(&repo));
    }
    let run_id = uuid::Uuid::new_v4().to_string();
    let probes = crate::repo::analyze(&reader, &SystemClock, &run_id).await;
    let issues: Vec<String> = probes
        .iter()
        .filter(|p| !p.ok)
        .map(|p| format!("{}: {}", p.name, p.detail))
        .collect();
    if !issues.is_empty() {
        return Err(EsError::repository_verification(
            &repo,
            &format!("analysis failed: {}", issues.join("; ")),
        ));
    }
    Ok(ok(json!({
        "coordinating_node": {"id": node.identity.id, "name": node.settings.name},
        "repository": repo,
        "blob_path": BLOB_PATH,
        "issues_detected": issues,
        "listing_elapsed": time_value(millis(&probes, "list-after-write")),
        "listing_elapsed_nanos": millis(&probes, "list-after-write") * 1_000_000,
        "delete_elapsed": time_value(millis(&probes, "delete")),
        "delete_elapsed_nanos": millis(&probes, "delete") * 1_000_000,
        "probes": probes,
    })))
}

fn millis(probes: &[Probe], name: &str) -> i64 {
    probes
        .iter()
        .find(|p| p.name == name)
        .map_or(0, |p| p.millis as i64)
}
