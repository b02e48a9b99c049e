//! The data folder's indices (reference 5 and 6.3): `GET /_cat/indices`,
//! `DELETE /<index>`, `POST /<index>/_close|_open`, `GET /<index>/_recovery`
//! and `GET /_cat/recovery`. An index is a top-level folder of `--data`
//! (`crate::node::indices`); restores are the only recoveries there are.

use std::collections::BTreeSet;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::core::es::cat::{self, CatOutput, CatParams, Cell, Column};
use crate::core::es::params::Params;
use crate::core::es::patterns::NamePatterns;
use crate::core::es::recovery::TargetNode;
use crate::native::clock::now_millis;
use crate::node::indices::{self, IndexFolder};
use crate::node::reply::{internal, ok, EsError};
use crate::node::server::Shared;

type Pairs = Vec<(String, String)>;

fn answer(result: Result<Response, EsError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

pub(super) fn listed(node: &Shared) -> Result<Vec<IndexFolder>, EsError> {
    indices::list(&node.settings.data)
        .map_err(|e| internal(format!("cannot list the data folder: {e}")))
}

fn render(path: &str, q: &Pairs, columns: &[Column], rows: &[Vec<Cell>]) -> Response {
    let params = Params(q);
    let table = params
        .check_known(path, &cat::ALLOWED)
        .and_then(|()| CatParams::parse(&params))
        .and_then(|p| cat::render(columns, rows, &p));
    match table {
        Ok(CatOutput::Text(text)) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], text).into_response()
        }
        Ok(CatOutput::Json(value)) => ok(value),
        Err(e) => e.into_response(),
    }
}

/// `GET /_cat/indices`: one shard, no replica, files as `docs.count`; a
/// closed index shows `close` and blank counts, as ES prints it.
pub async fn cat_indices(
    State(node): State<Shared>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    let closed = node.closed.lock().await.clone();
    let folders = match listed(&node) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let rows: Vec<Vec<Cell>> = folders.iter().map(|f| index_row(f, &closed)).collect();
    render(uri.path(), &q, &cat::INDICES, &rows)
}

fn index_row(f: &IndexFolder, closed: &BTreeSet<String>) -> Vec<Cell> {
    let open = !closed.contains(&f.name);
    let counted = |c: Cell| if open { c } else { Cell::Empty };
    vec![
        Cell::text("green"),
        Cell::text(if open { "open" } else { "close" }),
        Cell::text(&f.name),
        Cell::Empty,
        Cell::text(1),
        Cell::text(0),
        counted(Cell::text(f.files)),
        counted(Cell::text(0)),
        counted(Cell::Bytes(f.bytes)),
        counted(Cell::Bytes(f.bytes)),
    ]
}

/// The names a path's index list resolves to. Wildcards and `_all` are
/// refused where ES's `action.destructive_requires_name` (true in 8.x)
/// refuses them; elsewhere they match the existing indices.
pub(super) fn resolve(
    list: &str,
    existing: &[IndexFolder],
    destructive: bool,
) -> Result<Vec<String>, EsError> {
    let wild = |n: &str| n == "_all" || n == "*" || n.contains('*');
    if destructive && list.split(',').any(wild) {
        return Err(EsError::illegal_argument(
            "Wildcard expressions or all indices are not allowed",
        ));
    }
    let mut names = Vec::new();
    for part in list.split(',') {
        if wild(part) {
            let patterns = NamePatterns::parse(if part == "_all" { "*" } else { part });
            names.extend(
                existing
                    .iter()
                    .filter(|f| patterns.matches(&f.name))
                    .map(|f| f.name.clone()),
            );
        } else if existing.iter().any(|f| f.name == part) {
            names.push(part.to_string());
        } else {
            return Err(EsError::index_not_found(part));
        }
    }
    names.dedup();
    Ok(names)
}

/// `DELETE /<index>`: removes the index folders.
pub async fn delete(
    State(node): State<Shared>,
    Path(list): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    answer(delete_inner(node, list, uri.path(), &q).await)
}

async fn delete_inner(
    node: Shared,
    list: String,
    path: &str,
    q: &Pairs,
) -> Result<Response, EsError> {
    Params(q).check_known(path, &["master_timeout", "timeout"])?;
    let mut closed = node.closed.lock().await;
    let names = resolve(&list, &listed(&node)?, true)?;
    if let Some(busy) = names.iter().find(|n| node.recoveries.running(n)) {
        return Err(EsError::illegal_argument(format!(
            "index [{busy}] is being restored; delete it once the restore ended"
        )));
    }
    for name in &names {
        // A mounted index: unmounted first, then its empty folder goes.
        super::searchable::unmount(&node, name).await?;
        std::fs::remove_dir_all(node.settings.data.join(name))
            .map_err(|e| internal(format!("cannot delete index [{name}]: {e}")))?;
        node.recoveries.forget(name);
    }
    let mut next = closed.clone();
    next.retain(|n| !names.contains(n));
    if next != *closed {
        indices::write_closed(&node.state_folder, &next).map_err(|e| internal(e.to_string()))?;
        *closed = next;
    }
    Ok(ok(json!({ "acknowledged": true })))
}

/// `POST /<index>/_close`.
pub async fn close(
    State(node): State<Shared>,
    Path(list): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    answer(set_closed(node, list, uri.path(), &q, true).await)
}

/// `POST /<index>/_open`.
pub async fn open(
    State(node): State<Shared>,
    Path(list): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    answer(set_closed(node, list, uri.path(), &q, false).await)
}

async fn set_closed(
    node: Shared,
    list: String,
    path: &str,
    q: &Pairs,
    close: bool,
) -> Result<Response, EsError> {
    Params(q).check_known(
        path,
        &[
            "master_timeout",
            "timeout",
            "wait_for_active_shards",
            "expand_wildcards",
        ],
    )?;
    let mut closed = node.closed.lock().await;
    let names = resolve(&list, &listed(&node)?, close)?;
    if let Some(busy) = names.iter().find(|n| node.recoveries.running(n)) {
        return Err(EsError::illegal_argument(format!(
            "index [{busy}] is being restored"
        )));
    }
    let mut next = closed.clone();
    for n in &names {
        if close {
            next.insert(n.clone());
        } else {
            next.remove(n);
        }
    }
    indices::write_closed(&node.state_folder, &next).map_err(|e| internal(e.to_string()))?;
    *closed = next;
    if !close {
        return Ok(ok(
            json!({"acknowledged": true, "shards_acknowledged": true}),
        ));
    }
    let each: Map<String, Value> = names
        .iter()
        .map(|n| (n.clone(), json!({ "closed": true })))
        .collect();
    Ok(ok(
        json!({"acknowledged": true, "shards_acknowledged": true, "indices": each}),
    ))
}

/// `GET /<index>/_recovery` (and `GET /_recovery`): the latest restore
/// of each index, one shard each (`core::es::recovery`'s shape, live while
/// the restore runs).
pub async fn recovery(
    State(node): State<Shared>,
    list: Option<Path<String>>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    answer(recovery_inner(node, list.map(|p| p.0), uri.path(), &q))
}

fn recovery_inner(
    node: Shared,
    list: Option<String>,
    path: &str,
    q: &Pairs,
) -> Result<Response, EsError> {
    let params = Params(q);
    params.check_known(path, &["active_only", "detailed", "ignore_unavailable"])?;
    let active_only = params.bool("active_only", false)?;
    let existing = listed(&node)?;
    let names = match &list {
        Some(l) => resolve(l, &existing, false)?,
        None => existing.iter().map(|f| f.name.clone()).collect(),
    };
    let target = TargetNode {
        id: &node.identity.id,
        name: &node.settings.name,
    };
    let now = now_millis();
    let mut out = Map::new();
    for (repository, status, ended) in node.recoveries.statuses() {
        if active_only && ended {
            continue;
        }
        let wanted = |index: &str| names.iter().any(|n| n == index);
        status.add_to(&mut out, &repository, target, &wanted, now);
    }
    Ok(ok(Value::Object(out)))
}

/// `GET /_cat/recovery`.
pub async fn cat_recovery(
    State(node): State<Shared>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    let now = now_millis();
    let rows: Vec<Vec<Cell>> = node
        .recoveries
        .statuses()
        .iter()
        .flat_map(|(repository, status, _)| status.cat_rows(repository, &node.settings.name, now))
        .collect();
    render(uri.path(), &q, &cat::RECOVERY, &rows)
}
