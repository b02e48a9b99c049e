//! Simulation of a leader and its followers over thousands of reads, with
//! failed reads, killed followers, outages longer than a lease, and
//! failovers: leases keep what a live follower reads, a returning follower
//! catches up as a delta, and an old leader that kept writing is seen as
//! diverged from the promoted index.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::core::ccr::checkpoint::Point;
use crate::core::ccr::follower::{
    decide, retry_delay_ms, FollowParams, PauseReason, Step, Tracker, View,
};
use crate::core::ccr::lease::{prunable, renew, Lease, Retention};
use crate::core::ccr::lineage::History;
use crate::core::seeded::Rng;

const TICK_MS: i64 = 100;
const RENEW_EVERY_MS: i64 = 1_000;
const RETENTION: Retention = Retention {
    keep_last: 2,
    lease_ms: 3_000,
};

fn lineage(rng: &mut Rng) -> String {
    format!("{:016x}", rng.next_u64())
}

struct Leader {
    history: History,
    /// Checkpoints that still exist, with their times.
    store: Vec<(Point, i64)>,
    seq: u64,
    leases: Vec<Lease>,
}

impl Leader {
    fn new(history: History) -> Leader {
        Leader {
            history,
            store: Vec::new(),
            seq: 0,
            leases: Vec::new(),
        }
    }

    fn checkpoint(&mut self, now: i64) {
        self.seq += 1;
        self.store
            .push((Point::new(self.history.current(), self.seq), now));
    }

    fn head(&self) -> Option<(Point, i64)> {
        self.store
            .iter()
            .filter(|(p, _)| p.lineage == self.history.current())
            .max()
            .cloned()
    }

    fn prune(&mut self, now: i64) {
        let points: Vec<Point> = self.store.iter().map(|(p, _)| p.clone()).collect();
        let gone = prunable(
            &points,
            self.history.current(),
            &self.leases,
            now,
            RETENTION,
        );
        self.store.retain(|(p, _)| !gone.contains(p));
    }

    fn has(&self, p: &Point) -> bool {
        self.store.iter().any(|(q, _)| q == p)
    }
}

enum State {
    Idle {
        next_at: i64,
    },
    Applying {
        point: (Point, i64),
        done_at: i64,
        renew_at: i64,
    },
    Down {
        until: i64,
    },
}

struct Follower {
    name: String,
    tracker: Tracker,
    state: State,
    params: FollowParams,
    /// Applies whose checkpoint was deleted while a live follower read it.
    lost_live: u32,
    paused: Option<PauseReason>,
}

impl Follower {
    fn new(name: &str, params: FollowParams) -> Follower {
        Follower {
            name: name.into(),
            tracker: Tracker::default(),
            state: State::Idle { next_at: 0 },
            params,
            lost_live: 0,
            paused: None,
        }
    }

    fn held(&self) -> Option<&Point> {
        self.tracker.held.as_ref().map(|(p, _)| p)
    }

    /// One tick of the follower's shell loop, with `chaos` deciding reads
    /// that fail and kills.
    fn tick(&mut self, leader: &mut Leader, now: i64, rng: &mut Rng, chaos: bool) {
        if chaos && rng.below(1_000) < 2 && !matches!(self.state, State::Down { .. }) {
            // Killed: an unfinished apply is abandoned (the switch is atomic).
            let outage = rng.below(60_000) as i64;
            self.state = State::Down {
                until: now + outage,
            };
        }
        match &mut self.state {
            State::Down { until } if now >= *until => self.state = State::Idle { next_at: now },
            State::Down { .. } => {}
            State::Idle { next_at } if now >= *next_at && self.paused.is_none() => {
                self.read(leader, now, rng, chaos);
            }
            State::Idle { .. } => {}
            State::Applying {
                point,
                done_at,
                renew_at,
            } => {
                if now >= *renew_at {
                    leader.leases = renew(&leader.leases, &self.name, &point.0, now);
                    *renew_at = now + RENEW_EVERY_MS;
                }
                if now >= *done_at {
                    let point = point.clone();
                    self.finish(leader, point, now);
                }
            }
        }
    }

    fn read(&mut self, leader: &mut Leader, now: i64, rng: &mut Rng, chaos: bool) {
        if chaos && rng.below(10) == 0 {
            self.tracker.failed("connection refused".into());
            let wait = retry_delay_ms(self.tracker.consecutive_failures, self.params);
            self.state = State::Idle {
                next_at: now + wait,
            };
            return;
        }
        let head = leader.head();
        self.tracker.read_ok(head.clone(), now);
        let view = View {
            history: &leader.history,
            head: head.as_ref().map(|(p, _)| p),
        };
        match decide(self.held(), view, &[], self.params, now) {
            Step::Wait { at_ms } => self.state = State::Idle { next_at: at_ms },
            Step::Apply { point, .. } => {
                let time = head.expect("applies a head").1;
                leader.leases = renew(&leader.leases, &self.name, &point, now);
                self.state = State::Applying {
                    point: (point, time),
                    done_at: now + rng.below(5_000) as i64,
                    renew_at: now + RENEW_EVERY_MS,
                };
            }
            Step::Pause(reason) => {
                self.paused = Some(reason);
                self.state = State::Idle { next_at: i64::MAX };
            }
        }
    }

    fn finish(&mut self, leader: &Leader, point: (Point, i64), now: i64) {
        if !leader.has(&point.0) {
            self.lost_live += 1;
            self.tracker
                .failed(format!("checkpoint {} is gone", point.0));
            let wait = retry_delay_ms(self.tracker.consecutive_failures, self.params);
            self.state = State::Idle {
                next_at: now + wait,
            };
            return;
        }
        if let Some(held) = self.held() {
            let forward = held.lineage != point.0.lineage || held.seq < point.0.seq;
            assert!(
                forward,
                "{} went back from {held} to {}",
                self.name, point.0
            );
        }
        self.tracker.applied(point, 1, 1, 1);
        self.state = State::Idle { next_at: now };
    }
}

fn params() -> FollowParams {
    FollowParams {
        read_poll_timeout_ms: 1_000,
        ..FollowParams::default()
    }
}

/// Runs `ticks` ticks: the leader writes a checkpoint about every 2 s and
/// prunes; followers run their loops.
fn run(
    leader: &mut Leader,
    followers: &mut [Follower],
    from: i64,
    ticks: i64,
    rng: &mut Rng,
    chaos: bool,
) -> i64 {
    let mut now = from;
    for _ in 0..ticks {
        now += TICK_MS;
        if chaos && rng.below(20) == 0 {
            leader.checkpoint(now);
        }
        leader.prune(now);
        for f in followers.iter_mut() {
            f.tick(leader, now, rng, chaos);
        }
    }
    now
}

#[test]
fn followers_keep_up_through_failures_kills_and_long_outages() {
    for seed in 0..24 {
        let mut rng = Rng::new(seed);
        let mut leader = Leader::new(History::start(&lineage(&mut rng)).unwrap());
        let mut followers = vec![Follower::new("b", params()), Follower::new("c", params())];
        let now = run(&mut leader, &mut followers, 0, 20_000, &mut rng, true);
        // Quiet: no new checkpoints, no failures; everyone catches up as a
        // delta from what it holds, however long it was away.
        run(&mut leader, &mut followers, now, 600, &mut rng, false);
        let head = leader.head().map(|(p, _)| p);
        for f in &followers {
            assert_eq!(
                f.lost_live, 0,
                "seed {seed}: a lease let a live read's checkpoint go"
            );
            assert_eq!(f.held(), head.as_ref(), "seed {seed}: {} caught up", f.name);
            assert!(f.tracker.failed_reads > 0 && f.tracker.checkpoints_applied > 10);
            assert_eq!(f.tracker.lag(&leader.history), (0, 0));
        }
        // Outages longer than a lease happened, and the leader still kept
        // only a handful of checkpoints.
        assert!(
            leader.store.len() <= RETENTION.keep_last + followers.len(),
            "seed {seed}"
        );
    }
}

#[test]
fn an_old_leader_that_kept_writing_is_diverged_from_the_promoted_follower() {
    let mut seen = [0u32; 2];
    for seed in 0..48 {
        let mut rng = Rng::new(seed);
        let mut a = Leader::new(History::start(&lineage(&mut rng)).unwrap());
        let mut b = [Follower::new("b", params())];
        let now = run(
            &mut a,
            &mut b,
            0,
            2_000 + rng.below(2_000) as i64,
            &mut rng,
            true,
        );
        let now = run(&mut a, &mut b, now, 600, &mut rng, false);
        let Some(promoted_at) = b[0].held().cloned() else {
            continue;
        };
        // The leader's site is cut off; b is promoted at what it holds and
        // becomes a leader of a new lineage. The old leader keeps writing.
        let history = a.history.fork(&promoted_at, &lineage(&mut rng)).unwrap();
        let mut promoted = Leader::new(history);
        let extra = rng.below(4);
        for i in 0..extra {
            a.checkpoint(now + i as i64);
        }
        let promoted_writes = 1 + rng.below(3);
        for i in 0..promoted_writes {
            promoted.checkpoint(now + 10 + i as i64);
        }
        // Failback: the old leader follows the promoted index, holding
        // its own newest checkpoint.
        let mut old = Follower::new("a", params());
        old.tracker.held = a.head();
        let mut olds = [old];
        run(&mut promoted, &mut olds, now + 100, 50, &mut rng, false);
        let diverged = a.seq > promoted_at.seq;
        seen[usize::from(diverged)] += 1;
        match &olds[0].paused {
            Some(PauseReason::Diverged {
                common,
                local_after,
            }) => {
                assert!(diverged, "seed {seed}");
                assert_eq!(common.as_ref(), Some(&promoted_at), "seed {seed}");
                assert_eq!(*local_after, a.seq - promoted_at.seq, "seed {seed}");
            }
            other => {
                assert!(
                    !diverged,
                    "seed {seed}: split brain went unnoticed ({other:?})"
                );
                assert_eq!(olds[0].held(), promoted.head().as_ref().map(|(p, _)| p));
            }
        }
        // With reuse_existing the old leader resyncs and follows on.
        let mut resync = Follower::new(
            "a",
            FollowParams {
                reuse_existing: true,
                ..params()
            },
        );
        resync.tracker.held = a.head();
        let mut resyncs = [resync];
        run(&mut promoted, &mut resyncs, now + 100, 100, &mut rng, false);
        assert!(resyncs[0].paused.is_none(), "seed {seed}");
        assert_eq!(resyncs[0].held(), promoted.head().as_ref().map(|(p, _)| p));
    }
    assert!(
        seen[0] > 0 && seen[1] > 0,
        "both outcomes were simulated: {seen:?}"
    );
}
