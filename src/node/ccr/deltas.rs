//! Chunk deltas between the two nodes (`core::ccr::delta`): the leader's
//! answer to `POST /<leader_index>/_ccr/deltas`, and the follower's side
//! of it, [`LeaderLink`], which its applies ask through.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::core::ccr::delta::{Answer, Ask};
use crate::native::ccr::delta::{self, DeltaSource};
use crate::native::repo::Repo;
use crate::native::runtime::block_on;
use crate::node::ccr::leader::object_store;
use crate::storage::guard::Limiter;

/// How long one delta request may take before its chunks are fetched
/// the usual way instead.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The leader's answers to `asks` from its checkpoint repository (in the
/// node's state folder `state`), as `native::ccr::delta::answer` makes
/// them; nothing at all when the repository cannot be opened.
pub fn answer(state: &Path, asks: &[Ask], whole: bool) -> Vec<Answer> {
    let opened = checkpoint_repo(state).and_then(|repo| {
        let (_, index) = repo.root_and_index().ok()?;
        Some((repo, index))
    });
    match opened {
        Some((repo, index)) => delta::answer(&repo, &index, asks, whole),
        None => vec![Answer::None; asks.len()],
    }
}

/// The checkpoint repository in the state folder `state`, opened once
/// and kept: a catch-up asks in many requests, and a kept reader
/// merges the index once per checkpoint instead of once per request (it
/// still reads the newest root each time). The repository is never
/// removed or recreated while the node runs.
fn checkpoint_repo(state: &Path) -> Option<Repo> {
    static OPENED: Mutex<Option<(PathBuf, Repo)>> = Mutex::new(None);
    let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, repo)) = opened.as_ref().filter(|(at, _)| at == state) {
        return Some(repo.clone());
    }
    let repo = Repo::open_in(object_store(state)?).ok()?.keeping_index();
    *opened = Some((state.to_path_buf(), repo.clone()));
    Some(repo)
}

/// The follower's way to the leader node's delta endpoint (a remote in
/// proxy mode), with the remote's credentials.
pub struct LeaderLink {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    /// The follower's `max_bytes_per_sec`, shared with its other reads
    /// from the leader: each answer's bytes count against it.
    limit: Option<Arc<Limiter>>,
}

impl LeaderLink {
    /// A link to `leader_index` on the node at `address` (host:port).
    /// Made on the thread that uses it: its requests run on the native
    /// runtime, not the node's.
    pub fn new(
        address: &str,
        token: Option<String>,
        leader_index: &str,
        limit: Option<Arc<Limiter>>,
    ) -> Option<LeaderLink> {
        let client = block_on(async {
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(REQUEST_TIMEOUT)
                .build()
        })
        .ok()?;
        Some(LeaderLink {
            client,
            url: format!("http://{address}/{leader_index}/_ccr/deltas?whole=true"),
            token,
            limit,
        })
    }
}

impl DeltaSource for LeaderLink {
    fn deltas(&self, asks: &[Ask]) -> Result<Bytes, String> {
        block_on(async {
            let mut request = self.client.post(&self.url).json(asks);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("the leader answered HTTP {status}"));
            }
            let answer = response.bytes().await.map_err(|e| e.to_string())?;
            if let Some(limit) = &self.limit {
                limit.take(answer.len() as u64).await;
            }
            Ok(answer)
        })
    }
}
