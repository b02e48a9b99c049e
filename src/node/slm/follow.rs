//! Following the repository: a policy put or deleted through one node
//! reaches every other node that holds it. The repository's record
//! (`slm/policies/<id>`) is the source of truth; `core::slm::stored::follow`
//! decides from it and this node's copy whether to keep, adopt or drop.
//!
//! A node reads the record before each scheduled run (so a changed
//! schedule never runs one more slot of the old one) and every
//! [`FOLLOW_EVERY_MS`] for all its policies (so a change reaches a node
//! whose next slot is a day away).

use std::time::Duration;

use crate::core::slm::stored::{follow, policy_key, Follow, Remote, StoredPolicy};
use crate::node::open;
use crate::node::routes::registered;
use crate::node::server::Shared;
use crate::storage::StorageError;

use super::records::{Policy, PolicyRecord};

/// How often every policy's record is read.
pub const FOLLOW_EVERY_MS: u64 = 30_000;

/// Runs for the node's life.
pub async fn follow_loop(node: Shared) {
    loop {
        tokio::time::sleep(Duration::from_millis(FOLLOW_EVERY_MS)).await;
        let ids: Vec<String> = node.slm.lock().await.policies.keys().cloned().collect();
        for id in ids {
            follow_policy(&node, &id).await;
        }
    }
}

/// The record of policy `id` in `repository`: `Ok(None)` when there is
/// none, `Err` when the store fails or the record does not decode.
pub async fn read_record(
    node: &Shared,
    repository: &str,
    id: &str,
) -> Result<Option<StoredPolicy>, String> {
    let reg = registered(node, repository).await.map_err(|e| e.reason)?;
    let store = open::store(&reg, false).map_err(|e| e.to_string())?;
    let key = policy_key(id);
    match store.get(&key, None).await {
        Ok(bytes) => StoredPolicy::decode(&key, &bytes)
            .map(|(record, _)| Some(record))
            .map_err(|e| e.to_string()),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Brings this node's copy of policy `id` in line with its repository's
/// record, and says what was done.
pub async fn follow_policy(node: &Shared, id: &str) -> Follow {
    let held = {
        let state = node.slm.lock().await;
        state
            .policies
            .get(id)
            .map(|p| (p.parsed.repository.clone(), p.record.stored.clone()))
    };
    let Some((repository, local)) = held else {
        return Follow::Drop;
    };
    let read = read_record(node, &repository, id).await;
    let remote = match &read {
        Ok(Some(record)) => Remote::Found(record),
        Ok(None) => Remote::Missing,
        Err(_) => Remote::Unreadable,
    };
    let decision = follow(&local, remote);
    let adopted = match (decision, read) {
        (Follow::Keep, _) => return Follow::Keep,
        (Follow::Adopt, Ok(Some(record))) => Some(record),
        _ => None,
    };
    let mut state = node.slm.lock().await;
    // A put or delete on this node since the read decides instead.
    if state.policies.get(id).map(|p| &p.record.stored) != Some(&local) {
        return Follow::Keep;
    }
    let old = state.policies.remove(id).expect("checked above");
    match adopted {
        Some(record) => {
            let version = record.version;
            let record = PolicyRecord {
                stored: record,
                queued_ms: None,
                ..old.record.clone()
            };
            match Policy::from_record(record) {
                Ok(mut fresh) => {
                    fresh.active = old.active;
                    fresh.runs = old.runs;
                    state.policies.insert(id.to_string(), fresh);
                    eprintln!(
                        "snapkeep node: policy [{id}] follows version {version} of its record in [{repository}]"
                    );
                }
                Err(e) => {
                    state.policies.insert(id.to_string(), old);
                    eprintln!("snapkeep node: policy [{id}]'s record in [{repository}] is not usable here: {e}");
                    return Follow::Keep;
                }
            }
        }
        None => eprintln!(
            "snapkeep node: policy [{id}] was deleted from [{repository}] through another node; dropped here too"
        ),
    }
    node.slm.save_or_report(&state).await;
    drop(state);
    node.slm.wake.notify_one();
    decision
}
