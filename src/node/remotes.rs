//! This node's remote clusters (`cluster.remote.*`, decided in
//! `core::ccr::remote`): kept in the state folder's `remotes.json`, which
//! holds their credentials and is therefore readable by the node's user
//! only, and reached over HTTP to say whether they are connected.

use std::path::Path;
use std::time::Duration;

use crate::core::ccr::remote::{Reach, RemoteCluster, Remotes, Via};
use crate::node::error::NodeError;
use crate::node::server::Shared;
use crate::node::state::write_atomic_private;

pub const REMOTES_FILE: &str = "remotes.json";
/// How long a connection check waits for the remote node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The remotes of the state folder (none before the first put).
pub fn load(state: &Path) -> Result<Remotes, NodeError> {
    Ok(crate::node::state::read_json(state, REMOTES_FILE)?.unwrap_or_else(Remotes::new))
}

pub fn save(state: &Path, remotes: &Remotes) -> Result<(), NodeError> {
    write_atomic_private(state, REMOTES_FILE, remotes)
}

/// Whether the remote can be read, and if not, why, in the user's terms:
/// a proxy remote answers as a snapkeep node that accepts its
/// credentials; a repository remote's repository is registered here and
/// opens as a repository.
pub async fn reach(node: &Shared, alias: &str, r: &RemoteCluster) -> Reach {
    match r.via() {
        Via::Proxy(addr) => reach_node(alias, addr, r).await,
        Via::Repository(name) => reach_repository(node, alias, name).await,
    }
}

async fn reach_repository(node: &Shared, alias: &str, name: &str) -> Reach {
    let reg = match crate::node::ccr::feed::registration(node, alias, name).await {
        Ok(reg) => reg,
        Err(reason) => return Reach::Failed(reason),
    };
    let opened = tokio::time::timeout(CONNECT_TIMEOUT * 2, crate::node::open::reader(&reg)).await;
    match opened {
        Ok(Ok(_)) => Reach::Connected,
        Ok(Err(e)) => Reach::Failed(format!("cannot read repository [{name}]: {e}")),
        Err(_) => Reach::Failed(format!(
            "repository [{name}] did not answer within {}s",
            (CONNECT_TIMEOUT * 2).as_secs()
        )),
    }
}

async fn reach_node(alias: &str, addr: &str, r: &RemoteCluster) -> Reach {
    let client = match reqwest::Client::builder().timeout(CONNECT_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => return Reach::Failed(format!("cannot make an HTTP client: {e}")),
    };
    let mut request = client.get(format!("http://{addr}/"));
    if let Some(token) = &r.credentials {
        request = request.bearer_auth(token);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Reach::Failed(format!(
                "no answer from [{addr}] within {}s",
                CONNECT_TIMEOUT.as_secs()
            ))
        }
        Err(_) => {
            return Reach::Failed(format!(
                "cannot connect to [{addr}]: nothing listens there or it is unreachable"
            ))
        }
    };
    match response.status().as_u16() {
        200 => {}
        401 if r.credentials.is_none() => {
            return Reach::Failed(format!(
                "the node at [{addr}] needs credentials: set cluster.remote.{alias}.credentials"
            ))
        }
        401 => {
            return Reach::Failed(format!(
                "the node at [{addr}] refused the credentials of cluster.remote.{alias}"
            ))
        }
        403 => {
            return Reach::Failed(format!(
                "the credentials of cluster.remote.{alias} may not read the node at [{addr}]"
            ))
        }
        status => return Reach::Failed(format!("[{addr}] answered HTTP {status}")),
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if body.get("cluster_uuid").is_none() {
        return Reach::Failed(format!("[{addr}] answers, but not as a snapkeep node"));
    }
    Reach::Connected
}
