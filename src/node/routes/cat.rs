//! `GET /_cat/repositories`: a text table (`?v` adds the header), or JSON
//! objects of strings with `?format=json`.

use axum::extract::{OriginalUri, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::node::params::Params;
use crate::node::reply::{ok, EsError};
use crate::node::server::Shared;

pub async fn repositories(
    State(node): State<Shared>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let q = Params(q);
    if let Err(e) = q.check(uri.path(), &["v", "format", "local", "master_timeout"]) {
        return e.into_response();
    }
    let rows: Vec<(String, String)> = node
        .repositories
        .lock()
        .await
        .iter()
        .map(|(name, reg)| (name.clone(), reg.kind.clone()))
        .collect();
    match q.get("format") {
        Some("json") => ok(json!(rows
            .iter()
            .map(|(id, t)| json!({"id": id, "type": t}))
            .collect::<Vec<_>>())),
        None | Some("txt") | Some("text") => match q.flag("v", false) {
            Ok(v) => text(table(&rows, v)),
            Err(e) => e.into_response(),
        },
        Some(other) => {
            EsError::illegal_argument(format!("unsupported format [{other}]")).into_response()
        }
    }
}

/// Columns padded to the widest cell; `type` is right-aligned, as
/// Elasticsearch declares it.
fn table(rows: &[(String, String)], header: bool) -> String {
    let mut all: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    if header {
        all.insert(0, ("id", "type"));
    }
    let w0 = all.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w1 = all.iter().map(|r| r.1.len()).max().unwrap_or(0);
    all.iter()
        .map(|(id, t)| format!("{id:<w0$} {t:>w1$}\n"))
        .collect()
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_pads_and_right_aligns_type() {
        let rows = vec![
            ("repo1".to_string(), "fs".to_string()),
            ("r2".to_string(), "azure".to_string()),
        ];
        assert_eq!(
            table(&rows, true),
            "id     type\nrepo1    fs\nr2    azure\n"
        );
        assert_eq!(table(&rows, false), "repo1    fs\nr2    azure\n");
    }
}
