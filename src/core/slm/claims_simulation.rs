//! Three simulated nodes share one policy through a simulated repository
//! (claim objects with create-only puts, and real root commits with the
//! slot fence) for thousands of slots, while they are paused past the
//! takeover timeout, killed and restarted, and one node's clock is minutes
//! off. Every slot must commit exactly once, or be missed only around a
//! time when no node was running.
//!
//! The nodes' scheduler here is a test harness: each handles the oldest
//! slot after the newest handled one, and after an outage longer than
//! [`CATCH_UP`] jumps to the newest due slot (as `missed: run_once` does).
//! A run that lost its claim is deliberately finished and committed
//! anyway, so that the root's fence, not the claims, is what is tested.

use std::collections::BTreeMap;

use crate::core::format::root::{Root, RootChange, RootConflict, SlotFence};
use crate::core::seeded::Rng;
use crate::core::slm::claims::{
    decide, garbage, lost, ClaimBody, ClaimKey, Decision, Observation, SeenClaim, BEAT_EVERY_MS,
};
use crate::core::testing;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const POLICY: &str = "nightly";
/// The policy's interval, and the simulation's tick.
const INTERVAL: i64 = 60_000;
const TICK: i64 = 500;
/// Due slots older than this are skipped, not caught up one by one.
const CATCH_UP: i64 = 10 * INTERVAL;
const T0: i64 = 1_767_225_600_000;

/// The repository: claims, the root, and what the test counts.
#[derive(Default)]
struct Repo {
    root: Root,
    claims: BTreeMap<(i64, u64), ClaimBody>,
    commits: BTreeMap<i64, u32>,
    attempts: BTreeMap<i64, u32>,
    runs: BTreeMap<i64, u32>,
    refused: u64,
    takeovers: u64,
}

impl Repo {
    fn seen(&self, slot: i64) -> Vec<SeenClaim> {
        self.claims
            .range((slot, 0)..=(slot, u64::MAX))
            .map(|(&(_, epoch), body)| SeenClaim {
                epoch,
                body: Some(body.clone()),
            })
            .collect()
    }

    fn keys(&self) -> Vec<ClaimKey> {
        self.claims
            .keys()
            .map(|&(slot_ms, epoch)| ClaimKey {
                policy: POLICY.into(),
                slot_ms,
                epoch,
            })
            .collect()
    }

    /// What the shell does whenever a slot is settled or claimed.
    fn cleanup(&mut self) {
        let recorded = self.root.slm_slots.get(POLICY).copied();
        for k in garbage(&self.keys(), recorded) {
            self.claims.remove(&(k.slot_ms, k.epoch));
        }
    }

    fn commit(&mut self, slot: i64, epoch: u64) {
        *self.attempts.entry(slot).or_default() += 1;
        let name = format!("s-{slot}-{epoch}");
        let change = RootChange::AddSnapshot {
            summary: testing::summary(&name),
            index_file: None,
            base_index_files: vec![],
            slot: Some(SlotFence {
                policy: POLICY.into(),
                slot_ms: slot,
                epoch,
            }),
        };
        match self.root.apply(&change) {
            Ok(next) => {
                *self.commits.entry(slot).or_default() += 1;
                // Retention deletes snapshots; the slot records stay.
                self.root = next.apply(&delete_all(&next)).unwrap();
            }
            Err(RootConflict::SlotTaken { .. }) => self.refused += 1,
            Err(other) => panic!("slot {slot}: {other}"),
        }
    }
}

fn delete_all(root: &Root) -> RootChange {
    RootChange::Rewrite {
        remove_snapshots: root.snapshots.iter().map(|s| s.snapshot.clone()).collect(),
        remove_index_files: vec![],
        add_index_files: vec![],
        known_snapshots: root.snapshots.iter().map(|s| s.uuid.clone()).collect(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Life {
    Up,
    Paused { until: i64 },
    Down { until: i64 },
}

struct Run {
    slot: i64,
    epoch: u64,
    work_left: i64,
    next_beat: i64,
    beating: bool,
}

struct Node {
    offset: i64,
    life: Life,
    run: Option<Run>,
    handled: Option<i64>,
    watching: Option<(i64, Observation)>,
    next_poll: i64,
    next_fault: i64,
}

impl Node {
    fn new(offset: i64) -> Node {
        Node {
            offset,
            life: Life::Up,
            run: None,
            handled: None,
            watching: None,
            next_poll: 0,
            next_fault: T0 + 3 * INTERVAL,
        }
    }

    /// A killed process forgets everything; its claims stay behind.
    fn kill(&mut self, until: i64) {
        self.life = Life::Down { until };
        (self.run, self.handled, self.watching) = (None, None, None);
    }

    fn tick(&mut self, t: i64, repo: &mut Repo, rng: &mut Rng) {
        if self.run.is_some() {
            self.work(t, repo);
        } else if t >= self.next_poll {
            self.poll(t, repo, rng);
        }
    }

    /// Beats while the claim is ours, then commits (even a lost claim).
    fn work(&mut self, t: i64, repo: &mut Repo) {
        let run = self.run.as_mut().unwrap();
        if run.beating && t >= run.next_beat {
            if lost(run.epoch, &repo.keys()) {
                run.beating = false;
            } else if let Some(body) = repo.claims.get_mut(&(run.slot, run.epoch)) {
                body.beat += 1;
            } else {
                // Cleanup removed it (the slot is older than the root's):
                // the heartbeat puts it back, harmlessly.
                repo.claims
                    .insert((run.slot, run.epoch), ClaimBody::new("back"));
            }
            run.next_beat = t + BEAT_EVERY_MS;
        }
        run.work_left -= TICK;
        if run.work_left <= 0 {
            let (slot, epoch) = (run.slot, run.epoch);
            repo.commit(slot, epoch);
            self.handled = self.handled.max(Some(slot));
            self.run = None;
            self.next_poll = t;
        }
    }

    fn poll(&mut self, t: i64, repo: &mut Repo, rng: &mut Rng) {
        let local = t + self.offset;
        let recorded = repo.root.slm_slots.get(POLICY).copied();
        let floor = self.handled.max(recorded.map(|r| r.slot_ms));
        let oldest = floor.map_or(T0 + INTERVAL, |f| f + INTERVAL);
        if local < oldest {
            self.watching = None;
            self.next_poll = t + (oldest - local);
            return;
        }
        let newest = T0 + (local - T0) / INTERVAL * INTERVAL;
        let slot = if local - oldest > CATCH_UP {
            newest
        } else {
            oldest
        };
        let seen_before = self.watching.filter(|(s, _)| *s == slot).map(|(_, o)| o);
        match decide(
            slot,
            recorded,
            &repo.seen(slot),
            seen_before.as_ref(),
            local,
        ) {
            Decision::Done(_) => {
                self.handled = self.handled.max(Some(slot));
                self.watching = None;
                repo.cleanup();
            }
            Decision::Claim { epoch } => {
                self.claim(t, slot, epoch, repo, rng);
            }
            Decision::TakeOver { epoch } => {
                if self.claim(t, slot, epoch, repo, rng) {
                    repo.takeovers += 1;
                }
            }
            Decision::Wait {
                observed,
                retry_at_ms,
            } => {
                self.watching = Some((slot, observed));
                self.next_poll = t + (retry_at_ms - local).max(TICK);
            }
        }
    }

    /// A create-only put: only one node gets an epoch.
    fn claim(&mut self, t: i64, slot: i64, epoch: u64, repo: &mut Repo, rng: &mut Rng) -> bool {
        if repo.claims.contains_key(&(slot, epoch)) {
            self.next_poll = t + TICK;
            return false;
        }
        repo.claims.insert((slot, epoch), ClaimBody::new("node"));
        repo.cleanup();
        *repo.runs.entry(slot).or_default() += 1;
        self.watching = None;
        let work = 2_000 + rng.below(20_000) as i64;
        // Faults strike mid-run often: that is when claims matter.
        if rng.below(6) == 0 {
            self.next_fault = self.next_fault.min(t + rng.below(work as u64) as i64);
        }
        self.run = Some(Run {
            slot,
            epoch,
            work_left: work,
            next_beat: t + BEAT_EVERY_MS,
            beating: true,
        });
        true
    }

    /// Now and then (at most once per two intervals) a pause longer than
    /// the takeover timeout, or a kill and a restart.
    fn faults(&mut self, t: i64, rng: &mut Rng) {
        match self.life {
            Life::Paused { until } | Life::Down { until } if t >= until => {
                self.life = Life::Up;
                self.next_poll = t;
            }
            Life::Up if t >= self.next_fault => {
                if rng.below(2) == 0 {
                    self.life = Life::Paused {
                        until: t + 12_000 + rng.below(33_000) as i64,
                    };
                } else {
                    self.kill(t + 5_000 + rng.below(115_000) as i64);
                }
                self.next_fault = t + 2 * INTERVAL + rng.below(10 * INTERVAL as u64) as i64;
            }
            _ => {}
        }
    }
}

/// The outcome of one simulation: counts, and the spans when no node ran.
struct Outcome {
    repo: Repo,
    all_down: Vec<(i64, i64)>,
    last_slot: i64,
}

/// Runs `slots` intervals; every node is killed for `outage_ms` in the
/// middle (longer than [`CATCH_UP`]: slots are missed there).
fn simulate(seed: u64, offsets: [i64; 3], slots: i64, outage_ms: i64) -> Outcome {
    let mut rng = Rng::new(seed);
    let mut repo = Repo::default();
    let mut nodes = offsets.map(Node::new);
    for n in nodes.iter_mut() {
        n.next_fault = T0 + (2 + rng.below(8) as i64) * INTERVAL + rng.below(60_000) as i64;
    }
    let end = T0 + slots * INTERVAL;
    let outage_at = T0 + slots / 2 * INTERVAL + 7_000;
    let mut all_down = Vec::new();
    let mut down_since = None;
    let mut t = T0;
    while t < end {
        if t == outage_at {
            nodes.iter_mut().for_each(|n| n.kill(t + outage_ms));
        }
        for n in nodes.iter_mut() {
            n.faults(t, &mut rng);
            if n.life == Life::Up {
                n.tick(t, &mut repo, &mut rng);
            }
        }
        let none_up = nodes.iter().all(|n| n.life != Life::Up);
        match (none_up, down_since) {
            (true, None) => down_since = Some(t),
            (false, Some(since)) => {
                all_down.push((since, t));
                down_since = None;
            }
            _ => {}
        }
        t += TICK;
    }
    Outcome {
        repo,
        all_down,
        // Slots near the end may still be running.
        last_slot: end - 5 * INTERVAL,
    }
}

/// `min_refused`: slots whose second run reached the commit (a paused
/// holder resuming after a takeover). With the node that is minutes
/// ahead doing most runs, the others reach its slots only after its
/// pauses end, so few such races happen there.
fn check(out: &Outcome, max_offset: i64, min_refused: usize) {
    let repo = &out.repo;
    let mut missed = Vec::new();
    let mut slot = T0 + INTERVAL;
    while slot <= out.last_slot {
        match repo.commits.get(&slot).copied().unwrap_or(0) {
            1 => {}
            0 => missed.push(slot),
            n => panic!("slot {slot} committed {n} times"),
        }
        slot += INTERVAL;
    }
    // Missed only around a time when no node ran: slots still in flight
    // when the last node stopped, and those that came due (on any
    // node's clock) during the outage.
    for s in &missed {
        let excused = out
            .all_down
            .iter()
            .any(|&(from, to)| from - 5 * INTERVAL <= *s && *s <= to + max_offset + INTERVAL);
        assert!(
            excused,
            "slot {s} was missed while a node ran: {:?}",
            out.all_down
        );
    }
    let committed = repo.commits.len();
    assert!(committed >= 1_500, "{committed} slots committed");
    assert!(!missed.is_empty(), "the long outage must cost slots");
    // The faults did what they are there for: claims were taken over, and
    // slots were run twice, and only the fence kept them from committing
    // twice.
    assert!(repo.takeovers > 100, "{} takeovers", repo.takeovers);
    let run_twice = repo.runs.values().filter(|&&n| n > 1).count();
    let refused_twice = repo.attempts.values().filter(|&&n| n > 1).count();
    assert!(run_twice > 100, "{run_twice} slots run twice");
    assert!(refused_twice >= min_refused, "{refused_twice} refused");
    assert!(repo.refused as usize >= refused_twice);
    // Cleanup kept the claims to the few newest slots.
    assert!(repo.claims.len() < 50, "{} claims left", repo.claims.len());
}

#[test]
fn slots_commit_once_with_a_node_minutes_ahead() {
    let out = simulate(1, [0, 0, 180_000], 2_000, 15 * INTERVAL);
    check(&out, 180_000, 1);
}

#[test]
fn slots_commit_once_with_a_node_minutes_behind() {
    let out = simulate(2, [0, -150_000, 0], 2_000, 15 * INTERVAL);
    check(&out, 150_000, 100);
}

#[test]
fn without_an_outage_every_slot_commits_once() {
    // Short spans with no node up happen by chance; shorter than the
    // catch-up horizon, they delay slots but cost none.
    let out = simulate(3, [0, 240_000, 0], 1_000, 0);
    for k in 1..1_000 - 5 {
        let slot = T0 + k * INTERVAL;
        assert_eq!(out.repo.commits.get(&slot), Some(&1), "slot {k}");
    }
    assert!(out.repo.takeovers > 10, "{}", out.repo.takeovers);
}
