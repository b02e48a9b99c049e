//! Searchable snapshots: `POST /_snapshot/<repo>/<snap>/_mount`,
//! `GET /_searchable_snapshots/stats` (and per index),
//! `GET /_searchable_snapshots/cache/stats`,
//! `POST /_searchable_snapshots/cache/clear`; `DELETE /<index>` of a
//! mounted index unmounts it (`unmount`). The mounts themselves are
//! `node::mounts`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::core::es::mount_request::MountRequest;
use crate::core::es::params::Params;
use crate::core::lazy::cache::CacheStats;
use crate::native::mount::{MountStorage, Mounted, Source};
use crate::node::mounts::{self, MountRecord, MountedIndex};
use crate::node::reply::{internal, ok, EsError};
use crate::node::server::Shared;
use crate::node::{body, indices};

type Pairs = Vec<(String, String)>;

fn answer(result: Result<Response, EsError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /_snapshot/<repo>/<snap>/_mount?storage=full_copy|shared_cache`.
pub async fn mount(
    State(node): State<Shared>,
    Path((repo, snap)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
    body: Body,
) -> Response {
    answer(mount_inner(node, repo, snap, uri.path(), &q, body).await)
}

async fn mount_inner(
    node: Shared,
    repo: String,
    snap: String,
    path: &str,
    q: &Pairs,
    body: Body,
) -> Result<Response, EsError> {
    let params = Params(q);
    params.check_known(path, &["wait_for_completion", "master_timeout", "storage"])?;
    let wait = params.bool("wait_for_completion", false)?;
    let storage = match params.get("storage").unwrap_or("full_copy") {
        "full_copy" => MountStorage::FullCopy,
        "shared_cache" => MountStorage::SharedCache,
        other => {
            return Err(EsError::illegal_argument(format!(
                "unknown storage type [{other}]: use full_copy or shared_cache"
            )))
        }
    };
    let request = MountRequest::parse(&body::read(body, node.settings.max_body_bytes).await?)?;
    let record = MountRecord {
        repository: repo.clone(),
        snapshot: snap.clone(),
        index: request.index.clone(),
        storage,
    };
    // Held from the existence check to the record: two mounts of one
    // name cannot both pass.
    let closed = node.closed.lock().await;
    let name = request.renamed_index;
    if indices::exists(&node.settings.data, &name) {
        return Err(EsError::new(
            400,
            "resource_already_exists_exception",
            format!("index [{name}] already exists"),
        ));
    }
    let mount = start(&node, &name, &record)
        .await
        .map_err(|e| refused(&repo, &snap, &request.index, e))?;
    let mut live = node.mounts.live.lock().await;
    live.insert(name.clone(), MountedIndex { record, mount });
    persist(&node, &live)?;
    drop(closed);
    if !wait {
        return Ok(ok(json!({ "accepted": true })));
    }
    Ok(ok(json!({
        "snapshot": {
            "snapshot": snap,
            "indices": [name],
            "shards": {"total": 1, "failed": 0, "successful": 1},
        }
    })))
}

/// Mounts `record` as index `name` of the data folder (the folder is made
/// for it, and removed again if the mount fails).
pub async fn start(
    node: &Shared,
    name: &str,
    record: &MountRecord,
) -> Result<Mounted, crate::error::Error> {
    let reg = super::registered(node, &record.repository)
        .await
        .map_err(|e| crate::error::Error::NotFound(e.reason))?;
    let reader = crate::node::open::reader(&reg).await?;
    let source = Source {
        control: reader.store.clone(),
        reader,
    };
    let state = &node.state_folder;
    let bound = node.settings.searchable_cache_size;
    let at = node.settings.data.join(name);
    let opts = mounts::mount_options(state, name, bound, record, at.clone());
    let cache = match record.storage {
        MountStorage::SharedCache => node.mounts.shared_cache(state, bound, &source)?,
        MountStorage::FullCopy => crate::native::mount::open_cache(&source, &opts)?,
    };
    std::fs::create_dir_all(&at).map_err(|e| crate::error::Error::io(&at, e))?;
    match Mounted::start(&source, &opts, cache).await {
        Ok(m) => Ok(m),
        Err(e) => {
            let _ = std::fs::remove_dir(&at);
            Err(e)
        }
    }
}

fn refused(repo: &str, snap: &str, index: &str, e: crate::error::Error) -> EsError {
    use crate::error::Error;
    match e {
        Error::SnapshotMissing(_) => EsError::snapshot_missing(repo, snap),
        Error::NotFound(reason) if reason.starts_with("index [") => EsError::index_not_found(index),
        Error::NotFound(reason) => {
            EsError::repository_missing(repo).with_field("detail", reason.into())
        }
        other => internal(format!("cannot mount [{repo}:{snap}/{index}]: {other}")),
    }
}

fn persist(node: &Shared, live: &BTreeMap<String, MountedIndex>) -> Result<(), EsError> {
    let records: BTreeMap<String, MountRecord> = live
        .iter()
        .map(|(n, m)| (n.clone(), m.record.clone()))
        .collect();
    mounts::write_records(&node.state_folder, &records).map_err(|e| internal(e.to_string()))
}

/// Unmounts `name` if it is a mounted index (`DELETE /<index>`): the
/// folder is left empty for the caller to remove. Waits for open files to
/// be closed. False if it was not mounted.
pub async fn unmount(node: &Shared, name: &str) -> Result<bool, EsError> {
    let mut live = node.mounts.live.lock().await;
    let Some(m) = live.remove(name) else {
        return Ok(false);
    };
    persist(node, &live)?;
    drop(live);
    let storage = m.record.storage;
    let stopped = tokio::task::spawn_blocking(move || m.mount.stop())
        .await
        .map_err(|e| internal(e.to_string()))?;
    stopped.map_err(|e| internal(format!("cannot unmount [{name}]: {e}")))?;
    if storage == MountStorage::FullCopy {
        let dir = node
            .state_folder
            .join("searchable")
            .join("full_copy")
            .join(name);
        let _ = tokio::fs::remove_dir_all(dir).await;
    }
    Ok(true)
}

/// Mounts again what `mounts.json` records (at start-up); one that fails
/// is said on stderr and dropped from the record.
pub async fn remount_all(node: &Shared) {
    let records = match mounts::read_records(&node.state_folder) {
        Ok(r) => r,
        Err(e) => return eprintln!("searchable snapshots: {e}"),
    };
    let mut live = node.mounts.live.lock().await;
    for (name, record) in records {
        let at = node.settings.data.join(&name);
        mounts::detach_stale(&at);
        match start(node, &name, &record).await {
            Ok(mount) => {
                live.insert(name, MountedIndex { record, mount });
            }
            Err(e) => eprintln!("searchable snapshots: cannot mount [{name}] again: {e}"),
        }
    }
    if let Err(e) = persist(node, &live) {
        eprintln!("searchable snapshots: {}", e.reason);
    }
}

/// Unmounts every mounted index (at shutdown), keeping the record so a
/// restart mounts them again.
pub async fn unmount_all(node: &Shared) {
    let taken: Vec<MountedIndex> = std::mem::take(&mut *node.mounts.live.lock().await)
        .into_values()
        .collect();
    let _ = tokio::task::spawn_blocking(move || {
        for m in taken {
            let _ = m.mount.stop();
        }
    })
    .await;
}

/// `GET /_searchable_snapshots/stats` and `GET /<index>/_searchable_snapshots/stats`.
pub async fn stats(
    State(node): State<Shared>,
    index: Option<Path<String>>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    answer(stats_inner(node, index.map(|p| p.0), uri.path(), &q).await)
}

async fn stats_inner(
    node: Shared,
    index: Option<String>,
    path: &str,
    q: &Pairs,
) -> Result<Response, EsError> {
    Params(q).check_known(path, &["level"])?;
    let live = node.mounts.live.lock().await;
    if let Some(name) = &index {
        if !live.contains_key(name) {
            return Err(EsError::index_not_found(name));
        }
    }
    let mut total = Figures::default();
    let mut per_index = serde_json::Map::new();
    for (name, m) in live.iter() {
        if index.as_ref().is_some_and(|i| i != name) {
            continue;
        }
        let f = Figures::of(&m.mount);
        total.add(&f);
        per_index.insert(
            name.clone(),
            json!({
                "snapshot": m.record.snapshot,
                "repository": m.record.repository,
                "index": m.record.index,
                "storage": m.record.storage,
                "entries": m.mount.entries(),
                "total": f.json(),
            }),
        );
    }
    let n = per_index.len();
    Ok(ok(json!({
        "_shards": {"total": n, "successful": n, "failed": 0},
        "total": total.json(),
        "indices": per_index,
    })))
}

/// What one mount's readers did.
#[derive(Default)]
struct Figures {
    open_count: u64,
    close_count: u64,
    read_count: u64,
    read_bytes: u64,
    failed_reads: u64,
}

impl Figures {
    fn of(m: &Mounted) -> Figures {
        let c = m.counters();
        Figures {
            open_count: c.open_count.load(Ordering::Relaxed),
            close_count: c.close_count.load(Ordering::Relaxed),
            read_count: c.read_count.load(Ordering::Relaxed),
            read_bytes: c.read_bytes.load(Ordering::Relaxed),
            failed_reads: c.failed_reads.load(Ordering::Relaxed),
        }
    }

    fn add(&mut self, o: &Figures) {
        self.open_count += o.open_count;
        self.close_count += o.close_count;
        self.read_count += o.read_count;
        self.read_bytes += o.read_bytes;
        self.failed_reads += o.failed_reads;
    }

    fn json(&self) -> Value {
        json!({
            "open_count": self.open_count,
            "close_count": self.close_count,
            "read_count": self.read_count,
            "read_bytes_in_bytes": self.read_bytes,
            "failed_read_count": self.failed_reads,
        })
    }
}

/// `GET /_searchable_snapshots/cache/stats`: the shared cache, in ES's
/// per-node shape, with snapkeep's hit and miss figures beside.
pub async fn cache_stats(
    State(node): State<Shared>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    if let Err(e) = Params(&q).check_known(uri.path(), &[]) {
        return e.into_response();
    }
    let cache = node.mounts.shared_cache_if_open();
    let (s, size, limit) = match &cache {
        Some(c) => (c.stats(), c.total(), c.limit()),
        None => (
            CacheStats::default(),
            0,
            node.settings.searchable_cache_size,
        ),
    };
    ok(json!({
        "nodes": {
            node.identity.id.clone(): {
                "shared_cache": {
                    "reads": s.hits + s.misses,
                    "bytes_read_in_bytes": s.bytes_read_from_cache + s.bytes_read_from_repository,
                    "writes": s.misses,
                    "bytes_written_in_bytes": s.bytes_read_from_repository,
                    "evictions": s.evictions,
                    "size_in_bytes": size,
                    "limit_in_bytes": limit,
                    "hits": s.hits,
                    "misses": s.misses,
                    "bytes_read_from_cache_in_bytes": s.bytes_read_from_cache,
                    "bytes_read_from_repository_in_bytes": s.bytes_read_from_repository,
                    "evicted_bytes_in_bytes": s.evicted_bytes,
                    "corrupt": s.corrupt,
                }
            }
        }
    }))
}

/// `POST /_searchable_snapshots/cache/clear`: drops every shared-cache
/// entry no open file holds.
pub async fn cache_clear(
    State(node): State<Shared>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    if let Err(e) = Params(&q).check_known(
        uri.path(),
        &["expand_wildcards", "allow_no_indices", "ignore_unavailable"],
    ) {
        return e.into_response();
    }
    if let Some(c) = node.mounts.shared_cache_if_open() {
        c.clear();
    }
    let n = node.mounts.live.lock().await.len();
    ok(json!({"_shards": {"total": n, "successful": n, "failed": 0}}))
}
