//! Cross-cluster replication on the node (issue #17): the decisions are
//! `core::ccr`'s and the disk steps `native::ccr`'s; this module runs them.
//!
//! ```text
//!  leader.rs    checkpoints of followed indices, taken on a follower's long poll
//!  keeper.rs    ... and when a followed index changes, with no read waiting
//!  deltas.rs    chunk deltas: the leader's answers, the follower's requests
//!  publish.rs   checkpoints and a feed published into a shared repository
//!  feed.rs      a follower's read of such a feed, and its lease objects
//!  auto_follow.rs  patterns that start followers for new leader indices
//!  begin.rs     starting a follower: the shared checks, record and loop
//!  follows.rs   this node's follower indices, persisted in `ccr_follows.json`
//!  request.rs   the follow and resume bodies as parameters
//!  run.rs       the loop of one follower index: read, decide, apply or pause
//!  stats.rs     `_ccr/stats` and `_ccr/info` in Elasticsearch's shapes
//!  watch.rs     change notification that wakes a leader's waiting reads
//! ```

pub mod auto_follow;
pub mod begin;
pub mod deltas;
pub mod feed;
pub mod follows;
pub mod keeper;
pub mod leader;
pub mod publish;
pub mod request;
pub mod run;
pub mod stats;
pub mod watch;

use std::path::Path;

use tokio::sync::oneshot;

use crate::node::error::NodeError;

/// The node's replication state: indices it leads, indices that follow.
#[derive(Debug)]
pub struct Ccr {
    pub leaders: leader::Leaders,
    pub follows: follows::Follows,
    pub auto_follows: auto_follow::AutoFollows,
    pub publishers: publish::Publishers,
}

impl Ccr {
    pub fn load(state: &Path) -> Result<Ccr, NodeError> {
        Ok(Ccr {
            leaders: leader::Leaders::load(state)?,
            follows: follows::Follows::load(state)?,
            auto_follows: auto_follow::AutoFollows::load(state)?,
            publishers: publish::Publishers::load(state)?,
        })
    }
}

/// Runs `f` on a thread of its own and awaits its answer: the native
/// layer blocks on its own runtime, which refuses to run inside the
/// node's (so not `spawn_blocking`, whose threads belong to it).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await
        .map_err(|_| "a replication step's thread ended without answering".to_string())
}
