//! The node's routes, one module per API family.

mod analyze;
pub mod api;
mod cat;
mod cat_snapshots;
mod ccr;
mod ccr_auto_follow;
mod ccr_publish;
mod clone_snapshot;
mod cluster;
pub(crate) mod create_snapshot;
mod get_index;
mod indices;
mod repositories;
mod restore;
mod root;
pub(crate) mod searchable;
mod slm;
pub(crate) mod snapshots;
mod status;

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
        // Restore and the data folder's indices (static paths win over
        // `/{index}`, so `_snapshot`, `_cat`, `_cluster` are never indices).
        .route(
            "/_snapshot/{repo}/{snap}/_restore",
            post(restore::restore_snapshot),
        )
        .route("/_snapshot/_status", get(status::running))
        .route("/_snapshot/{repo}/_status", get(status::running))
        .route("/_snapshot/{repo}/{snap}/_status", get(status::named))
        .route("/_cat/indices", get(indices::cat_indices))
        .route("/_snapshot/{repo}/{snap}/_mount", post(searchable::mount))
        .route("/_searchable_snapshots/stats", get(searchable::stats))
        .route(
            "/{index}/_searchable_snapshots/stats",
            get(searchable::stats),
        )
        .route(
            "/_searchable_snapshots/cache/stats",
            get(searchable::cache_stats),
        )
        .route(
            "/_searchable_snapshots/cache/clear",
            post(searchable::cache_clear),
        )
        .route("/_cat/recovery", get(indices::cat_recovery))
        .route("/_recovery", get(indices::recovery))
        .route("/{index}", get(get_index::get).delete(indices::delete))
        .route("/{index}/_close", post(indices::close))
        .route("/{index}/_open", post(indices::open))
        .route("/{index}/_recovery", get(indices::recovery))
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
        // Snapshot lifecycle management (`node::slm`).
        .route("/_slm/policy", get(slm::get_all))
        .route(
            "/_slm/policy/{id}",
            get(slm::get).put(slm::put).delete(slm::delete),
        )
        .route(
            "/_slm/policy/{id}/_execute",
            post(slm::execute).put(slm::execute),
        )
        .route("/_slm/policy/{id}/_history", get(slm::history))
        .route("/_slm/_execute_retention", post(slm::execute_retention))
        .route("/_slm/stats", get(slm::stats))
        .route("/_slm/start", post(slm::start))
        .route("/_slm/stop", post(slm::stop))
        .route("/_slm/status", get(slm::status))
        .route("/_health_report", get(slm::health_report))
        .route("/_health_report/slm", get(slm::health_report))
        // Cross-cluster replication: remote clusters.
        .route(
            "/_cluster/settings",
            get(cluster::get_settings).put(cluster::put_settings),
        )
        .route("/_remote/info", get(cluster::remote_info))
        // Cross-cluster replication: leader feed and follower indices.
        .route("/{index}/_ccr/changes", get(ccr::changes))
        .route("/{index}/_ccr/deltas", post(ccr::deltas))
        .route("/{index}/_ccr/follow", put(ccr::follow))
        .route("/{index}/_ccr/pause_follow", post(ccr::pause))
        .route("/{index}/_ccr/resume_follow", post(ccr::resume))
        .route("/{index}/_ccr/unfollow", post(ccr::unfollow))
        .route("/{index}/_ccr/stats", get(ccr::index_stats))
        .route("/{index}/_ccr/info", get(ccr::info))
        .route("/{index}/_ccr/forget_follower", post(ccr::forget_follower))
        .route("/{index}/_ccr/promote", post(ccr::promote))
        .route(
            "/{index}/_ccr/publish",
            get(ccr_publish::get)
                .put(ccr_publish::put)
                .delete(ccr_publish::delete),
        )
        .route("/_ccr/stats", get(ccr::all_stats))
        .route("/_ccr/publish", get(ccr_publish::get_all))
        .route("/_ccr/auto_follow", get(ccr_auto_follow::get_all))
        .route(
            "/_ccr/auto_follow/{name}",
            get(ccr_auto_follow::get)
                .put(ccr_auto_follow::put)
                .delete(ccr_auto_follow::delete),
        )
        .route(
            "/_ccr/auto_follow/{name}/pause",
            post(ccr_auto_follow::pause),
        )
        .route(
            "/_ccr/auto_follow/{name}/resume",
            post(ccr_auto_follow::resume),
        )
}

/// The registration of repository `name`, or ES's 404 for a missing one
/// (ES checks the repository before anything else in a request).
pub(crate) async fn registered(
    node: &Shared,
    name: &str,
) -> Result<crate::node::state::Registration, crate::node::reply::EsError> {
    node.repositories
        .lock()
        .await
        .get(name)
        .cloned()
        .ok_or_else(|| crate::node::reply::EsError::repository_missing(name))
}
