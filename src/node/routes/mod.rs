//! The node's routes, one module per API family.

mod cat;
mod create_snapshot;
mod repositories;
mod root;
mod snapshots;

use axum::routing::{get, post};
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
}
