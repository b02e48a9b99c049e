//! Starting a follower index: the checks a follow request and an
//! auto-follow pattern share, the record, and its loop.

use std::sync::Arc;

use serde_json::json;

use crate::core::ccr::follower::Tracker;
use crate::core::ccr::remote::Via;
use crate::node::ccr::follows::{FollowRecord, Follower, Parameters};
use crate::node::ccr::{feed, leader, run};
use crate::node::reply::{internal, EsError};
use crate::node::server::Shared;

/// Makes `index` follow `leader_index` of `remote_cluster`, or refuses
/// with Elasticsearch's error: an unknown remote, an index that already
/// follows, an existing folder without `reuse_existing`, a leader node
/// that says it has no such index.
pub async fn begin(
    node: &Shared,
    index: &str,
    remote_cluster: String,
    leader_index: String,
    parameters: Parameters,
) -> Result<(), EsError> {
    let remote = node
        .remotes
        .lock()
        .await
        .get(&remote_cluster)
        .cloned()
        .ok_or_else(|| {
            EsError::new(
                404,
                "no_such_remote_cluster_exception",
                format!("no such remote cluster: [{remote_cluster}]"),
            )
        })?;
    if let Some(f) = node.ccr.follows.get(index) {
        let r = f.record();
        return Err(EsError::illegal_argument(format!(
            "index [{index}] already follows [{}:{}]",
            r.remote_cluster, r.leader_index
        )));
    }
    if node.settings.data.join(index).exists() && !parameters.reuse_existing {
        return Err(EsError::new(
            400,
            "resource_already_exists_exception",
            format!(
                "index [{index}] already exists; follow into it with \"reuse_existing\": true \
                 to keep its files as the base of the first checkpoint"
            ),
        )
        .with_field("index", json!(index)));
    }
    if node.ccr.publishers.get(index).is_some() {
        return Err(EsError::illegal_argument(format!(
            "index [{index}] is published: DELETE /{index}/_ccr/publish before it follows              another index"
        )));
    }
    match remote.via() {
        Via::Proxy(addr) => {
            if leader_missing(addr, remote.credentials.as_deref(), &leader_index).await {
                return Err(EsError::index_not_found(&leader_index));
            }
        }
        Via::Repository(name) => published(node, &remote_cluster, name, &leader_index).await?,
    }
    // Into a folder this node leads (a failback): what it holds is a
    // checkpoint of its own history, which the leader's is compared with.
    let mut tracker = Tracker::default();
    if parameters.reuse_existing {
        if let Some(own) = leader::hand_over(node, index).await? {
            tracker.held = Some((own.point, own.time_ms));
        }
    }
    let record = FollowRecord {
        remote_cluster,
        leader_index,
        parameters,
        tracker,
        history: None,
        successful_reads: 0,
        resynced: None,
    };
    let f = Arc::new(Follower::new(index, record));
    if !node.ccr.follows.insert(f.clone()) {
        return Err(EsError::illegal_argument(format!(
            "index [{index}] already follows"
        )));
    }
    if let Err(e) = node.ccr.follows.save(&node.state_folder) {
        node.ccr.follows.remove(index);
        return Err(internal(e.to_string()));
    }
    run::start(node, f);
    Ok(())
}

/// Whether the leader node says it has no such index. Any other failure
/// (unreachable, credentials refused) is the follower loop's to retry and
/// report in `_ccr/stats`, as a failure that may pass.
async fn leader_missing(addr: &str, token: Option<&str>, index: &str) -> bool {
    let Ok(client) = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
    else {
        return false;
    };
    let mut request = client.get(format!("http://{addr}/{index}"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    matches!(request.send().await, Ok(r) if r.status().as_u16() == 404)
}

/// Refuses a follow through repository `name` when it is not registered
/// here or holds no feed of `leader_index`. A repository that cannot be
/// read now is the follower loop's to retry and report.
async fn published(
    node: &Shared,
    alias: &str,
    name: &str,
    leader_index: &str,
) -> Result<(), EsError> {
    let reg = feed::registration(node, alias, name)
        .await
        .map_err(|reason| EsError::new(404, "repository_missing_exception", reason))?;
    let Ok(store) = crate::node::open::sealed_store(&reg).await else {
        return Ok(());
    };
    match feed::fetch(store.as_ref(), leader_index).await {
        Ok(None) => {
            let mut e = EsError::index_not_found(leader_index);
            e.reason = feed::not_published(leader_index, name);
            Err(e)
        }
        _ => Ok(()),
    }
}
