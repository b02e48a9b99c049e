//! The loop of one follower index: a long-poll read of the leader's
//! changes (or, for a remote in repository mode, a poll of the feed the
//! leader publishes there: `feed.rs`), then `core::ccr::follower::decide` over what the folder holds
//! (its checkpoint and any local writes since), then the step it chose:
//! wait (the next read is the wait), apply the leader's newest checkpoint
//! with `native::ccr::apply::Follow` (read through the leader's object
//! API with the remote's credentials, asking the leader for chunk deltas
//! first: `deltas.rs`), or pause with the reason. Failed reads are retried
//! after `retry_delay_ms`, never given up.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::core::ccr::checkpoint::{snapshot_name, Point};
use crate::core::ccr::follower::{decide, retry_delay_ms, FollowParams, PauseReason, Step, View};
use crate::core::ccr::lineage::{relate, Relation};
use crate::core::ccr::remote::{RemoteCluster, Via};
use crate::native::ccr::apply::{Applied, Follow, Prepared, StageAhead};
use crate::native::ccr::delta::Deltas;
use crate::native::clock::now_millis;
use crate::native::job::Abort;
use crate::native::location::Location;
use crate::native::repo::Repo;
use crate::node::ccr::deltas::LeaderLink;
use crate::node::ccr::follows::Follower;
use crate::node::ccr::leader::{Changes, Checkpoint};
use crate::node::ccr::{blocking, feed};
use crate::node::server::Shared;
use crate::storage::guard::Limiter;

/// How long connecting to the leader may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much longer than the poll timeout a read may take before it is
/// counted failed (the leader may be taking a checkpoint).
const READ_SLACK: Duration = Duration::from_secs(60);

/// Starts the loop of follower `f`.
pub fn start(node: &Shared, f: Arc<Follower>) {
    tokio::spawn(run(node.clone(), f));
}

/// Starts the loops of the followers the node was started with.
pub fn start_all(node: &Shared) {
    for f in node.ccr.follows.list() {
        start(node, f);
    }
}

fn save(node: &Shared) {
    if let Err(e) = node.ccr.follows.save(&node.state_folder) {
        eprintln!("snapkeep node: cannot record the follower indices: {e}");
    }
}

async fn run(node: Shared, f: Arc<Follower>) {
    let _alive = f.alive.lock().await;
    let client = match reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            f.record()
                .tracker
                .failed(format!("cannot make an HTTP client: {e}"));
            return;
        }
    };
    let mut ahead: Option<ReadAhead> = None;
    let kept = KeptRepo::default();
    // Declared after `_alive`, so dropped (its linking waited for) before
    // an unfollow waiting on `alive` removes the stage.
    let stage = NextStage::default();
    loop {
        if f.is_stopped() {
            return;
        }
        let rec = f.record().clone();
        if rec.tracker.paused.is_some() {
            ahead = None;
            f.wake.notified().await;
            continue;
        }
        let params = rec.parameters.follow_params();
        let held = rec.tracker.held.as_ref().map(|(p, _)| p.clone());
        let ask = Asked {
            node: node.clone(),
            client: client.clone(),
            index: f.index.clone(),
            alias: rec.remote_cluster.clone(),
            leader_index: rec.leader_index.clone(),
            params,
        };
        // A read made during the last apply stands when that apply gave
        // the folder what the read was made after (dropped, it is
        // aborted); one that failed is made again the ordinary way, which
        // reports its own failure.
        let early = match ahead.take().filter(|a| Some(&a.after) == held.as_ref()) {
            Some(mut a) => tokio::select! {
                r = &mut a.task => r.ok().and_then(|r| r.ok()),
                _ = f.wake.notified() => continue,
            },
            None => None,
        };
        let read = match early {
            Some(answer) => Ok(answer),
            None => tokio::select! {
                r = ask.read(held.as_ref(), held.as_ref()) => r,
                _ = f.wake.notified() => continue,
            },
        };
        let outcome = match read {
            Ok((changes, location, leader)) => {
                {
                    let mut r = f.record();
                    let head = changes.head.as_ref().map(|h| (h.point.clone(), h.time_ms));
                    r.tracker.read_ok(head, now_millis());
                    r.history = Some(changes.history.clone());
                    r.successful_reads += 1;
                }
                if f.is_stopped() || f.record().tracker.paused.is_some() {
                    continue;
                }
                ahead = ReadAhead::start(&ask, &changes, leader.as_ref(), held.as_ref());
                let job = Job {
                    location,
                    leader,
                    data: node.settings.data.clone(),
                    leader_index: rec.leader_index.clone(),
                    follower_index: f.index.clone(),
                    held,
                    changes,
                    params,
                    read_limit: rec.parameters.read_limit(),
                    kept: kept.clone(),
                    stage: stage.clone(),
                };
                blocking(move || job.step()).await.and_then(|r| r)
            }
            Err(reason) => Err(reason),
        };
        // Recorded on disk when what the folder holds or the pause
        // changed (the restart point); the read figures live in memory.
        let (failures, changed) = {
            let mut r = f.record();
            let changed = match outcome {
                Ok(Outcome::Wait) => false,
                Ok(Outcome::Applied(c, a, note)) => {
                    if let Some(note) = note {
                        eprintln!("snapkeep node: follower index [{}]: {note}", f.index);
                        r.resynced = Some(note);
                    }
                    r.tracker.applied(
                        (c.point, c.time_ms),
                        a.bytes_read,
                        a.bytes_written,
                        a.files_written,
                    );
                    true
                }
                Ok(Outcome::Paused(reason)) => {
                    r.tracker.paused = Some(reason);
                    true
                }
                Err(e) => {
                    r.tracker.failed(e);
                    lock(&kept).take();
                    false
                }
            };
            (r.tracker.consecutive_failures, changed)
        };
        if changed {
            save(&node);
        }
        if failures > 0 {
            let wait = Duration::from_millis(retry_delay_ms(failures, params) as u64);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = f.wake.notified() => {}
            }
        }
    }
}

/// The leader's checkpoint repository on its object API, with the
/// remote's credentials.
fn checkpoint_location(remote: &RemoteCluster, repository: &str) -> Location {
    Location::Edge {
        base: format!("http://{}/api/repos/{repository}", remote.proxy_address),
        token: remote.credentials.clone(),
        options: Vec::new(),
    }
}

/// The leader node's address and the remote's credentials, for a remote
/// in proxy mode (a direct HTTP connection, which chunk deltas need).
type LeaderAddress = (String, Option<String>);

/// What a read of the leader needs, owned, so that a read can run on a
/// task of its own while an apply runs.
#[derive(Clone)]
struct Asked {
    node: Shared,
    client: reqwest::Client,
    index: String,
    alias: String,
    leader_index: String,
    params: FollowParams,
}

type ReadResult = Result<(Changes, Location, Option<LeaderAddress>), String>;

/// A read of the leader made while the follower applies checkpoint `after`
/// (proxy mode), so that the leader compares its index and takes the next
/// checkpoint during the apply instead of after it. Aborted when dropped.
struct ReadAhead {
    after: Point,
    task: tokio::task::JoinHandle<ReadResult>,
}

impl ReadAhead {
    /// A read after the head of `changes` when a step may apply it (it is
    /// not what the folder holds), for a remote in proxy mode.
    fn start(
        ask: &Asked,
        changes: &Changes,
        leader: Option<&LeaderAddress>,
        held: Option<&Point>,
    ) -> Option<ReadAhead> {
        leader?;
        let after = changes.head.as_ref().map(|h| h.point.clone())?;
        if Some(&after) == held {
            return None;
        }
        let (ask, next, held) = (ask.clone(), after.clone(), held.cloned());
        let task = tokio::spawn(async move { ask.read(Some(&next), held.as_ref()).await });
        Some(ReadAhead { after, task })
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Asked {
    /// One read of the leader's changes after checkpoint `after` (for a
    /// folder that holds `held`), where its checkpoint is read from, and
    /// the leader node when there is a direct connection to it; the reason
    /// on failure, in the user's terms.
    async fn read(&self, after: Option<&Point>, held: Option<&Point>) -> ReadResult {
        let (node, alias) = (&self.node, self.alias.as_str());
        let remote = node
            .remotes
            .lock()
            .await
            .get(alias)
            .cloned()
            .ok_or_else(|| format!("no such remote cluster: [{alias}]"))?;
        let follower = format!("{}:{}", node.identity.id, self.index);
        match remote.via() {
            Via::Repository(name) => {
                let (changes, location) = feed::read(
                    node,
                    alias,
                    name,
                    &follower,
                    &self.leader_index,
                    after,
                    self.params,
                )
                .await?;
                Ok((changes, location, None))
            }
            Via::Proxy(_) => {
                let asked = Poll {
                    follower: &follower,
                    leader_index: &self.leader_index,
                    after,
                    held,
                    params: self.params,
                };
                let changes = poll(&self.client, &remote, alias, asked).await?;
                let location = checkpoint_location(&remote, &changes.repository);
                let leader = (remote.proxy_address.clone(), remote.credentials.clone());
                Ok((changes, location, Some(leader)))
            }
        }
    }
}

/// One long-poll read's question.
struct Poll<'a> {
    follower: &'a str,
    leader_index: &'a str,
    after: Option<&'a Point>,
    held: Option<&'a Point>,
    params: FollowParams,
}

/// One long-poll read of the leader node's `_ccr/changes`.
async fn poll(
    client: &reqwest::Client,
    remote: &RemoteCluster,
    alias: &str,
    asked: Poll<'_>,
) -> Result<Changes, String> {
    let addr = &remote.proxy_address;
    let leader_index = asked.leader_index;
    let timeout = asked.params.read_poll_timeout_ms.max(0);
    let text = |p: Option<&Point>| p.map(|p| p.to_string()).unwrap_or_default();
    let mut url = reqwest::Url::parse_with_params(
        &format!("http://{addr}/{leader_index}/_ccr/changes"),
        &[
            ("after", text(asked.after)),
            ("follower", asked.follower.to_string()),
            ("timeout", format!("{timeout}ms")),
        ],
    )
    .map_err(|e| format!("bad leader address [{addr}]: {e}"))?;
    if asked.held != asked.after {
        url.query_pairs_mut().append_pair("held", &text(asked.held));
    }
    let mut request = client
        .get(url)
        .timeout(Duration::from_millis(timeout as u64) + READ_SLACK);
    if let Some(token) = &remote.credentials {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            format!("no answer from the leader at [{addr}] in time")
        } else {
            format!("cannot connect to the leader at [{addr}]: {e}")
        }
    })?;
    let status = response.status().as_u16();
    if status == 200 {
        let changes: Changes = response
            .json()
            .await
            .map_err(|e| format!("the leader at [{addr}] answered a read with no changes: {e}"))?;
        return Ok(changes);
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let reason = body["error"]["reason"].as_str().unwrap_or("").to_string();
    Err(match status {
        401 => format!(
            "the leader at [{addr}] refused the credentials of cluster.remote.{alias} ({reason})"
        ),
        403 => format!(
            "the credentials of cluster.remote.{alias} may not read the leader at [{addr}] ({reason})"
        ),
        404 => format!("the leader at [{addr}] has no index [{leader_index}] ({reason})"),
        s => format!("the leader at [{addr}] answered HTTP {s}: {reason}"),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a step did.
enum Outcome {
    Wait,
    /// With, for a resync over a diverged folder, what it replaced.
    Applied(Checkpoint, Applied, Option<String>),
    Paused(PauseReason),
}

/// The checkpoint repository a follower's steps read, opened once and
/// kept while its location stays: its reader's caches then hold the
/// index and tree packs of the checkpoint the folder holds from one
/// apply to the next. A failed step drops it (the repository may have
/// been replaced), so the next step opens it afresh.
type KeptRepo = Arc<Mutex<Option<(Location, Repo)>>>;

/// The next apply's stage, linked ahead right after an apply switched the
/// folder to the checkpoint named (`native::ccr::apply::StageAhead`).
type NextStage = Arc<Mutex<Option<(Point, StageAhead)>>>;

/// One step's inputs, moved to its thread.
struct Job {
    location: Location,
    kept: KeptRepo,
    stage: NextStage,
    /// The leader node, to ask for chunk deltas (proxy mode only).
    leader: Option<LeaderAddress>,
    data: PathBuf,
    leader_index: String,
    follower_index: String,
    held: Option<Point>,
    changes: Changes,
    params: FollowParams,
    /// `max_bytes_per_sec`: reads from the leader are throttled to it.
    read_limit: Option<u64>,
}

impl Job {
    /// The checkpoint repository, from [`KeptRepo`] where it is the one
    /// kept, its reads counted against `limit` (`max_bytes_per_sec`).
    fn repo(&self, limit: Option<&Arc<Limiter>>) -> crate::error::Result<Repo> {
        let mut kept = lock(&self.kept);
        let repo = match kept.as_ref().filter(|(at, _)| *at == self.location) {
            Some((_, repo)) => repo.clone(),
            None => {
                let repo = Repo::open_in(self.location.open(false)?)?.keeping_index();
                *kept = Some((self.location.clone(), repo.clone()));
                repo
            }
        };
        Ok(match limit {
            Some(l) => repo.with_download_limiter(l.clone()),
            None => repo,
        })
    }

    /// What a resync to `point` replaces, in the user's terms.
    fn split_brain(&self, point: &Point) -> String {
        let relation = relate(&self.changes.history, Some(point), self.held.as_ref());
        let (common, after) = match relation {
            Relation::Diverged {
                common,
                local_after,
            } => (common, local_after),
            _ => (None, 0),
        };
        let since = common.map_or("the start".to_string(), |c| c.to_string());
        format!(
            "split brain: the folder held {after} checkpoint(s) after {since} that the leader's \
             history does not have; reuse_existing replaced them with the leader's {point}"
        )
    }

    /// Checks the folder for local writes since the checkpoint it holds,
    /// decides, and applies the leader's newest checkpoint when that is
    /// the step. A held checkpoint the leader no longer has (its lease
    /// expired) cannot be compared with: the apply replaces whatever
    /// differs, as a delta.
    fn step(self) -> Result<Outcome, String> {
        let failed = |e: crate::error::Error| e.to_string();
        // One budget for the step's reads from the leader: the repository's
        // and the chunk deltas'.
        let limit = self.read_limit.map(|n| Arc::new(Limiter::new(n)));
        let repo = self.repo(limit.as_ref()).map_err(failed)?;
        let follow = Follow {
            repo: &repo,
            leader_index: &self.leader_index,
            data: &self.data,
            follower_index: &self.follower_index,
        };
        // The held checkpoint, if the leader still has it: what the folder
        // is compared with, and the base of chunk deltas.
        let held = match &self.held {
            Some(p) => {
                let name = snapshot_name(&self.leader_index, p);
                let root = repo.root().map_err(failed)?;
                root.snapshots
                    .iter()
                    .any(|s| s.snapshot == name)
                    .then_some(name)
            }
            None => None,
        };
        let head = self.changes.head.as_ref();
        // The stage is linked beside the local-write check when an apply
        // is likely (the leader has a checkpoint the folder does not).
        let likely = head.is_some_and(|h| Some(&h.point) != self.held.as_ref());
        // A stage linked ahead from the folder at what it holds is taken
        // when the check below finds no local write (else the step
        // pauses); one linked at another checkpoint is waited for and
        // dropped. A step that applies nothing leaves it for the next.
        let ahead = likely
            .then(|| lock(&self.stage).take())
            .flatten()
            .filter(|(at, _)| Some(at) == self.held.as_ref())
            .map(|(_, a)| a);
        let (seen, staged) = std::thread::scope(|s| {
            let linking = likely.then(|| {
                s.spawn(|| match ahead {
                    Some(a) => a.finish(),
                    None => follow.link_stage(),
                })
            });
            let seen = held.as_ref().map(|name| follow.examine(name));
            let staged = linking.map(|l| l.join().expect("the stage's thread panicked"));
            (seen, staged)
        });
        let (local, walked, held_plan) = match seen.transpose().map_err(failed)? {
            Some(seen) => (seen.changes, seen.walked, Some(seen.planned)),
            None => (Vec::new(), None, None),
        };
        // A node killed between an apply's switch and recording it holds
        // the head already: its folder differs from the recorded
        // checkpoint but not from the head, which it is then known to hold.
        if let Some(h) = head.filter(|h| !local.is_empty() && Some(&h.point) != self.held.as_ref())
        {
            if follow
                .local_changes(&h.snapshot)
                .map_err(failed)?
                .is_empty()
            {
                return Ok(Outcome::Applied(h.clone(), Applied::default(), None));
            }
        }
        let view = View {
            history: &self.changes.history,
            head: head.map(|h| &h.point),
        };
        match decide(self.held.as_ref(), view, &local, self.params, 0) {
            Step::Wait { .. } => Ok(Outcome::Wait),
            Step::Pause(reason) => Ok(Outcome::Paused(reason)),
            Step::Apply { point, resync } => {
                let head = head
                    .filter(|h| h.point == point)
                    .ok_or("the leader's answer has no checkpoint to apply")?;
                let note = resync.then(|| self.split_brain(&point));
                let link = self.leader.as_ref().and_then(|(address, token)| {
                    LeaderLink::new(address, token.clone(), &self.leader_index, limit.clone())
                });
                let deltas = match (&link, &held) {
                    (Some(source), Some(held)) => Some(Deltas {
                        source,
                        held,
                        planned: held_plan.as_ref(),
                    }),
                    _ => None,
                };
                let prepared = Prepared {
                    deltas: deltas.as_ref(),
                    walked,
                    staged: staged.transpose().map_err(failed)?,
                };
                let applied = follow
                    .apply_with(&head.snapshot, prepared, Abort::new())
                    .map_err(failed)?;
                *lock(&self.stage) = Some((head.point.clone(), follow.link_stage_ahead()));
                Ok(Outcome::Applied(head.clone(), applied, note))
            }
        }
    }
}
