//! This node's follower indices: what each follows, with which
//! parameters, and its figures (`core::ccr::follower::Tracker`, which
//! holds the checkpoint the folder was last switched to and the pause
//! reason). Kept in the state folder's `ccr_follows.json` after every
//! change, so a follower resumes from what it holds after a restart.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::core::ccr::follower::{FollowParams, Tracker};
use crate::core::ccr::lineage::History;
use crate::node::error::NodeError;
use crate::node::state::write_atomic;

pub const FOLLOWS_FILE: &str = "ccr_follows.json";
/// The shortest wait of a read, whatever `read_poll_timeout` says.
pub const MIN_POLL_MS: i64 = 100;

/// The parameters a follow request gave (Elasticsearch's names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameters {
    pub read_poll_timeout_ms: i64,
    pub max_retry_delay_ms: i64,
    /// Accepted and reported; a checkpoint is read whole, chunk by chunk.
    #[serde(default)]
    pub max_read_request_size: Option<String>,
    #[serde(default)]
    pub max_outstanding_read_requests: Option<u64>,
    #[serde(default)]
    pub reuse_existing: bool,
    /// The most bytes per second read from the leader (as given, e.g.
    /// `40mb`; none: unlimited).
    #[serde(default)]
    pub max_bytes_per_sec: Option<String>,
}

impl Parameters {
    /// `max_bytes_per_sec` in bytes (checked when the request was taken).
    pub fn read_limit(&self) -> Option<u64> {
        self.max_bytes_per_sec.as_deref().and_then(|v| {
            crate::core::es::repository_request::parse_byte_size("max_bytes_per_sec", v)
                .ok()
                .flatten()
        })
    }
}

impl Parameters {
    pub fn follow_params(&self) -> FollowParams {
        FollowParams {
            // A leader answers a poll at once when nothing changed only at
            // its timeout: a zero one would make the loop spin.
            read_poll_timeout_ms: self.read_poll_timeout_ms.max(MIN_POLL_MS),
            max_retry_delay_ms: self.max_retry_delay_ms,
            reuse_existing: self.reuse_existing,
        }
    }
}

/// One follower index as `ccr_follows.json` keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FollowRecord {
    pub remote_cluster: String,
    pub leader_index: String,
    pub parameters: Parameters,
    #[serde(default)]
    pub tracker: Tracker,
    /// The leader's history as of the last read (lag is measured on it).
    #[serde(default)]
    pub history: Option<History>,
    /// Reads that got an answer.
    #[serde(default)]
    pub successful_reads: u64,
    /// Set when `reuse_existing` replaced checkpoints of the folder that
    /// the leader's history does not have (split brain): what was
    /// replaced, so it is reported rather than merged unseen.
    #[serde(default)]
    pub resynced: Option<String>,
}

/// A follower index while the node runs: its record, and a wake-up for
/// its loop (a pause, resume or unfollow).
#[derive(Debug)]
pub struct Follower {
    pub index: String,
    record: Mutex<FollowRecord>,
    pub wake: Notify,
    stopped: AtomicBool,
    /// Held by the follower's loop for its whole life: whoever must know
    /// that no apply of this follower still runs (unfollow) takes it.
    pub alive: tokio::sync::Mutex<()>,
}

impl Follower {
    pub fn new(index: &str, record: FollowRecord) -> Follower {
        Follower {
            index: index.to_string(),
            record: Mutex::new(record),
            wake: Notify::new(),
            stopped: AtomicBool::new(false),
            alive: tokio::sync::Mutex::new(()),
        }
    }

    pub fn record(&self) -> MutexGuard<'_, FollowRecord> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends its loop (unfollow): at its next step, never mid-apply.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

/// Every follower index of the node.
#[derive(Debug, Default)]
pub struct Follows {
    all: Mutex<BTreeMap<String, Arc<Follower>>>,
    /// Held while the file is written (one temporary name per process).
    writing: Mutex<()>,
}

impl Follows {
    pub fn load(state: &Path) -> Result<Follows, NodeError> {
        let records: BTreeMap<String, FollowRecord> =
            crate::node::state::read_json(state, FOLLOWS_FILE)?.unwrap_or_default();
        let all = records
            .into_iter()
            .map(|(k, r)| (k.clone(), Arc::new(Follower::new(&k, r))))
            .collect();
        Ok(Follows {
            all: Mutex::new(all),
            writing: Mutex::new(()),
        })
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Follower>>> {
        self.all.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, index: &str) -> Option<Arc<Follower>> {
        self.map().get(index).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Follower>> {
        self.map().values().cloned().collect()
    }

    /// Adds a follower unless the index already follows; false if it does.
    pub fn insert(&self, f: Arc<Follower>) -> bool {
        let mut map = self.map();
        if map.contains_key(&f.index) {
            return false;
        }
        map.insert(f.index.clone(), f);
        true
    }

    pub fn remove(&self, index: &str) -> Option<Arc<Follower>> {
        self.map().remove(index)
    }

    /// Writes every record to the state folder.
    pub fn save(&self, state: &Path) -> Result<(), NodeError> {
        let _one_at_a_time = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let records: BTreeMap<String, FollowRecord> = self
            .list()
            .iter()
            .map(|f| (f.index.clone(), f.record().clone()))
            .collect();
        write_atomic(state, FOLLOWS_FILE, &records)
    }
}
