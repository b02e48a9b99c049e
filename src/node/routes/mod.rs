//! The node's routes, one module per API family.

mod analyze;
pub mod api;
mod cat;
mod cat_snapshots;
mod clone_snapshot;
mod create_snapshot;
mod repositories;
mod root;
mod snapshots;

use axum::routing::{any, get, post, put};
use axum::Router;

use crate::node::server::Shared;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/", get(root::info))
        .route("/_cluster/health", get(root::health))
        .route("/_snapshot", get(repositories::get_all))
        .route(
            "/_snapshot/{repo}",
            get(repositories::get)
                .put(repositories::put)
                .post(repositories::put)
                .delete(repositories::delete),
        )
        .route("/_snapshot/{repo}/_verify", post(repositories::verify))
        .route("/_snapshot/{repo}/_cleanup", post(repositories::cleanup))
        .route(
            "/_snapshot/{repo}/{snap}",
            get(snapshots::get)
                .put(create_snapshot::create)
                .post(create_snapshot::create)
                .delete(snapshots::delete),
        )
        .route("/_cat/repositories", get(cat::repositories))
        // node-api: the read API, _cat/snapshots, clone, analyze.
        .route("/api/repos", any(api::handle))
        .route("/api/repos/{*rest}", any(api::handle))
        .route("/_cat/snapshots", get(cat_snapshots::all))
        .route("/_cat/snapshots/{repo}", get(cat_snapshots::of))
        .route(
            "/_snapshot/{repo}/{snap}/_clone/{target}",
            put(clone_snapshot::clone),
        )
        .route("/_snapshot/{repo}/_analyze", post(analyze::analyze))
}
