//! What a policy's scheduler does next, given its schedule, what it has
//! handled and the clock: wait, run a slot, skip slots, or queue one behind
//! a running snapshot. The node loops around [`next_step`]; every decision
//! about missed and overlapping slots is here, so thousands of slots are
//! tested by simulation.
//!
//! A slot is handled once: run, skipped or queued. After a node was down,
//! the slots it missed are never run one by one (a pile of catch-up runs
//! is what Kubernetes CronJobs and Velero users meet): `missed: run_once`
//! runs the newest missed slot once, `missed: skip` skips them all and
//! waits for the next. A slot reached within `on_time_ms` of its fire time
//! is on time, whatever the rule.

use jiff::tz::TimeZone;

use crate::core::slm::schedule::Schedule;

/// Missed slots counted at most this far (a 1 s schedule left alone for a
/// month missed millions; the report says "at least").
pub const MISSED_COUNT_CAP: u64 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    Skip,
    RunOnce,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    Skip,
    Queue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub missed: Missed,
    pub overlap: Overlap,
    /// How late a slot may be reached and still be on time.
    pub on_time_ms: i64,
}

/// What the scheduler knows of one policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlotState {
    /// Slots at or before this instant are not the policy's: its creation
    /// or last change (Elasticsearch's `modified_date`).
    pub anchor_ms: i64,
    /// The newest slot handled (by any node: the repository's claims say).
    pub handled_ms: Option<i64>,
    /// A snapshot of this policy is running.
    pub running: bool,
    /// A slot waits for the running snapshot to end.
    pub queued_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Reached late with `missed: skip`.
    Missed,
    /// Due while a run was in progress, with `overlap: skip`.
    Overlap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing is due; decide again at `at_ms` (`None`: never again).
    Wait { at_ms: Option<i64> },
    /// Run slot `slot_ms` now; `missed` earlier slots were not run.
    Run { slot_ms: i64, missed: u64 },
    /// Mark slots up to `slot_ms` handled without a run (`count` of them).
    Skip {
        slot_ms: i64,
        count: u64,
        reason: SkipReason,
    },
    /// Mark `slot_ms` handled and run it when the running snapshot ends
    /// (`replaced`: an older queued slot it supersedes, now skipped).
    Queue { slot_ms: i64, replaced: Option<i64> },
}

/// The next step for a policy at `now_ms`.
pub fn next_step(
    schedule: &Schedule,
    tz: &TimeZone,
    state: &SlotState,
    rules: &Rules,
    now_ms: i64,
) -> Step {
    let anchor = state.anchor_ms;
    if let (Some(queued), false) = (state.queued_ms, state.running) {
        return Step::Run {
            slot_ms: queued,
            missed: 0,
        };
    }
    let from = state.handled_ms.map_or(anchor, |h| h.max(anchor));
    let latest = match schedule.last_fire(tz, anchor, now_ms) {
        Some(latest) if latest > from => latest,
        _ => {
            let at_ms = schedule.next_fire(tz, anchor, from.max(now_ms));
            return Step::Wait { at_ms };
        }
    };
    let due = schedule.count_fires(tz, anchor, from, latest, MISSED_COUNT_CAP);
    let earlier = due.saturating_sub(1);
    let late = now_ms - latest > rules.on_time_ms;
    if late && rules.missed == Missed::Skip {
        return Step::Skip {
            slot_ms: latest,
            count: due,
            reason: SkipReason::Missed,
        };
    }
    if state.running {
        return match rules.overlap {
            Overlap::Skip => Step::Skip {
                slot_ms: latest,
                count: due,
                reason: SkipReason::Overlap,
            },
            Overlap::Queue => Step::Queue {
                slot_ms: latest,
                replaced: state.queued_ms,
            },
        };
    }
    Step::Run {
        slot_ms: latest,
        missed: earlier,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const S: i64 = 1000;
    const T0: i64 = 1_767_225_600_000;

    fn rules(missed: Missed, overlap: Overlap) -> Rules {
        Rules {
            missed,
            overlap,
            on_time_ms: 500,
        }
    }

    /// A simulated scheduler: one node, runs of `run_ms`, waking at every
    /// step's time (and at a run's end), down during `outage`.
    struct Sim {
        schedule: Schedule,
        rules: Rules,
        state: SlotState,
        run_ms: i64,
        run_ends: Option<i64>,
        ran: Vec<i64>,
        skipped: u64,
    }

    impl Sim {
        fn new(schedule: &str, rules: Rules, run_ms: i64) -> Sim {
            Sim {
                schedule: Schedule::parse(schedule).unwrap(),
                rules,
                state: SlotState {
                    anchor_ms: T0,
                    ..SlotState::default()
                },
                run_ms,
                run_ends: None,
                ran: Vec::new(),
                skipped: 0,
            }
        }

        /// Runs the loop until `until`; the node is down (and any run
        /// dies) during `outage`.
        fn run(&mut self, until: i64, outage: (i64, i64)) {
            let mut now = T0;
            while now < until {
                if (outage.0..outage.1).contains(&now) {
                    (now, self.run_ends, self.state.running) = (outage.1, None, false);
                    continue;
                }
                if self.run_ends.is_some_and(|end| end <= now) {
                    (self.run_ends, self.state.running) = (None, false);
                }
                let step = next_step(
                    &self.schedule,
                    &TimeZone::UTC,
                    &self.state,
                    &self.rules,
                    now,
                );
                match step {
                    Step::Wait { at_ms } => {
                        let wake = at_ms
                            .unwrap_or(until)
                            .min(self.run_ends.unwrap_or(i64::MAX));
                        assert!(wake > now, "a wait must move time on");
                        now = wake;
                    }
                    Step::Run { slot_ms, .. } => {
                        if self.state.queued_ms == Some(slot_ms) {
                            self.state.queued_ms = None;
                        }
                        let handled = self.state.handled_ms.unwrap_or(slot_ms);
                        self.state.handled_ms = Some(handled.max(slot_ms));
                        self.ran.push(slot_ms);
                        self.state.running = true;
                        self.run_ends = Some(now + self.run_ms);
                    }
                    Step::Skip { slot_ms, count, .. } => {
                        self.skipped += count;
                        self.state.handled_ms = Some(slot_ms);
                    }
                    Step::Queue { slot_ms, replaced } => {
                        self.skipped += u64::from(replaced.is_some());
                        self.state.queued_ms = Some(slot_ms);
                        self.state.handled_ms = Some(slot_ms);
                    }
                }
            }
        }
    }

    #[test]
    fn every_slot_runs_exactly_once_when_nothing_goes_wrong() {
        let mut sim = Sim::new("1s", rules(Missed::Skip, Overlap::Skip), 300);
        sim.run(T0 + 3600 * S + 1, (0, 0));
        assert_eq!(sim.ran.len(), 3600);
        assert!(sim.ran.windows(2).all(|w| w[1] - w[0] == S));
        assert_eq!(sim.skipped, 0);
    }

    #[test]
    fn after_an_outage_skip_skips_and_run_once_runs_the_newest_once() {
        let outage = (T0 + 100 * S + 200, T0 + 200 * S + 700);
        let mut skip = Sim::new("1s", rules(Missed::Skip, Overlap::Skip), 100);
        skip.run(T0 + 300 * S + 1, outage);
        // Slots 101..=200 fell in the outage: all skipped, none run.
        assert_eq!(skip.skipped, 100);
        assert_eq!(skip.ran.len(), 200);
        assert!(!skip
            .ran
            .iter()
            .any(|t| (T0 + 101 * S..=T0 + 200 * S).contains(t)));

        let mut once = Sim::new("1s", rules(Missed::RunOnce, Overlap::Skip), 100);
        once.run(T0 + 300 * S + 1, outage);
        let caught_up: Vec<i64> = once
            .ran
            .iter()
            .filter(|t| (T0 + 101 * S..=T0 + 200 * S).contains(*t))
            .copied()
            .collect();
        assert_eq!(caught_up, [T0 + 200 * S]);
        assert_eq!(once.ran.len(), 201);
    }

    #[test]
    fn a_run_longer_than_the_interval_skips_or_queues() {
        // Runs of 2.5 s on a 1 s schedule.
        let mut skip = Sim::new("1s", rules(Missed::RunOnce, Overlap::Skip), 2500);
        skip.run(T0 + 30 * S, (0, 0));
        assert_eq!(skip.ran.len(), 10, "{:?}", skip.ran);
        assert_eq!(skip.skipped, 19);

        let mut queue = Sim::new("1s", rules(Missed::RunOnce, Overlap::Queue), 2500);
        queue.run(T0 + 30 * S, (0, 0));
        // Back to back: one run every 2.5 s, each the newest slot then due;
        // never more than one waiting.
        assert_eq!(queue.ran.len(), 12, "{:?}", queue.ran);
        assert!(queue.ran.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_slot_reached_within_its_tolerance_is_on_time_even_with_skip() {
        let s = Schedule::parse("1m").unwrap();
        let state = SlotState {
            anchor_ms: T0,
            handled_ms: Some(T0 + 60 * S),
            ..SlotState::default()
        };
        let skip = rules(Missed::Skip, Overlap::Skip);
        let on_time = next_step(&s, &TimeZone::UTC, &state, &skip, T0 + 120 * S + 400);
        assert_eq!(
            on_time,
            Step::Run {
                slot_ms: T0 + 120 * S,
                missed: 0
            }
        );
        let late = next_step(&s, &TimeZone::UTC, &state, &skip, T0 + 240 * S + 600);
        assert_eq!(
            late,
            Step::Skip {
                slot_ms: T0 + 240 * S,
                count: 3,
                reason: SkipReason::Missed
            }
        );
        let once = rules(Missed::RunOnce, Overlap::Skip);
        let caught_up = next_step(&s, &TimeZone::UTC, &state, &once, T0 + 240 * S + 600);
        assert_eq!(
            caught_up,
            Step::Run {
                slot_ms: T0 + 240 * S,
                missed: 2
            }
        );
    }

    #[test]
    fn a_new_policy_does_not_run_slots_from_before_it_existed() {
        let s = Schedule::parse("0 0 * * * ?").unwrap();
        let state = SlotState {
            anchor_ms: T0 + 1800 * S,
            ..SlotState::default()
        };
        let step = next_step(
            &s,
            &TimeZone::UTC,
            &state,
            &rules(Missed::RunOnce, Overlap::Skip),
            T0 + 2000 * S,
        );
        assert_eq!(
            step,
            Step::Wait {
                at_ms: Some(T0 + 3600 * S)
            }
        );
    }

    #[test]
    fn a_schedule_that_ended_waits_forever() {
        let s = Schedule::parse("0 0 0 1 1 ? 2026").unwrap();
        let state = SlotState {
            anchor_ms: T0 - S,
            handled_ms: Some(T0),
            ..SlotState::default()
        };
        let step = next_step(
            &s,
            &TimeZone::UTC,
            &state,
            &rules(Missed::RunOnce, Overlap::Skip),
            T0 + S,
        );
        assert_eq!(step, Step::Wait { at_ms: None });
    }
}
