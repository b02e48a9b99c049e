//! `GET /<index>` and `HEAD /<index>` (reference 6.3): an index of the
//! data folder as Elasticsearch describes one. A folder has no mappings or
//! aliases; its settings say what the node knows: one shard, no replica,
//! and whether it is closed. A missing index is ES's 404
//! `index_not_found_exception` (clients call `HEAD /<index>` to ask).

use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::core::es::params::Params;
use crate::node::reply::{ok, EsError};
use crate::node::server::Shared;

use super::indices::{listed, resolve};

type Pairs = Vec<(String, String)>;

const ALLOWED: [&str; 8] = [
    "allow_no_indices",
    "expand_wildcards",
    "features",
    "flat_settings",
    "ignore_unavailable",
    "include_defaults",
    "local",
    "master_timeout",
];

pub async fn get(
    State(node): State<Shared>,
    Path(list): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    inner(node, list, uri.path(), &q)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn inner(node: Shared, list: String, path: &str, q: &Pairs) -> Result<Response, EsError> {
    let params = Params(q);
    params.check_known(path, &ALLOWED)?;
    let ignore_unavailable = params.bool("ignore_unavailable", false)?;
    let flat = params.bool("flat_settings", false)?;
    let closed = node.closed.lock().await.clone();
    let existing = listed(&node)?;
    let asked: Vec<&str> = list
        .split(',')
        .filter(|n| {
            !ignore_unavailable || n.contains('*') || *n == "_all" || {
                existing.iter().any(|f| f.name == *n)
            }
        })
        .collect();
    let names = if asked.is_empty() {
        Vec::new()
    } else {
        resolve(&asked.join(","), &existing, false)?
    };
    let mut out = Map::new();
    for name in names {
        let is_closed = closed.contains(&name);
        out.insert(name.clone(), describe(&name, is_closed, flat));
    }
    Ok(ok(Value::Object(out)))
}

/// One index's entry, in ES's shape (settings values are strings there).
fn describe(name: &str, closed: bool, flat: bool) -> Value {
    let mut settings = vec![
        ("number_of_shards", "1"),
        ("number_of_replicas", "0"),
        ("provided_name", name),
    ];
    if closed {
        settings.push(("verified_before_close", "true"));
    }
    let settings: Map<String, Value> = settings
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let settings = if flat {
        let prefixed = settings.into_iter().map(|(k, v)| (format!("index.{k}"), v));
        Value::Object(prefixed.collect())
    } else {
        json!({ "index": settings })
    };
    json!({ "aliases": {}, "mappings": {}, "settings": settings })
}
