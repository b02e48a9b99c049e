//! `GET /` (and `HEAD /`, which clients use as a ping) and a minimal
//! `GET /_cluster/health`: a single node that is always green.

use axum::extract::{OriginalUri, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::core::es::params::Params;
use crate::node::reply::ok;
use crate::node::server::Shared;

/// The Elasticsearch version the node reports: clients gate features on
/// it, so it is an 8.x number, not snapkeep's own.
pub const ES_VERSION: &str = "8.17.0";
pub const CLUSTER_NAME: &str = "snapkeep";

pub async fn info(
    State(node): State<Shared>,
    OriginalUri(uri): OriginalUri,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    if let Err(e) = Params(&params).check_known(uri.path(), &[]) {
        return e.into_response();
    }
    ok(json!({
        "name": node.settings.name,
        "cluster_name": CLUSTER_NAME,
        "cluster_uuid": node.identity.id,
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": concat!("snapkeep-", env!("CARGO_PKG_VERSION")),
            "build_date": "2024-12-11T12:08:05.663969764Z",
            "build_snapshot": false,
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    }))
}

const HEALTH_PARAMS: &[&str] = &[
    "level",
    "local",
    "master_timeout",
    "timeout",
    "wait_for_status",
    "wait_for_nodes",
    "wait_for_events",
    "wait_for_no_relocating_shards",
    "wait_for_no_initializing_shards",
    "wait_for_active_shards",
];

pub async fn health(
    OriginalUri(uri): OriginalUri,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    if let Err(e) = Params(&params).check_known(uri.path(), HEALTH_PARAMS) {
        return e.into_response();
    }
    ok(json!({
        "cluster_name": CLUSTER_NAME,
        "status": "green",
        "timed_out": false,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "active_primary_shards": 0,
        "active_shards": 0,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": 0,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0
    }))
}
