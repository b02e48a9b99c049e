//! `GET /_cat/snapshots[/<repo>]`: every stored and running snapshot of
//! the selected repositories (a comma list with wildcards; default all) as
//! `core::es::cat`'s SNAPSHOTS table.

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::core::es::cat::{self, CatOutput, CatParams, Cell};
use crate::core::es::get_snapshots::Candidate;
use crate::core::es::params::Params;
use crate::core::es::patterns::NamePatterns;
use crate::native::clock::now_millis;
use crate::node::reply::{ok, EsError};
use crate::node::server::Shared;

type Pairs = Vec<(String, String)>;

pub async fn all(
    State(node): State<Shared>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    answer(node, "_all", uri.path(), q).await
}

pub async fn of(
    State(node): State<Shared>,
    Path(repos): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<Pairs>,
) -> Response {
    answer(node, &repos, uri.path(), q).await
}

async fn answer(node: Shared, repos: &str, path: &str, q: Pairs) -> Response {
    let output = async {
        let params = Params(&q);
        let mut allowed = cat::ALLOWED.to_vec();
        allowed.push("ignore_unavailable");
        params.check_known(path, &allowed)?;
        let cat_params = CatParams::parse(&params)?;
        let ignore_unavailable = params.bool("ignore_unavailable", false)?;
        let rows = rows(&node, repos, ignore_unavailable).await?;
        cat::render(&cat::SNAPSHOTS, &rows, &cat_params)
    };
    match output.await {
        Ok(CatOutput::Text(text)) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], text).into_response()
        }
        Ok(CatOutput::Json(value)) => ok(value),
        Err(e) => e.into_response(),
    }
}

/// The rows of every selected repository, in repository then snapshot
/// order; a named repository that is not registered is a 404, and one
/// that cannot be read is an error unless `ignore_unavailable`.
async fn rows(
    node: &Shared,
    repos: &str,
    ignore_unavailable: bool,
) -> Result<Vec<Vec<Cell>>, EsError> {
    let patterns = NamePatterns::parse(repos);
    let registered = node.repositories.lock().await.clone();
    if let Some(missing) = patterns
        .literal_names()
        .into_iter()
        .find(|n| !registered.contains_key(*n))
    {
        return Err(EsError::repository_missing(missing));
    }
    let mut rows = Vec::new();
    for (name, reg) in registered.iter().filter(|(n, _)| patterns.matches(n)) {
        let root = match node.listing_readers.get(name, reg).await {
            Ok(reader) => reader.root_shared().await,
            Err(e) => Err(e),
        };
        let root = match root {
            Ok(root) => root,
            Err(_) if ignore_unavailable => continue,
            Err(e) => return Err(EsError::repository(name, &e.to_string())),
        };
        for s in &root.snapshots {
            let c = Candidate::stored(name, s, ());
            rows.push(cat::snapshot_row(&c, s.state.as_str(), None, false, 0));
        }
        // Running ones follow, as ES lists them (`IN_PROGRESS`, no end).
        for r in node.running.of(Some(name)) {
            let info = r.info();
            if root.snapshot(&info.snapshot).is_none() {
                let c = Candidate::running(name, &info, ());
                rows.push(cat::snapshot_row(
                    &c,
                    "IN_PROGRESS",
                    None,
                    true,
                    now_millis(),
                ));
            }
        }
    }
    Ok(rows)
}
