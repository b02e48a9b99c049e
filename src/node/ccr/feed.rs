//! The follower side of following through shared object storage
//! (`core::ccr::feed`): a read polls the leader's feed object in a
//! repository registered on this node until its head differs from what
//! the folder holds (or `read_poll_timeout` passes), renews the
//! follower's lease object, and gives the checkpoint repository's
//! location, which `run.rs` applies from as from the leader's object API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::core::ccr::checkpoint::Point;
use crate::core::ccr::feed::{feed_key, lease_key, poll_every_ms, LeaseFile};
use crate::core::ccr::follower::FollowParams;
use crate::native::location::Location;
use crate::node::ccr::leader::Changes;
use crate::node::server::Shared;
use crate::node::state::Registration;
use crate::storage::{PutMode, Storage};

/// The registration a repository remote reads through, or why there is
/// none, in the user's terms.
pub async fn registration(node: &Shared, alias: &str, name: &str) -> Result<Registration, String> {
    node.repositories
        .lock()
        .await
        .get(name)
        .cloned()
        .ok_or_else(|| {
            format!("repository [{name}] of cluster.remote.{alias} is not registered on this node")
        })
}

/// The leader's feed of `leader_index`; `Ok(None)` when the repository has
/// none (the index is not published there).
pub async fn fetch(store: &dyn Storage, leader_index: &str) -> Result<Option<Changes>, String> {
    let key = feed_key(leader_index);
    let body = match store.get(&key, None).await {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(format!("cannot read [{key}] in {}: {e}", store.location())),
    };
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| format!("[{key}] in {} is not a feed: {e}", store.location()))
}

/// Why a follower finds no feed.
pub fn not_published(leader_index: &str, name: &str) -> String {
    format!(
        "no index [{leader_index}] is published into repository [{name}] (no {}): \
         PUT /{leader_index}/_ccr/publish on the leader node",
        feed_key(leader_index)
    )
}

/// One read through repository `name` of remote `alias` by `follower`
/// (`<node id>:<follower index>`), holding `held`.
pub async fn read(
    node: &Shared,
    alias: &str,
    name: &str,
    follower: &str,
    leader_index: &str,
    held: Option<&Point>,
    params: FollowParams,
) -> Result<(Changes, Location), String> {
    let reg = registration(node, alias, name).await?;
    let location = Location::parse_with(&reg.location, &reg.options)
        .map_err(|e| format!("repository [{name}]: {e}"))?;
    let store: Arc<dyn Storage> = crate::node::open::sealed_store(&reg)
        .await
        .map_err(|e| format!("cannot open repository [{name}]: {e}"))?;
    let deadline =
        Instant::now() + Duration::from_millis(params.read_poll_timeout_ms.max(0) as u64);
    let every = Duration::from_millis(poll_every_ms(params.read_poll_timeout_ms) as u64);
    loop {
        let changes = fetch(store.as_ref(), leader_index)
            .await?
            .ok_or_else(|| not_published(leader_index, name))?;
        let head = changes.head.as_ref().map(|h| &h.point);
        let now = Instant::now();
        if head != held || now >= deadline {
            // A read-only registration cannot hold a lease: its follower
            // then relies on the newest checkpoints being kept.
            if !reg.readonly {
                let lease = LeaseFile::new(follower, head, held);
                let body = serde_json::to_vec(&lease).map_err(|e| e.to_string())?;
                store
                    .put(
                        &lease_key(leader_index, follower),
                        Bytes::from(body),
                        PutMode::Overwrite,
                    )
                    .await
                    .map_err(|e| format!("cannot renew the lease in repository [{name}]: {e}"))?;
            }
            return Ok((changes, location));
        }
        tokio::time::sleep(every.min(deadline - now)).await;
    }
}
