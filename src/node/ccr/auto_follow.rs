//! Auto-follow patterns (`core::ccr::auto_follow`) on the node: kept in
//! `ccr_auto_follow.json`; every [`EVERY`] each active pattern lists its
//! remote's indices (`GET /_cat/indices` with the remote's credentials)
//! and starts a follower for each new match, as a follow request would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::core::ccr::auto_follow::Pattern;
use crate::core::ccr::remote::{RemoteCluster, Via};
use crate::node::ccr::begin::begin;
use crate::node::ccr::follows::Parameters;
use crate::node::error::NodeError;
use crate::node::server::Shared;
use crate::node::state::write_atomic;

pub const AUTO_FOLLOW_FILE: &str = "ccr_auto_follow.json";
/// How often the remotes are listed for new leader indices.
const EVERY: Duration = Duration::from_secs(1);
/// Recent errors kept for `_ccr/stats`.
const RECENT_ERRORS: usize = 10;

/// One pattern as the file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoFollow {
    pub pattern: Pattern,
    pub parameters: Parameters,
    #[serde(default)]
    pub paused: bool,
    /// Leader indices already handled: there when the pattern was put, or
    /// followed (or refused) since.
    #[serde(default)]
    pub seen: BTreeSet<String>,
}

/// Elasticsearch's auto-follow counters.
#[derive(Debug, Default)]
struct Counters {
    successful: u64,
    failed: u64,
    failed_remote_requests: u64,
    recent_errors: Vec<Value>,
}

#[derive(Debug, Default)]
pub struct AutoFollows {
    pub all: Mutex<BTreeMap<String, AutoFollow>>,
    counters: std::sync::Mutex<Counters>,
}

impl AutoFollows {
    pub fn load(state: &Path) -> Result<AutoFollows, NodeError> {
        let all = crate::node::state::read_json(state, AUTO_FOLLOW_FILE)?.unwrap_or_default();
        Ok(AutoFollows {
            all: Mutex::new(all),
            counters: Default::default(),
        })
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error(&self, name: &str, leader: Option<&str>, reason: String) {
        let mut c = self.counters();
        let mut entry = json!({
            "auto_follow_pattern": name,
            "auto_follow_exception": {"type": "exception", "reason": reason},
        });
        if let Some(l) = leader {
            entry["leader_index"] = json!(l);
        }
        c.recent_errors.push(entry);
        let over = c.recent_errors.len().saturating_sub(RECENT_ERRORS);
        c.recent_errors.drain(..over);
    }

    /// `auto_follow_stats` of `_ccr/stats`.
    pub fn stats(&self) -> Value {
        let c = self.counters();
        json!({
            "number_of_failed_follow_indices": c.failed,
            "number_of_failed_remote_cluster_state_requests": c.failed_remote_requests,
            "number_of_successful_follow_indices": c.successful,
            "recent_auto_follow_errors": c.recent_errors,
            "auto_followed_clusters": [],
        })
    }
}

pub fn save(state: &Path, all: &BTreeMap<String, AutoFollow>) -> Result<(), NodeError> {
    write_atomic(state, AUTO_FOLLOW_FILE, all)
}

/// The remote's index names: a repository remote's are the indices
/// published into it.
pub async fn list_remote(
    node: &Shared,
    alias: &str,
    remote: &RemoteCluster,
) -> Result<Vec<String>, String> {
    let addr = match remote.via() {
        Via::Proxy(addr) => addr,
        Via::Repository(name) => return list_published(node, alias, name).await,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let mut request = client.get(format!("http://{addr}/_cat/indices?format=json&h=index"));
    if let Some(token) = &remote.credentials {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("cannot list the indices of [{addr}]: {e}"))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(format!(
            "[{addr}] answered HTTP {status} to an index listing"
        ));
    }
    let rows: Vec<Value> = response
        .json()
        .await
        .map_err(|e| format!("[{addr}] answered an index listing with no list: {e}"))?;
    Ok(rows
        .iter()
        .filter_map(|r| r["index"].as_str().map(str::to_string))
        .collect())
}

async fn list_published(node: &Shared, alias: &str, name: &str) -> Result<Vec<String>, String> {
    let reg = crate::node::ccr::feed::registration(node, alias, name).await?;
    let store = crate::node::open::store(&reg, false)
        .map_err(|e| format!("cannot open repository [{name}]: {e}"))?;
    let keys: Vec<String> = store
        .list(crate::core::ccr::feed::PREFIX)
        .await
        .map_err(|e| format!("cannot list the indices published into [{name}]: {e}"))?
        .into_iter()
        .map(|m| m.key)
        .collect();
    Ok(crate::core::ccr::feed::published(&keys))
}

pub async fn auto_follow_loop(node: Shared) {
    loop {
        tokio::time::sleep(EVERY).await;
        round(&node).await;
    }
}

/// One look at every active pattern's remote.
async fn round(node: &Shared) {
    let patterns = node.ccr.auto_follows.all.lock().await.clone();
    for (name, auto) in patterns.into_iter().filter(|(_, a)| !a.paused) {
        let alias = &auto.pattern.remote_cluster;
        let remote = node.remotes.lock().await.get(alias).cloned();
        let listed = match remote {
            Some(r) => list_remote(node, alias, &r).await,
            None => Err(format!("no such remote cluster: [{alias}]")),
        };
        let listed = match listed {
            Ok(l) => l,
            Err(reason) => {
                node.ccr.auto_follows.counters().failed_remote_requests += 1;
                node.ccr.auto_follows.error(&name, None, reason);
                continue;
            }
        };
        for (leader, follower) in auto.pattern.new_follows(&listed, &auto.seen) {
            let started = begin(
                node,
                &follower,
                alias.clone(),
                leader.clone(),
                auto.parameters.clone(),
            )
            .await;
            match started {
                Ok(()) => node.ccr.auto_follows.counters().successful += 1,
                Err(e) => {
                    node.ccr.auto_follows.counters().failed += 1;
                    node.ccr.auto_follows.error(&name, Some(&leader), e.reason);
                }
            }
            // Handled either way: a refusal (the follower name is taken)
            // is not retried every second.
            let mut all = node.ccr.auto_follows.all.lock().await;
            if let Some(a) = all.get_mut(&name) {
                a.seen.insert(leader);
            }
            if let Err(e) = save(&node.state_folder, &all) {
                eprintln!("snapkeep node: cannot record the auto-follow patterns: {e}");
            }
        }
    }
}
