//! Repository APIs (reference section 4): register, get, unregister,
//! verify and clean up. Registrations live in the state folder; the data
//! in a repository is only touched by `_cleanup` (and by the first
//! registration of an empty writable location, which creates it).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// A request's query pairs, owned (borrowed as `core::es` [`Params`]).
type Pairs = Vec<(String, String)>;

use crate::core::es::names::validate_repository_name;
use crate::core::es::params::Params;
use crate::core::es::patterns::NamePatterns;
use crate::core::es::repository_request::RepositoryRequest;
use crate::native::clock::{now_millis, SystemClock};
use crate::node::body;
use crate::node::open;
use crate::node::reply::{internal, ok, EsError};
use crate::node::repository_settings::registration;
use crate::node::server::Shared;
use crate::node::state::{write_atomic, Registration, Repositories, REPOSITORIES_FILE};

type Q = Query<Pairs>;

fn answer(result: Result<Response, EsError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `PUT|POST /_snapshot/<repo>`: registers (or updates) a repository,
/// verified first unless `?verify=false`.
pub async fn put(
    State(node): State<Shared>,
    Path(name): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Q,
    body: Body,
) -> Response {
    answer(put_inner(node, name, uri.path().to_string(), q, body).await)
}

async fn put_inner(
    node: Shared,
    name: String,
    path: String,
    q: Pairs,
    body: Body,
) -> Result<Response, EsError> {
    let q = Params(&q);
    q.check_known(&path, &["verify", "master_timeout", "timeout"])?;
    let verify = q.bool("verify", true)?;
    let bytes = body::read(body, node.settings.max_body_bytes).await?;
    validate_repository_name(&name)?;
    let request = RepositoryRequest::parse(&name, &bytes)?;
    let mut reg = registration(&name, &request, &node.settings.path_repo)?;
    if verify {
        let reader = open::reader_or_init(&reg)
            .await
            .map_err(|e| EsError::repository_verification(&name, &e.to_string()))?;
        reg.uuid = Some(reader.config.id.clone());
    }
    change(&node, |repos| {
        if repos.get(&name).is_some_and(|old| *old != reg) {
            refuse_in_use(&node, &name)?;
        }
        repos.insert(name.clone(), reg);
        Ok(())
    })
    .await?;
    Ok(ok(json!({"acknowledged": true})))
}

/// Applies `edit` to the registrations and writes them, atomically, before
/// anyone sees the change; a failed write leaves memory as it was.
async fn change(
    node: &Shared,
    edit: impl FnOnce(&mut Repositories) -> Result<(), EsError>,
) -> Result<(), EsError> {
    let mut repos = node.repositories.lock().await;
    let mut next = repos.clone();
    edit(&mut next)?;
    let folder = node.state_folder.clone();
    let written = next.clone();
    tokio::task::spawn_blocking(move || write_atomic(&folder, REPOSITORIES_FILE, &written))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(|e| internal(e.to_string()))?;
    *repos = next;
    Ok(())
}

/// `GET /_snapshot`.
pub async fn get_all(
    State(node): State<Shared>,
    OriginalUri(uri): OriginalUri,
    Query(q): Q,
) -> Response {
    answer(get_inner(node, None, uri.path().to_string(), q).await)
}

/// `GET /_snapshot/<repo>`: comma lists, wildcards, `_all`.
pub async fn get(
    State(node): State<Shared>,
    Path(name): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Q,
) -> Response {
    answer(get_inner(node, Some(name), uri.path().to_string(), q).await)
}

async fn get_inner(
    node: Shared,
    expr: Option<String>,
    path: String,
    q: Pairs,
) -> Result<Response, EsError> {
    let q = Params(&q);
    q.check_known(&path, &["master_timeout", "local"])?;
    q.bool("local", false)?;
    let repos = node.repositories.lock().await;
    let names = select(expr.as_deref(), repos.keys().map(String::as_str))
        .map_err(|missing| EsError::repository_missing(&missing))?;
    let mut out = Map::new();
    for name in names {
        out.insert(name.clone(), describe(&repos[&name]));
    }
    Ok(ok(Value::Object(out)))
}

fn describe(reg: &Registration) -> Value {
    let mut v = json!({"type": reg.kind, "settings": reg.settings});
    if let Some(uuid) = &reg.uuid {
        v["uuid"] = json!(uuid);
    }
    v
}

/// `DELETE /_snapshot/<repo>`: unregisters; the data stays.
pub async fn delete(
    State(node): State<Shared>,
    Path(expr): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Q,
) -> Response {
    answer(delete_inner(node, expr, uri.path().to_string(), q).await)
}

async fn delete_inner(
    node: Shared,
    expr: String,
    path: String,
    q: Pairs,
) -> Result<Response, EsError> {
    Params(&q).check_known(&path, &["master_timeout", "timeout"])?;
    change(&node, |repos| {
        let names = select(Some(&expr), repos.keys().map(String::as_str))
            .map_err(|missing| EsError::repository_missing(&missing))?;
        if names.is_empty() {
            return Err(EsError::repository_missing(&expr));
        }
        for n in &names {
            refuse_in_use(&node, n)?;
        }
        for n in names {
            repos.remove(&n);
        }
        Ok(())
    })
    .await?;
    Ok(ok(json!({"acknowledged": true})))
}

/// A repository a snapshot or restore is using keeps its registration
/// until they end (checked under the registrations' lock).
fn refuse_in_use(node: &Shared, name: &str) -> Result<(), EsError> {
    if !node.running.of(Some(name)).is_empty() || node.recoveries.uses(name) {
        return Err(EsError::repository_in_use(name));
    }
    Ok(())
}

/// `POST /_snapshot/<repo>/_verify`: a write/read/list/delete probe (a
/// read-only repository is only opened).
pub async fn verify(
    State(node): State<Shared>,
    Path(name): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Q,
) -> Response {
    answer(verify_inner(node, name, uri.path().to_string(), q).await)
}

async fn verify_inner(
    node: Shared,
    name: String,
    path: String,
    q: Pairs,
) -> Result<Response, EsError> {
    Params(&q).check_known(&path, &["master_timeout", "timeout"])?;
    let reg = super::registered(&node, &name).await?;
    let reader = open::reader(&reg)
        .await
        .map_err(|e| EsError::repository_verification(&name, &e.to_string()))?;
    if !reg.readonly {
        let run_id = uuid::Uuid::new_v4().to_string();
        crate::repo::verify(&reader, &SystemClock, &run_id)
            .await
            .map_err(|e| EsError::repository_verification(&name, &e.to_string()))?;
    }
    Ok(ok(
        json!({"nodes": {node.identity.id.clone(): {"name": node.settings.name}}}),
    ))
}

/// `POST /_snapshot/<repo>/_cleanup`: removes what no snapshot needs,
/// keeping objects younger than the node's cleanup grace (they may belong
/// to a snapshot still being written by another client).
pub async fn cleanup(
    State(node): State<Shared>,
    Path(name): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Q,
) -> Response {
    answer(cleanup_inner(node, name, uri.path().to_string(), q).await)
}

async fn cleanup_inner(
    node: Shared,
    name: String,
    path: String,
    q: Pairs,
) -> Result<Response, EsError> {
    Params(&q).check_known(&path, &["master_timeout", "timeout"])?;
    let reg = super::registered(&node, &name).await?;
    let reader = open::reader(&reg)
        .await
        .map_err(|e| EsError::repository(&name, &e.to_string()))?;
    let settings = reader
        .root()
        .await
        .map_err(|e| EsError::repository(&name, &e.to_string()))?
        .settings;
    if reg.readonly || settings.readonly {
        return Err(EsError::repository_readonly(&name));
    }
    let grace = Duration::from_secs(node.settings.cleanup_grace_secs);
    let report = crate::repo::cleanup::cleanup(&reader, false, now_millis(), grace, false)
        .await
        .map_err(|e| EsError::repository(&name, &e.to_string()))?;
    Ok(ok(
        json!({"results": {"deleted_bytes": report.bytes, "deleted_blobs": report.objects}}),
    ))
}

/// The names a pattern list selects from `known`, in `known`'s order; a
/// literal name that is not known is the error.
fn select<'a>(
    expr: Option<&str>,
    known: impl Iterator<Item = &'a str>,
) -> Result<Vec<String>, String> {
    let patterns = NamePatterns::parse(expr.unwrap_or("_all"));
    let known: Vec<&str> = known.collect();
    if let Some(missing) = patterns
        .literal_names()
        .into_iter()
        .find(|n| !known.contains(n))
    {
        return Err(missing.to_string());
    }
    Ok(known
        .into_iter()
        .filter(|k| patterns.matches(k))
        .map(str::to_string)
        .collect())
}
