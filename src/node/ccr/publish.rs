//! The leader side of following through shared object storage: a
//! publisher loop per index named by `PUT /<index>/_ccr/publish`, for
//! followers that cannot reach this node (`core::ccr::feed`).
//!
//! No follower's poll wakes a publisher, so it watches the index itself:
//! when `watch.rs` signals a change, and at the rescan interval as the
//! fallback (5 s with a working watch, since each comparison costs
//! object-store requests; 200 ms without; longer when a comparison is
//! slow, as for a waiting poll), it
//! compares the index with its newest checkpoint and, once it differs,
//! takes the next checkpoint into the registered repository, then
//! replaces `ccr/<index>/feed.json` (history and head: a checkpoint the
//! feed names is always committed), then reads the followers' lease
//! objects and prunes with `lease::prunable`, deleting lease objects that
//! expired. The history is the index's one (`ccr_leader.json`), shared
//! with the leader's long-poll feed, so a promotion forks it for both.
//! Publishers are kept in `ccr_publish.json` and restart with the node.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::core::ccr::checkpoint::{snapshot_name, Point};
use crate::core::ccr::feed::{
    expired_objects, feed_key, lease_prefix, leases_of, may_replace, LeaseFile,
};
use crate::core::ccr::lease::{self, Retention};
use crate::core::ccr::lineage::History;
use crate::native::ccr::checkpoint::{Leader, Listed};
use crate::native::clock::now_millis;
use crate::native::delete::delete_snapshots;
use crate::native::job::Abort;
use crate::native::repo::Repo;
use crate::node::ccr::blocking;
use crate::node::ccr::leader::{self, Changes, Checkpoint};
use crate::node::ccr::watch::changed_within;
use crate::node::error::NodeError;
use crate::node::indices;
use crate::node::server::Shared;
use crate::node::state::{write_atomic, Registration};
use crate::storage::{PutMode, Storage};

pub const PUBLISH_FILE: &str = "ccr_publish.json";
/// How often an unchanged index is compared with its newest checkpoint
/// at most, and the share of a slow comparison's time waited after it
/// (as a waiting poll of `leader.rs` does) ...
const SCAN_EVERY: Duration = Duration::from_millis(200);
const SCAN_SHARE: u32 = 4;
/// ... but when change notification works, the rescan is only the safety
/// net for a lost event (an overflow of the kernel's queue is signalled
/// and wakes it), and each comparison costs object-store requests (a
/// probe for a newer root, the checkpoint's manifest and index: about
/// four), so it comes this seldom: measured on moto, an idle published
/// 2,000-file index cost 22 requests a second at 200 ms.
const RESCAN_WATCHED: Duration = Duration::from_secs(5);
/// Retries after failures back off to this.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// One published index as `ccr_publish.json` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishRecord {
    /// The registered repository checkpoints and the feed go to.
    pub repository: String,
}

/// What `GET /<index>/_ccr/publish` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PublishStatus {
    pub checkpoints_published: u64,
    pub head: Option<Checkpoint>,
    pub last_published_ms: Option<i64>,
    pub checkpoints_pruned: u64,
    /// Lease objects seen at the last pruning (live or not).
    pub leases: usize,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
}

/// A published index while the node runs.
#[derive(Debug)]
pub struct Publisher {
    pub index: String,
    pub record: PublishRecord,
    status: Mutex<PublishStatus>,
    stopped: AtomicBool,
    wake: Notify,
    /// Held by the loop for its whole life: a stop waits for it.
    pub alive: tokio::sync::Mutex<()>,
}

impl Publisher {
    pub fn new(index: &str, record: PublishRecord) -> Publisher {
        Publisher {
            index: index.to_string(),
            record,
            status: Mutex::default(),
            stopped: AtomicBool::new(false),
            wake: Notify::new(),
            alive: tokio::sync::Mutex::new(()),
        }
    }

    pub fn status(&self) -> MutexGuard<'_, PublishStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends its loop at its next step, never mid-checkpoint.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

/// Every published index of the node.
#[derive(Debug, Default)]
pub struct Publishers {
    all: Mutex<BTreeMap<String, Arc<Publisher>>>,
    writing: Mutex<()>,
}

impl Publishers {
    pub fn load(state: &Path) -> Result<Publishers, NodeError> {
        let records: BTreeMap<String, PublishRecord> =
            crate::node::state::read_json(state, PUBLISH_FILE)?.unwrap_or_default();
        let all = records
            .into_iter()
            .map(|(k, r)| (k.clone(), Arc::new(Publisher::new(&k, r))))
            .collect();
        Ok(Publishers {
            all: Mutex::new(all),
            writing: Mutex::default(),
        })
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Publisher>>> {
        self.all.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, index: &str) -> Option<Arc<Publisher>> {
        self.map().get(index).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Publisher>> {
        self.map().values().cloned().collect()
    }

    /// Adds a publisher unless the index is published; false if it is.
    pub fn insert(&self, p: Arc<Publisher>) -> bool {
        let mut map = self.map();
        if map.contains_key(&p.index) {
            return false;
        }
        map.insert(p.index.clone(), p);
        true
    }

    pub fn remove(&self, index: &str) -> Option<Arc<Publisher>> {
        self.map().remove(index)
    }

    pub fn save(&self, state: &Path) -> Result<(), NodeError> {
        let _one_at_a_time = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let records: BTreeMap<String, PublishRecord> = self
            .list()
            .iter()
            .map(|p| (p.index.clone(), p.record.clone()))
            .collect();
        write_atomic(state, PUBLISH_FILE, &records)
    }
}

pub fn start(node: &Shared, p: Arc<Publisher>) {
    tokio::spawn(run(node.clone(), p));
}

/// Starts the publishers the node was started with.
pub fn start_all(node: &Shared) {
    for p in node.ccr.publishers.list() {
        start(node, p);
    }
}

async fn run(node: Shared, p: Arc<Publisher>) {
    let _alive = p.alive.lock().await;
    let data = node.settings.data.clone();
    let mut kept = Kept::default();
    let mut woken = false;
    loop {
        if p.is_stopped() {
            return;
        }
        // Subscribed before the comparison: a change made during it wakes
        // the wait below at once.
        let mut events = node.ccr.leaders.watches.subscribe(&data, &p.index);
        let started = Instant::now();
        let result = round(&node, &p, &mut kept).await;
        if result.is_err() {
            // Opened again at the next round (its registration, or the
            // storage under it, may have been fixed).
            kept.repo = None;
        }
        let changed = matches!(result, Ok(true));
        let failures = {
            let mut s = p.status();
            match result {
                Ok(_) => {
                    s.consecutive_failures = 0;
                    s.last_error = None;
                }
                Err(e) => {
                    s.consecutive_failures += 1;
                    s.last_error = Some(e);
                }
            }
            s.consecutive_failures
        };
        let quiet = SCAN_EVERY.max(started.elapsed() * SCAN_SHARE);
        let pause = if failures > 0 {
            let backoff = Duration::from_millis(100) * 2u32.saturating_pow(failures.min(10));
            backoff.min(MAX_RETRY)
        } else if events.is_some() {
            RESCAN_WATCHED.max(quiet)
        } else {
            quiet
        };
        // A wake-up whose comparison found nothing is followed by a plain
        // wait of the short rescan interval (not the long one: a real
        // change may come next), so spurious events cost no more than the
        // 200 ms rescan does.
        let spurious = woken && !changed && failures == 0;
        woken = tokio::select! {
            w = async {
                if spurious {
                    tokio::time::sleep(quiet).await;
                    if let Some(rx) = events.as_mut() {
                        rx.borrow_and_update();
                    }
                    false
                } else {
                    changed_within(events.as_mut(), pause).await
                }
            } => w,
            _ = p.wake.notified() => false,
        };
    }
}

/// The registered repository, opened for checkpoints.
fn open_registered(reg: &Registration) -> crate::error::Result<Repo> {
    Repo::open_in(crate::node::open::store(reg, false)?)
}

/// What a publisher keeps between rounds.
#[derive(Default)]
struct Kept {
    /// The head the feed was last written with in this run (`None` before
    /// the first write, which every run makes: the history may have
    /// changed while the node was down).
    published: Option<Option<Point>>,
    /// The repository as last opened, for this registration: its reader
    /// keeps the newest root (a comparison then only probes for a newer
    /// one, two small requests) and the tree packs a comparison reads,
    /// instead of fetching them from object storage every round.
    repo: Option<(Registration, Repo)>,
}

impl Kept {
    fn repo_for(&self, reg: &Registration) -> Option<Repo> {
        self.repo
            .as_ref()
            .filter(|(r, _)| r == reg)
            .map(|(_, repo)| repo.clone())
    }
}

/// One comparison: a checkpoint if the index changed, then the feed and
/// pruning when the head moved (or on the run's first round). Whether
/// it did either.
async fn round(node: &Shared, p: &Publisher, kept: &mut Kept) -> Result<bool, String> {
    let index = p.index.clone();
    let name = &p.record.repository;
    if !indices::exists(&node.settings.data, &index) {
        return Err(format!("no index [{index}] in the data folder"));
    }
    let reg = node
        .repositories
        .lock()
        .await
        .get(name)
        .cloned()
        .ok_or_else(|| format!("repository [{name}] is no longer registered on this node"))?;
    let history = leader::history(node, &index).await?;
    if kept.published.is_none() {
        // The run's first round: the feed in place must be of this
        // index's own history.
        let store = crate::node::open::sealed_store(&reg)
            .await
            .map_err(|e| format!("cannot open repository [{name}]: {e}"))?;
        let in_place = crate::node::ccr::feed::fetch(store.as_ref(), &index).await?;
        let theirs = in_place
            .as_ref()
            .and_then(|f| f.head.as_ref())
            .map(|h| &h.point);
        if !may_replace(&history, theirs) {
            return Err(format!(
                "repository [{name}] holds a feed of [{index}] from another leader (its \
                 newest checkpoint {} is not in this node's history of [{index}]: a \
                 promoted follower's, or another node's index of the same name): left \
                 alone; delete {} from the repository to publish this one there",
                theirs.map_or("-".to_string(), |p| p.to_string()),
                feed_key(&index)
            ));
        }
    }
    let lineage = history.current().to_string();
    let (r, d, i, one) = (
        reg.clone(),
        node.settings.data.clone(),
        index.clone(),
        node.ccr.leaders.on_disk(),
    );
    let cached = kept.repo_for(&reg);
    let (listed, head, taken, repo) = blocking(move || -> crate::error::Result<_> {
        let _alone = one.lock().unwrap_or_else(|e| e.into_inner());
        let repo = match cached {
            Some(repo) => repo,
            None => open_registered(&r)?,
        };
        let l = Leader {
            repo: &repo,
            data: &d,
            index: &i,
        };
        let taken = l.checkpoint(&lineage, Abort::new())?;
        let (listed, head) = (l.checkpoints()?, l.head(&lineage)?);
        Ok((listed, head, taken.is_some(), repo))
    })
    .await?
    .map_err(|e| format!("checkpoint of [{index}] into repository [{name}]: {e}"))?;
    kept.repo = Some((reg.clone(), repo.clone()));
    let head: Option<Checkpoint> = head.map(Checkpoint::from);
    let head_point = head.as_ref().map(|h| h.point.clone());
    if kept.published.as_ref() == Some(&head_point) {
        return Ok(taken);
    }
    // The repository's own storage: sealed in an encrypted repository.
    let store = repo.store.clone();
    let feed = Changes {
        index: index.clone(),
        repository: name.clone(),
        history: history.clone(),
        head: head.clone(),
        compared: false,
    };
    let body = serde_json::to_vec(&feed).map_err(|e| e.to_string())?;
    store
        .put(&feed_key(&index), Bytes::from(body), PutMode::Overwrite)
        .await
        .map_err(|e| format!("cannot write the feed of [{index}] into repository [{name}]: {e}"))?;
    kept.published = Some(head_point);
    {
        let mut s = p.status();
        s.checkpoints_published += u64::from(taken);
        s.last_published_ms = Some(now_millis());
        s.head = head;
    }
    prune(node, p, repo, store, &history, listed).await?;
    Ok(true)
}

/// Deletes the checkpoints that are neither among the newest nor held by
/// a live lease object, and the lease objects that expired.
async fn prune(
    node: &Shared,
    p: &Publisher,
    repo: Repo,
    store: Arc<dyn Storage>,
    history: &History,
    listed: Vec<Listed>,
) -> Result<(), String> {
    let index = &p.index;
    let failed =
        |e: crate::storage::StorageError| format!("cannot read the leases of [{index}]: {e}");
    let objects = store.list(&lease_prefix(index)).await.map_err(failed)?;
    let mut files = Vec::new();
    for o in &objects {
        let body = match store.get(&o.key, None).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(failed(e)),
        };
        match serde_json::from_slice::<LeaseFile>(&body) {
            Ok(f) => files.push((f, o.modified_ms)),
            Err(e) => eprintln!("snapkeep node: lease object [{}] is not one: {e}", o.key),
        }
    }
    let now = now_millis();
    let r = Retention::default();
    let leases = leases_of(&files, now);
    let points: Vec<Point> = listed.into_iter().map(|l| l.point).collect();
    let names: Vec<String> = lease::prunable(&points, history.current(), &leases, now, r)
        .iter()
        .map(|pt| snapshot_name(index, pt))
        .collect();
    let pruned = names.len() as u64;
    if !names.is_empty() {
        let one = node.ccr.leaders.on_disk();
        blocking(move || {
            let _alone = one.lock().unwrap_or_else(|e| e.into_inner());
            delete_snapshots(&repo, &names)
        })
        .await?
        .map_err(|e| format!("pruning checkpoints of [{index}]: {e}"))?;
    }
    let timed: Vec<(String, Option<i64>)> = objects
        .iter()
        .map(|o| (o.key.clone(), o.modified_ms))
        .collect();
    for key in expired_objects(&timed, now, r.lease_ms) {
        if let Err(e) = store.delete(&key).await {
            eprintln!("snapkeep node: cannot delete the expired lease [{key}]: {e}");
        }
    }
    let mut s = p.status();
    s.checkpoints_pruned += pruned;
    s.leases = objects.len();
    Ok(())
}

/// Deletes the lease object of `follower` on `index` in the repository
/// `index` is published into, if it is (`forget_follower`).
pub async fn forget(node: &Shared, index: &str, follower: &str) -> Result<(), String> {
    let Some(p) = node.ccr.publishers.get(index) else {
        return Ok(());
    };
    let Some(reg) = node
        .repositories
        .lock()
        .await
        .get(&p.record.repository)
        .cloned()
    else {
        return Ok(());
    };
    let store = crate::node::open::sealed_store(&reg)
        .await
        .map_err(|e| e.to_string())?;
    let key = crate::core::ccr::feed::lease_key(index, follower);
    match store.delete(&key).await {
        Err(e) if !e.is_not_found() => Err(e.to_string()),
        _ => Ok(()),
    }
}
