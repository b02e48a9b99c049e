//! The leader side: checkpoints of a followed index, taken when a
//! follower's read finds it changed (and, by `keeper.rs`, when it changes
//! with no read waiting).
//!
//! A follower's read is a long poll (`GET /<index>/_ccr/changes`). While
//! it waits, the index is compared with its newest checkpoint when a
//! change notification wakes it (`watch.rs`), and in any case every
//! [`SCAN_EVERY`], or less often when a comparison is slow (the restore
//! plan's size, mtime and mode rule: a stat walk); when it differs, the
//! next checkpoint is taken into the node's checkpoint repository
//! (`ccr-checkpoints` in the state folder) and the poll answers. A leader
//! that nobody follows does no work.
//!
//! Each read renews two leases of its follower (`core::ccr::lease`): one
//! on the checkpoint it is about to apply and one on the checkpoint it
//! holds (which it compares its folder with for local writes), and a read
//! made during an apply a third, on the checkpoint being applied, until
//! the next read. Then the checkpoints that are neither among the newest
//! nor leased are deleted.
//! The index's history and the leases are kept in `ccr_leader.json`.
//!
//! A watched index whose watch has seen no change since a comparison
//! found it equal to its newest checkpoint is not compared again (the
//! comparison of 50,000 files costs about half a CPU second): the read is
//! answered from that comparison, for at most [`TRUST_WATCH`], after which
//! the index is compared anyway, in case a change escaped the watch (a
//! write through a memory map, a folder mounted inside the index).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::core::ccr::checkpoint::{snapshot_name, Point};
use crate::core::ccr::lease::{self, Lease, Retention};
use crate::core::ccr::lineage::History;
use crate::core::format::config::RepoConfig;
use crate::error::Error;
use crate::native::ccr::checkpoint::{Leader, Listed};
use crate::native::clock::now_millis;
use crate::native::delete::delete_snapshots;
use crate::native::job::Abort;
use crate::native::location::Location;
use crate::native::repo::Repo;
use crate::node::ccr::blocking;
use crate::node::ccr::watch::{changed_within, Watches};
use crate::node::error::NodeError;
use crate::node::indices;
use crate::node::reply::{internal, EsError};
use crate::node::server::Shared;
use crate::node::state::write_atomic;

/// The checkpoint repository's name on the node's object API
/// (`/api/repos/.ccr-checkpoints/objects/...`), which followers read it by.
pub const CHECKPOINT_REPO: &str = ".ccr-checkpoints";
pub const LEADER_FILE: &str = "ccr_leader.json";
const REPO_FOLDER: &str = "ccr-checkpoints";
/// How often a waiting poll compares the index with its newest checkpoint,
/// at most: a comparison that took longer waits [`SCAN_SHARE`] times its
/// own time before the next, so a large index waited on costs at most
/// about a fifth of a core.
const SCAN_EVERY: Duration = Duration::from_millis(200);
const SCAN_SHARE: u32 = 4;
/// How long a comparison of a watched index that found no change stands
/// while its watch reports none.
const TRUST_WATCH: Duration = Duration::from_secs(30);
/// The longest a poll may wait (`timeout`), and the wait without one
/// (Elasticsearch's `read_poll_timeout` default).
pub const MAX_POLL_MS: i64 = 300_000;
pub const DEFAULT_POLL_MS: i64 = 60_000;

/// One followed index: its history and its followers' leases.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Followed {
    pub history: History,
    #[serde(default)]
    pub leases: Vec<Lease>,
}

/// The indices followers have read, as `ccr_leader.json` holds them; held
/// while a checkpoint is taken, so checkpoints are taken one at a time.
#[derive(Debug, Default)]
pub struct Leaders {
    indices: Mutex<BTreeMap<String, Followed>>,
    /// Held by the thread that takes or prunes checkpoints, for as long as
    /// it runs: a poll dropped mid-checkpoint (its follower paused or
    /// went away) releases `indices` while its thread goes on, and the
    /// next checkpoint must not be taken beside it under the same name.
    on_disk: Arc<std::sync::Mutex<()>>,
    /// Change notification of the indices followers read.
    pub watches: Watches,
    /// Per index, the last comparison that found it unchanged.
    clean: std::sync::Mutex<BTreeMap<String, Clean>>,
    /// The indices whose keeper runs (`keeper.rs`).
    keepers: std::sync::Mutex<BTreeSet<String>>,
}

/// A comparison's outcome, and the watch's change count when it started:
/// while the count stays, the index is as that comparison found it.
#[derive(Debug, Clone)]
struct Clean {
    events: u64,
    lineage: String,
    at: Instant,
    listed: Vec<Listed>,
    head: Option<Listed>,
}

impl Leaders {
    fn clean(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Clean>> {
        self.clean.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The comparison of `index` (in `lineage`) that still stands when
    /// its watch counts `events`, if one does.
    fn still_clean(
        &self,
        index: &str,
        events: u64,
        lineage: &str,
    ) -> Option<(Vec<Listed>, Option<Listed>)> {
        let clean = self.clean();
        let c = clean.get(index)?;
        (c.events == events && c.lineage == lineage && c.at.elapsed() < TRUST_WATCH)
            .then(|| (c.listed.clone(), c.head.clone()))
    }
}

impl Leaders {
    pub fn load(state: &Path) -> Result<Leaders, NodeError> {
        let indices = crate::node::state::read_json(state, LEADER_FILE)?.unwrap_or_default();
        Ok(Leaders {
            indices: Mutex::new(indices),
            on_disk: Arc::default(),
            watches: Watches::default(),
            clean: Default::default(),
            keepers: Default::default(),
        })
    }
}

impl Leaders {
    /// The lock every thread that takes or prunes checkpoints holds, in
    /// any repository (one index's checkpoints are numbered by what the
    /// repository holds, so two at once could take the same name).
    pub fn on_disk(&self) -> Arc<std::sync::Mutex<()>> {
        self.on_disk.clone()
    }

    /// Records that a keeper of `index` starts; false if one runs.
    pub fn start_keeper(&self, index: &str) -> bool {
        let mut k = self.keepers.lock().unwrap_or_else(|e| e.into_inner());
        k.insert(index.to_string())
    }

    pub fn keeper_stopped(&self, index: &str) {
        let mut k = self.keepers.lock().unwrap_or_else(|e| e.into_inner());
        k.remove(index);
    }

    /// Drops the checkpoints `names` from the standing comparison of
    /// `index`, once they are pruned.
    fn forget_listed(&self, index: &str, names: &[String]) {
        if let Some(c) = self.clean().get_mut(index) {
            c.listed.retain(|l| !names.contains(&l.snapshot));
        }
    }
}

/// The history of `index` as this node leads it, started (with a new
/// lineage, recorded before any checkpoint of it is taken) if it has none.
pub async fn history(node: &Shared, index: &str) -> Result<History, String> {
    let mut all = node.ccr.leaders.indices.lock().await;
    if let Some(f) = all.get(index) {
        return Ok(f.history.clone());
    }
    let history = History::start(&new_lineage()).expect("a fresh lineage id is valid");
    all.insert(
        index.to_string(),
        Followed {
            history: history.clone(),
            leases: Vec::new(),
        },
    );
    write_atomic(&node.state_folder, LEADER_FILE, &*all).map_err(|e| e.to_string())?;
    Ok(history)
}

/// The checkpoint repository's folder in the state folder.
pub fn repo_folder(state: &Path) -> PathBuf {
    state.join(REPO_FOLDER)
}

/// Opens the checkpoint repository, creating it on first use.
fn open_repo(folder: &Path) -> crate::error::Result<Repo> {
    let location = Location::Local(folder.to_path_buf());
    match Repo::open(&location) {
        Err(Error::NotARepository(_)) => {
            let config = RepoConfig::new(uuid::Uuid::new_v4().to_string(), now_millis());
            Repo::init(&location, config)
        }
        other => other,
    }
}

/// A checkpoint as a read answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub point: Point,
    /// Its snapshot in the checkpoint repository.
    pub snapshot: String,
    /// When it was taken, on the leader's clock.
    pub time_ms: i64,
}

impl From<Listed> for Checkpoint {
    fn from(l: Listed) -> Checkpoint {
        Checkpoint {
            point: l.point,
            snapshot: l.snapshot,
            time_ms: l.time_ms,
        }
    }
}

/// The answer to a read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Changes {
    pub index: String,
    /// The repository (on the leader's object API) the checkpoint is in.
    pub repository: String,
    pub history: History,
    pub head: Option<Checkpoint>,
    /// Whether this read compared the index with its newest checkpoint
    /// (false: its watch saw no change since a comparison that did).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compared: bool,
}

/// A follower's read.
#[derive(Debug, Clone)]
pub struct Ask {
    pub index: String,
    /// The checkpoint the follower has: the read answers when the head
    /// is another.
    pub after: Option<Point>,
    /// The checkpoint its folder holds: `after`, but for a read made while
    /// it applies `after`.
    pub held: Option<Point>,
    /// Who reads: the lease holder's name.
    pub follower: String,
    pub timeout_ms: i64,
}

/// `lineage:seq` (a point as `Display` writes it).
pub fn parse_point(text: &str) -> Option<Point> {
    let (lineage, seq) = text.split_once(':')?;
    let seq: u64 = seq.parse().ok()?;
    (crate::core::ccr::checkpoint::is_lineage_id(lineage) && seq > 0)
        .then(|| Point::new(lineage, seq))
}

/// Takes a checkpoint of `index` when it changed; gives its checkpoints
/// of every lineage and the newest of `lineage`.
fn scan(
    folder: &Path,
    data: &Path,
    index: &str,
    lineage: &str,
) -> crate::error::Result<(Vec<Listed>, Option<Listed>)> {
    let repo = open_repo(folder)?;
    let leader = Leader {
        repo: &repo,
        data,
        index,
    };
    leader.checkpoint(lineage, Abort::new())?;
    Ok((leader.checkpoints()?, leader.head(lineage)?))
}

/// Deletes the checkpoints `names` that are still there (a comparison
/// made while an earlier prune ran may have listed them again).
fn prune(folder: &Path, mut names: Vec<String>) -> crate::error::Result<()> {
    let repo = open_repo(folder)?;
    let root = repo.root()?;
    names.retain(|n| root.snapshots.iter().any(|s| &s.snapshot == n));
    if !names.is_empty() {
        delete_snapshots(&repo, &names)?;
    }
    Ok(())
}

/// The leases of `index` after read `ask` answered `head`, and the names of
/// the checkpoints in `listed` they no longer keep.
fn settle_leases(
    followed: &Followed,
    ask: &Ask,
    head: Option<&Checkpoint>,
    listed: Vec<Listed>,
) -> (Vec<Lease>, Vec<String>) {
    let now = now_millis();
    let r = Retention::default();
    let mut leases = followed.leases.clone();
    if let Some(h) = head {
        leases = lease::renew(&leases, &ask.follower, &h.point, now);
    }
    if let Some(held) = &ask.held {
        leases = lease::renew(&leases, &format!("{}#held", ask.follower), held, now);
    }
    // A read made while the follower applies `after` keeps that too, until
    // its next read (which names it as held): a checkpoint taken meanwhile
    // must not push it out of the newest while the apply reads it.
    let next_holder = format!("{}#next", ask.follower);
    match ask.after.as_ref().filter(|a| Some(*a) != ask.held.as_ref()) {
        Some(next) => leases = lease::renew(&leases, &next_holder, next, now),
        None => leases.retain(|l| l.follower != next_holder),
    }
    leases.retain(|l| l.is_live(now, r.lease_ms));
    let points: Vec<Point> = listed.into_iter().map(|l| l.point).collect();
    let names = lease::prunable(&points, followed.history.current(), &leases, now, r)
        .iter()
        .map(|p| snapshot_name(&ask.index, p))
        .collect();
    (leases, names)
}

/// Prunes checkpoints `names` of `index` after the read that chose them
/// has answered: a follower never waits for the deletion.
fn prune_later(node: &Shared, folder: &Path, index: &str, names: Vec<String>) {
    let (node, folder, index) = (node.clone(), folder.to_path_buf(), index.to_string());
    tokio::spawn(async move {
        let one = node.ccr.leaders.on_disk.clone();
        let pruned = names.clone();
        let done = blocking(move || {
            let _alone = one.lock().unwrap_or_else(|e| e.into_inner());
            prune(&folder, pruned)
        })
        .await;
        // A comparison made meanwhile may have listed them.
        node.ccr.leaders.forget_listed(&index, &names);
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("snapkeep node: pruning checkpoints of [{index}]: {e}"),
            Err(e) => eprintln!("snapkeep node: pruning checkpoints of [{index}]: {e}"),
        }
    });
}

/// A new lineage id: 16 lowercase hexadecimal digits.
pub fn new_lineage() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_string()
}

/// Answers a follower's read: at once when the index's newest checkpoint
/// (taken now if the index changed) is not what the follower holds, else
/// when that happens or at the timeout.
pub async fn changes(node: &Shared, ask: Ask) -> Result<Changes, EsError> {
    let data = node.settings.data.clone();
    if !indices::exists(&data, &ask.index) {
        return Err(EsError::index_not_found(&ask.index));
    }
    let folder = repo_folder(&node.state_folder);
    let deadline = Instant::now() + Duration::from_millis(ask.timeout_ms.max(0) as u64);
    // Subscribed before the first comparison: a change made after it
    // wakes the wait below.
    let mut events = node.ccr.leaders.watches.subscribe(&data, &ask.index);
    if events.is_some() {
        crate::node::ccr::keeper::keep(node, &ask.index);
    }
    let mut woken = false;
    let mut compared = false;
    loop {
        let mut all = node.ccr.leaders.indices.lock().await;
        let followed = all
            .entry(ask.index.clone())
            .or_insert_with(|| Followed {
                history: History::start(&new_lineage()).expect("a fresh lineage id is valid"),
                leases: Vec::new(),
            })
            .clone();
        let lineage = followed.history.current().to_string();
        let events_now = events.as_ref().map(|rx| *rx.borrow());
        let scan_started = Instant::now();
        let leaders = &node.ccr.leaders;
        let stands = events_now.and_then(|n| leaders.still_clean(&ask.index, n, &lineage));
        compared = compared || stands.is_none();
        let (listed, head) = match stands {
            Some(known) => known,
            None => {
                let found = compare(&folder, &data, &ask.index, &lineage, node).await?;
                if let Some(n) = events_now {
                    let clean = Clean {
                        events: n,
                        lineage: lineage.clone(),
                        at: scan_started,
                        listed: found.0.clone(),
                        head: found.1.clone(),
                    };
                    leaders.clean().insert(ask.index.clone(), clean);
                }
                found
            }
        };
        let head: Option<Checkpoint> = head.map(Checkpoint::from);
        let changed = head.as_ref().map(|h| &h.point) != ask.after.as_ref();
        if !changed && Instant::now() < deadline {
            drop(all);
            let left = deadline.saturating_duration_since(Instant::now());
            let pause = left.min(SCAN_EVERY.max(scan_started.elapsed() * SCAN_SHARE));
            // A wake-up whose comparison found nothing (a change the
            // checkpoint does not see, an atime update) is not followed by
            // another at once: the next wait is the rescan's, so spurious
            // events cost no more than the rescan does.
            woken = if woken {
                tokio::time::sleep(pause).await;
                if let Some(rx) = events.as_mut() {
                    rx.borrow_and_update();
                }
                false
            } else {
                changed_within(events.as_mut(), pause).await
            };
            continue;
        }
        let (leases, names) = settle_leases(&followed, &ask, head.as_ref(), listed);
        if !names.is_empty() {
            // The comparison's list of checkpoints loses these.
            node.ccr.leaders.forget_listed(&ask.index, &names);
            prune_later(node, &folder, &ask.index, names);
        }
        let kept = Followed {
            history: followed.history.clone(),
            leases,
        };
        all.insert(ask.index.clone(), kept);
        write_atomic(&node.state_folder, LEADER_FILE, &*all)
            .map_err(|e| internal(e.to_string()))?;
        return Ok(Changes {
            index: ask.index,
            repository: CHECKPOINT_REPO.to_string(),
            history: followed.history,
            head,
            compared,
        });
    }
}

/// Whether `index` is there and a follower holds a live lease on it.
pub async fn is_followed(node: &Shared, index: &str) -> bool {
    let now = now_millis();
    let lease_ms = Retention::default().lease_ms;
    let all = node.ccr.leaders.indices.lock().await;
    let leased = all
        .get(index)
        .is_some_and(|f| f.leases.iter().any(|l| l.is_live(now, lease_ms)));
    leased && indices::exists(&node.settings.data, index)
}

/// The indices this node leads with a live lease.
pub async fn followed_indices(node: &Shared) -> Vec<String> {
    let names: Vec<String> = node
        .ccr
        .leaders
        .indices
        .lock()
        .await
        .keys()
        .cloned()
        .collect();
    let mut out = Vec::new();
    for index in names {
        if is_followed(node, &index).await {
            out.push(index);
        }
    }
    out
}

/// The keeper's step: compares `index` with its newest checkpoint, taking
/// the next when it differs, unless a comparison made since its watch
/// counted `events` stands; then prunes what no lease keeps. The outcome
/// stands for the reads that come while the watch stays at `events`.
pub async fn keep_up(node: &Shared, index: &str, events: u64) -> Result<(), String> {
    let folder = repo_folder(&node.state_folder);
    let all = node.ccr.leaders.indices.lock().await;
    let Some(followed) = all.get(index).cloned() else {
        return Ok(());
    };
    let lineage = followed.history.current().to_string();
    let leaders = &node.ccr.leaders;
    if leaders.still_clean(index, events, &lineage).is_some() {
        return Ok(());
    }
    let at = Instant::now();
    let data = node.settings.data.clone();
    let (mut listed, head) = compare(&folder, &data, index, &lineage, node)
        .await
        .map_err(|e| e.reason)?;
    let now = now_millis();
    let r = Retention::default();
    let points: Vec<Point> = listed.iter().map(|l| l.point.clone()).collect();
    let names: Vec<String> = lease::prunable(&points, &lineage, &followed.leases, now, r)
        .iter()
        .map(|p| snapshot_name(index, p))
        .collect();
    listed.retain(|l| !names.contains(&l.snapshot));
    let clean = Clean {
        events,
        lineage,
        at,
        listed,
        head,
    };
    leaders.clean().insert(index.to_string(), clean);
    if !names.is_empty() {
        prune_later(node, &folder, index, names);
    }
    Ok(())
}

/// Compares `index` with its newest checkpoint of `lineage`, taking the
/// next one when it differs: its checkpoints, and the newest.
async fn compare(
    folder: &Path,
    data: &Path,
    index: &str,
    lineage: &str,
    node: &Shared,
) -> Result<(Vec<Listed>, Option<Listed>), EsError> {
    let (f, d, i, l) = (
        folder.to_path_buf(),
        data.to_path_buf(),
        index.to_string(),
        lineage.to_string(),
    );
    let one = node.ccr.leaders.on_disk.clone();
    blocking(move || {
        let _alone = one.lock().unwrap_or_else(|e| e.into_inner());
        scan(&f, &d, &i, &l)
    })
    .await
    .map_err(internal)?
    .map_err(|e| internal(format!("checkpoint of [{index}]: {e}")))
}

/// Makes this node the leader of `index` with `history`: a promoted
/// follower's, forked at the checkpoint it held, so its next checkpoint
/// starts the new lineage.
pub async fn adopt(node: &Shared, index: &str, history: History) -> Result<(), EsError> {
    let mut all = node.ccr.leaders.indices.lock().await;
    all.insert(
        index.to_string(),
        Followed {
            history,
            leases: Vec::new(),
        },
    );
    write_atomic(&node.state_folder, LEADER_FILE, &*all).map_err(|e| internal(e.to_string()))
}

/// Ends this node's leadership of `index` (it is about to follow another
/// index into the same folder) and gives what the folder holds as a
/// checkpoint of its history: taken now if it changed since the newest,
/// so that writes made since count when the follower compares histories
/// (an old leader that kept writing after a failover is diverged, not
/// silently fast-forwarded). `None` if this node does not lead `index`.
pub async fn hand_over(node: &Shared, index: &str) -> Result<Option<Checkpoint>, EsError> {
    let mut all = node.ccr.leaders.indices.lock().await;
    let Some(followed) = all.get(index).cloned() else {
        return Ok(None);
    };
    let lineage = followed.history.current().to_string();
    let (f, d, i) = (
        repo_folder(&node.state_folder),
        node.settings.data.clone(),
        index.to_string(),
    );
    let one = node.ccr.leaders.on_disk.clone();
    let (_, head) = blocking(move || {
        let _alone = one.lock().unwrap_or_else(|e| e.into_inner());
        scan(&f, &d, &i, &lineage)
    })
    .await
    .map_err(internal)?
    .map_err(|e| internal(format!("checkpoint of [{index}]: {e}")))?;
    all.remove(index);
    write_atomic(&node.state_folder, LEADER_FILE, &*all).map_err(|e| internal(e.to_string()))?;
    node.ccr.leaders.watches.forget(&node.settings.data, index);
    Ok(head.map(Checkpoint::from))
}

/// Drops the leases of follower `follower` (its node id and index, as
/// its reads name it) on `index`: its checkpoints are then kept only as
/// long as the newest ones are. Returns how many leases went.
pub async fn forget(node: &Shared, index: &str, follower: &str) -> Result<usize, EsError> {
    let mut all = node.ccr.leaders.indices.lock().await;
    let Some(followed) = all.get_mut(index) else {
        return Ok(0);
    };
    let own = [
        follower.to_string(),
        format!("{follower}#held"),
        format!("{follower}#next"),
    ];
    let before = followed.leases.len();
    followed.leases.retain(|l| !own.contains(&l.follower));
    let gone = before - followed.leases.len();
    write_atomic(&node.state_folder, LEADER_FILE, &*all).map_err(|e| internal(e.to_string()))?;
    Ok(gone)
}

/// Opens the checkpoint repository for the object API (read-only), or
/// `None` before any checkpoint was taken.
pub fn object_store(state: &Path) -> Option<Arc<dyn crate::storage::Storage>> {
    let folder = repo_folder(state);
    if !folder.is_dir() {
        return None;
    }
    let store = Location::Local(folder).open(false).ok()?;
    Some(Arc::new(crate::storage::guard::ReadOnlyStore::new(store)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_lineage_colon_seq() {
        let p = parse_point("0123456789abcdef:7").unwrap();
        assert_eq!(p.to_string(), "0123456789abcdef:7");
        for bad in [
            "0123456789abcdef:0",
            "xyz:1",
            "0123456789abcdef",
            "0123456789abcdef:-1",
        ] {
            assert_eq!(parse_point(bad), None, "{bad}");
        }
    }
}
