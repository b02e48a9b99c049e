//! The scheduler: one task that, on every wake, asks
//! `core::slm::slots::next_step` what each policy does now (wait, run,
//! skip, queue), applies the answers, and sleeps until the earliest next
//! fire or until woken (a policy changed, a run ended, the mode changed).
//! While the lifecycle is stopped nothing is decided, so on start the
//! slots passed meanwhile follow the policy's `missed` rule. The retention
//! schedule (`slm.retention_schedule`) has its own small loop.

use std::time::Duration;

use jiff::tz::TimeZone;

use crate::core::slm::schedule::Schedule;
use crate::core::slm::slots::{next_step, SkipReason, Step};
use crate::node::server::Shared;

use super::history::{Entry, Operation};
use super::records::SlmState;

/// The longest sleep: a wake this often re-reads the clock, so a clock
/// stepped forward (or a suspended machine) is noticed.
const MAX_SLEEP_MS: i64 = 60_000;

/// Runs for the node's life.
pub async fn schedule_loop(node: Shared) {
    loop {
        let wake_at = decide(&node).await;
        let now = node.slm.now();
        let sleep_ms = wake_at.map_or(MAX_SLEEP_MS, |at| (at - now).clamp(0, MAX_SLEEP_MS));
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(sleep_ms as u64)) => {}
            () = node.slm.wake.notified() => {}
        }
    }
}

/// A run the scheduler decided, started once the state is unlocked.
struct Due {
    policy: String,
    slot_ms: i64,
}

/// Applies every policy's steps at the current time; returns the earliest
/// instant something is due next.
async fn decide(node: &Shared) -> Option<i64> {
    let mut due = Vec::new();
    let mut entries = Vec::new();
    let wake_at = {
        let mut state = node.slm.lock().await;
        // A stopping node decides nothing: its slots are left to the
        // `missed` rule at the next start rather than recorded as failed.
        if state.stopped || node.running.is_closed() {
            return None;
        }
        let now = node.slm.now();
        let (wake_at, changed) = steps(&mut state, now, &mut due, &mut entries);
        if changed {
            node.slm.save_or_report(&state).await;
        }
        wake_at
    };
    for e in entries {
        node.slm.record(e);
    }
    for d in due {
        let node = node.clone();
        tokio::spawn(async move {
            // A run that cannot start is recorded as failed by `run_slot`.
            let _ = super::run::run_slot(&node, &d.policy, Some(d.slot_ms)).await;
        });
    }
    wake_at
}

/// Steps every policy until it waits. Runs are reserved here (the policy
/// counts as running at once) and returned in `due`; skips go to history.
fn steps(
    state: &mut SlmState,
    now: i64,
    due: &mut Vec<Due>,
    entries: &mut Vec<Entry>,
) -> (Option<i64>, bool) {
    let mut wake_at: Option<i64> = None;
    let mut changed = false;
    for (id, p) in state.policies.iter_mut() {
        let repository = p.parsed.repository.clone();
        let skip = |slot_ms: i64, reason: String| Entry {
            timestamp: now,
            policy: id.clone(),
            repository: repository.clone(),
            operation: Operation::Skip,
            snapshot_name: None,
            slot: Some(slot_ms),
            success: true,
            reason: Some(reason),
            error_details: None,
        };
        // Each step handles at least one slot or waits, so this ends; the
        // bound only guards against a decision that would not.
        for _ in 0..16 {
            let step = next_step(&p.parsed.schedule, &p.tz, &p.slot_state(), &p.rules(), now);
            match step {
                Step::Wait { at_ms } => {
                    if let Some(at) = at_ms {
                        wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
                    }
                    break;
                }
                Step::Run { slot_ms, missed } => {
                    if p.record.queued_ms == Some(slot_ms) {
                        p.record.queued_ms = None;
                    }
                    if missed > 0 {
                        let why = format!("missed {missed} slot(s); ran the newest once");
                        entries.push(skip(slot_ms, why));
                    }
                    p.record.handled_ms =
                        Some(p.record.handled_ms.map_or(slot_ms, |h| h.max(slot_ms)));
                    p.active += 1;
                    due.push(Due {
                        policy: id.clone(),
                        slot_ms,
                    });
                }
                Step::Skip {
                    slot_ms,
                    count,
                    reason,
                } => {
                    let why = match reason {
                        SkipReason::Missed => format!("missed {count} slot(s)"),
                        SkipReason::Overlap => {
                            format!("{count} slot(s) due while a run was in progress")
                        }
                    };
                    entries.push(skip(slot_ms, why));
                    p.record.handled_ms = Some(slot_ms);
                }
                Step::Queue { slot_ms, replaced } => {
                    if let Some(old) = replaced {
                        entries.push(skip(old, "queued slot replaced by a newer one".into()));
                    }
                    p.record.queued_ms = Some(slot_ms);
                    p.record.handled_ms = Some(slot_ms);
                }
            }
            changed = true;
        }
    }
    (wake_at, changed)
}

/// Runs retention at every fire of `slm.retention_schedule` (UTC) while
/// the lifecycle runs.
pub async fn retention_loop(node: Shared) {
    let Ok(schedule) = Schedule::parse(&node.settings.slm_retention_schedule) else {
        return;
    };
    let mut last = i64::MIN;
    loop {
        let now = node.slm.now();
        let Some(at) = schedule.next_fire(&TimeZone::UTC, 0, now.max(last)) else {
            return;
        };
        last = at;
        tokio::time::sleep(Duration::from_millis((at - now).max(0) as u64)).await;
        let stopped = node.slm.lock().await.stopped;
        if !stopped {
            if let Err(e) = super::retention::run_retention(&node).await {
                eprintln!("snapkeep node: lifecycle retention failed: {}", e.reason);
            }
        }
    }
}
