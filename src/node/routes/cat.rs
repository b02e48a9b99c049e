//! `GET /_cat/repositories`: the table is `core::es::cat`'s (`?v`, `?h`,
//! `?s`, `?help`, `?format=json`); this module feeds it the rows.

use axum::extract::{OriginalUri, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::core::es::cat::{self, CatOutput, CatParams};
use crate::core::es::params::Params;
use crate::node::reply::{ok, EsError};
use crate::node::server::Shared;

pub async fn repositories(
    State(node): State<Shared>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let rows: Vec<_> = node
        .repositories
        .lock()
        .await
        .iter()
        .map(|(name, reg)| cat::repository_row(name, &reg.kind))
        .collect();
    match table(uri.path(), &q, &rows) {
        Ok(CatOutput::Text(text)) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], text).into_response()
        }
        Ok(CatOutput::Json(value)) => ok(value),
        Err(e) => e.into_response(),
    }
}

fn table(
    path: &str,
    q: &[(String, String)],
    rows: &[Vec<cat::Cell>],
) -> Result<CatOutput, EsError> {
    let params = Params(q);
    let mut allowed = cat::ALLOWED.to_vec();
    allowed.push("local");
    params.check_known(path, &allowed)?;
    cat::render(&cat::REPOSITORIES, rows, &CatParams::parse(&params)?)
}
