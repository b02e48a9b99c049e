//! `PUT|POST /_snapshot/<repo>/<snap>`: a snapshot of the node's data
//! directory. The snapshot pipeline is the native shell's (synchronous,
//! its own threads), so it runs on a plain thread and the handler awaits
//! its answer; it never blocks the node's runtime.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};

use crate::core::es::create_request::CreateSnapshotRequest;
use crate::core::es::date_math::resolve_name;
use crate::core::es::names::validate_snapshot_name;
use crate::core::es::params::Params;
use crate::core::es::repository_request::parse_byte_size;
use crate::core::es::snapshot_info::{
    accepted, create_completed, Detail, InfoOptions, SnapshotInfo,
};
use crate::core::format::root::{RootConflict, SlotFence};
use crate::core::policy::selection::Selection;
use crate::error::Error;
use crate::native::backup::{create_snapshot, SnapshotOptions, SnapshotOutcome};
use crate::native::clock::now_millis;
use crate::native::hooks::CommandHooks;
use crate::native::repo::Repo;
use crate::node::reply::{ok, EsError};
use crate::node::server::Shared;
use crate::node::{body, open};

type Pairs = Vec<(String, String)>;

pub async fn create(
    State(node): State<Shared>,
    Path((repo, snap)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
    body: Body,
) -> Response {
    create_inner(node, repo, snap, uri.path().to_string(), q, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn create_inner(
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
    let request = body::read_optional(
        body,
        node.settings.max_body_bytes,
        CreateSnapshotRequest::parse,
    )
    .await?;
    // ES checks the repository before the name.
    super::registered(&node, &repo).await?;
    let name = resolve_name(&snap, now_millis()).map_err(|e| e.to_es())?;
    let metadata = request.metadata_strings();
    let started = start(&node, &repo, &name, &request, metadata, None).await?;
    if !wait {
        return Ok(ok(accepted()));
    }
    let out = started.outcome().await?;
    Ok(ok(create_completed(&info(&repo, &out))))
}

/// A snapshot accepted and running on its own thread.
#[derive(Debug)]
pub struct Started {
    pub repository: String,
    pub name: String,
    done: tokio::sync::oneshot::Receiver<Result<SnapshotOutcome, Error>>,
}

impl Started {
    /// Waits for the snapshot's end: its outcome, or the failure as ES
    /// reports it.
    pub async fn outcome(self) -> Result<SnapshotOutcome, EsError> {
        let (repo, name) = (self.repository.clone(), self.name.clone());
        described(&repo, &name, self.raw_outcome().await)
    }

    /// The snapshot's own outcome (`None`: its thread ended without one).
    pub async fn raw_outcome(self) -> Option<Result<SnapshotOutcome, Error>> {
        self.done.await.ok()
    }
}

/// A raw outcome as ES reports it.
pub fn described(
    repo: &str,
    name: &str,
    raw: Option<Result<SnapshotOutcome, Error>>,
) -> Result<SnapshotOutcome, EsError> {
    match raw {
        Some(outcome) => outcome.map_err(|e| failure(repo, name, e)),
        None => Err(EsError::new(
            500,
            "snapshot_exception",
            format!("[{repo}:{name}] the snapshot thread ended without an answer"),
        )),
    }
}

/// Starts snapshot `name` (already resolved) of the data directory in
/// registered repository `repo`, as `request` asks, with `metadata`: the
/// one path every snapshot the node takes goes through (the create API
/// and lifecycle runs), so the running list, hooks and rate limits apply
/// to all of them. Returns once the snapshot is listed as running.
pub async fn start(
    node: &Shared,
    repo: &str,
    name: &str,
    request: &CreateSnapshotRequest,
    metadata: BTreeMap<String, String>,
    slot: Option<SlotFence>,
) -> Result<Started, EsError> {
    let reg = super::registered(node, repo).await?;
    validate_snapshot_name(repo, name)?;
    let indices = if request.indices.is_empty() {
        "*".to_string()
    } else {
        request.indices.join(",")
    };
    let mut opts = SnapshotOptions {
        name: name.to_string(),
        source: node.settings.data.clone(),
        selection: Selection::parse(&indices)
            .map_err(|e| EsError::illegal_argument(e.to_string()))?,
        extra_indices: Vec::new(),
        include_global_state: request.include_global_state,
        partial: request.partial,
        metadata,
        progress: false,
        hooks: CommandHooks::for_snapshot(&node.settings.hooks, repo, name),
        slot,
        ..Default::default()
    };
    let store = open::store(&reg, false).map_err(|e| EsError::repository(repo, &e.to_string()))?;
    let registered_limit = match reg.settings.get("max_snapshot_bytes_per_sec") {
        Some(v) => parse_byte_size("max_snapshot_bytes_per_sec", v)?,
        None => None,
    };
    // Listed as running from here; a name running or stored is refused.
    let registration = node.running.register(repo, &mut opts)?;
    refuse_stored_name(node, repo, name).await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let outcome = Repo::open_in(store).and_then(|r| {
            // The registration's limit wins over the repository's own, as
            // the CLI's flag does; 0 means none.
            let up = registered_limit
                .or(r.settings.max_snapshot_bytes_per_sec)
                .filter(|v| *v > 0);
            create_snapshot(&r.with_limits(up, None), &opts)
        });
        registration.finish(&outcome);
        let _ = tx.send(outcome);
    });
    Ok(Started {
        repository: repo.to_string(),
        name: name.to_string(),
        done: rx,
    })
}

fn info(repo: &str, out: &SnapshotOutcome) -> SnapshotInfo {
    let summary = out.manifest.summary();
    let metadata: &BTreeMap<String, String> = &out.manifest.metadata;
    let detail = Detail {
        metadata: Some(metadata),
        failures: Some(&out.manifest.failures),
    };
    SnapshotInfo::stored(repo, &summary, detail, InfoOptions::default())
}

fn failure(repo: &str, name: &str, e: Error) -> EsError {
    match e {
        Error::Conflict(RootConflict::DuplicateSnapshot(_)) => {
            EsError::snapshot_name_already_in_use(repo, name, false)
        }
        Error::Conflict(RootConflict::ReadOnly) => EsError::repository_readonly(repo),
        Error::Selection(s) => EsError::illegal_argument(s.to_string()),
        other => EsError::new(
            500,
            "snapshot_exception",
            format!("[{repo}:{name}] {other}"),
        ),
    }
}

/// ES checks the repository's snapshots before accepting a create, so a
/// taken name is refused at once rather than failing in the background.
async fn refuse_stored_name(node: &Shared, repo: &str, name: &str) -> Result<(), EsError> {
    let reader = super::snapshots::registered_reader(node, repo).await?;
    let root = reader
        .root()
        .await
        .map_err(|e| EsError::repository(repo, &e.to_string()))?;
    match root.snapshot(name) {
        Some(_) => Err(EsError::snapshot_name_already_in_use(repo, name, false)),
        None => Ok(()),
    }
}
