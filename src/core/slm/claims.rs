//! Slot claims: how the nodes holding one policy agree, through the
//! repository alone, which of them runs a slot, so the work is done once.
//!
//! A claim is an object `slm/claims/<policy>/<slot_ms>/<epoch>` created
//! with a create-only put (of two nodes racing for one epoch, one wins).
//! Its holder rewrites it with a higher `beat` every [`BEAT_EVERY_MS`];
//! a claim whose beat this node has not seen change for
//! [`TAKEOVER_AFTER_MS`] of *its own* clock is taken over with the next
//! epoch. No decision here reads a time another node wrote, so a node
//! whose clock is minutes off judges staleness exactly as the others do.
//!
//! Claims only save work. That a slot *commits* once is the root's fence
//! (`core::format::root::SlotFence`): a holder that lost its claim (paused
//! past the takeover, partitioned, killed and restarted) and still finishes
//! its snapshot is refused at the commit.

use serde::{Deserialize, Serialize};

use crate::core::format::root::SlotRecord;

/// Where claims live in a repository.
pub const CLAIM_PREFIX: &str = "slm/claims/";
/// How often a holder rewrites its claim.
pub const BEAT_EVERY_MS: i64 = 2_000;
/// How often a node waiting on another's claim looks again.
pub const POLL_EVERY_MS: i64 = 2_000;
/// How long a claim's beat may stay unchanged, on the observer's clock,
/// before the claim is taken over. With a beat and a poll every 2 s, a
/// claim is taken over at most 14 s after its holder stopped (its last
/// beat is at most 2 s old when it stops, and the observer sees it at
/// most 2 s later): within the 15 s the issue sets.
pub const TAKEOVER_AFTER_MS: i64 = 10_000;
/// The claim format this code writes.
pub const CLAIM_FORMAT: u32 = 1;

/// A claim's key, parsed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClaimKey {
    pub policy: String,
    pub slot_ms: i64,
    pub epoch: u64,
}

/// The prefix of every claim of `policy` (ids hold no `/`:
/// `slm_policy::policy_id_problem`).
pub fn policy_prefix(policy: &str) -> String {
    format!("{CLAIM_PREFIX}{policy}/")
}

/// The prefix of every claim of one slot.
pub fn slot_prefix(policy: &str, slot_ms: i64) -> String {
    format!("{CLAIM_PREFIX}{policy}/{slot_ms}/")
}

/// The key of one claim. Numbers are decimal without padding; listings
/// are parsed numerically, never compared as strings.
pub fn claim_key(policy: &str, slot_ms: i64, epoch: u64) -> String {
    format!("{CLAIM_PREFIX}{policy}/{slot_ms}/{epoch}")
}

/// The claim a key names, if it is one (decimal, no sign, no leading
/// zeros: one key per claim).
pub fn parse_claim_key(key: &str) -> Option<ClaimKey> {
    let mut parts = key.strip_prefix(CLAIM_PREFIX)?.split('/');
    let (policy, slot, epoch) = (parts.next()?, parts.next()?, parts.next()?);
    if policy.is_empty() || parts.next().is_some() {
        return None;
    }
    Some(ClaimKey {
        policy: policy.to_string(),
        slot_ms: i64::try_from(decimal(slot)?).ok()?,
        epoch: decimal(epoch)?,
    })
}

fn decimal(s: &str) -> Option<u64> {
    let canonical = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s.len() == 1 || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// How a holder let its claim go before the slot committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Release {
    /// The slot ran and failed: it was handled (Elasticsearch records a
    /// failed run and waits for the next slot), so nobody runs it again.
    Failed,
    /// The holder gave the slot up unrun (it is shutting down): the next
    /// node takes it over at once rather than after the timeout.
    Abandoned,
}

/// A claim object's content, compact JSON:
/// `{"format":1,"holder":"node-a/5f0c…","beat":7}`, plus
/// `"released":"failed"|"abandoned"` once let go. It holds no time: other
/// nodes judge it by whether `beat` changes, on their own clocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimBody {
    pub format: u32,
    /// Who holds it (node name and process), for people reading it.
    pub holder: String,
    pub beat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<Release>,
}

impl ClaimBody {
    pub fn new(holder: &str) -> ClaimBody {
        ClaimBody {
            format: CLAIM_FORMAT,
            holder: holder.to_string(),
            beat: 0,
            released: None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("claims always serialize")
    }

    /// `None` for anything that is not a claim this code reads; such a
    /// claim is judged by its epoch alone (and goes stale).
    pub fn decode(bytes: &[u8]) -> Option<ClaimBody> {
        serde_json::from_slice::<ClaimBody>(bytes)
            .ok()
            .filter(|b| b.format == CLAIM_FORMAT)
    }
}

/// One claim of the slot, as listed and read (`body` is `None` if it
/// could not be read or vanished between the listing and the read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenClaim {
    pub epoch: u64,
    pub body: Option<ClaimBody>,
}

/// What this node saw of a slot's holder, and since when (its own clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub epoch: u64,
    pub beat: Option<u64>,
    pub since_ms: i64,
}

/// Why a slot needs nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// The root records this slot or a newer one of the policy.
    Committed(SlotRecord),
    /// The claim of this epoch ran the slot and it failed.
    Failed { epoch: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Done(Handled),
    /// Nobody claimed the slot: claim epoch 1.
    Claim {
        epoch: u64,
    },
    /// Its holder is alive (or not yet judged): look again at `retry_at_ms`
    /// (this node's clock), remembering `observed`.
    Wait {
        observed: Observation,
        retry_at_ms: i64,
    },
    /// Its holder stopped beating (or gave it up): claim the next epoch.
    TakeOver {
        epoch: u64,
    },
}

/// What to do about slot `slot_ms`, given the claims listed for it, the
/// slot the newest root records for the policy, what this node observed
/// of the holder before, and this node's clock.
///
/// List the claims *before* reading the root: a holder commits, then may
/// leave; listed in that order, a vanished claim's commit is always seen.
pub fn decide(
    slot_ms: i64,
    recorded: Option<SlotRecord>,
    claims: &[SeenClaim],
    seen_before: Option<&Observation>,
    now_ms: i64,
) -> Decision {
    if let Some(r) = recorded.filter(|r| r.slot_ms >= slot_ms) {
        return Decision::Done(Handled::Committed(r));
    }
    let Some(holder) = claims.iter().max_by_key(|c| c.epoch) else {
        return Decision::Claim { epoch: 1 };
    };
    let next = Decision::TakeOver {
        epoch: holder.epoch + 1,
    };
    match holder.body.as_ref().and_then(|b| b.released) {
        Some(Release::Failed) => {
            return Decision::Done(Handled::Failed {
                epoch: holder.epoch,
            })
        }
        Some(Release::Abandoned) => return next,
        None => {}
    }
    let beat = holder.body.as_ref().map(|b| b.beat);
    let observed = match seen_before {
        Some(o) if o.epoch == holder.epoch && o.beat == beat => *o,
        _ => Observation {
            epoch: holder.epoch,
            beat,
            since_ms: now_ms,
        },
    };
    let stale_at = observed.since_ms.saturating_add(TAKEOVER_AFTER_MS);
    if now_ms >= stale_at {
        return next;
    }
    Decision::Wait {
        observed,
        retry_at_ms: stale_at.min(now_ms + POLL_EVERY_MS),
    }
}

/// Whether a holder of `epoch` lost its claim: a newer epoch of the slot
/// exists, so another node took it over (the holder stops beating, and
/// may stop its snapshot; its commit would be refused anyway).
pub fn lost(epoch: u64, listed: &[ClaimKey]) -> bool {
    listed.iter().any(|k| k.epoch > epoch)
}

/// Claims no decision needs any more: those of slots older than the one
/// the root records for their policy. Claims of the recorded slot itself
/// stay until a newer slot commits (their holder may still be beating).
pub fn garbage(listed: &[ClaimKey], recorded: Option<SlotRecord>) -> Vec<&ClaimKey> {
    let Some(r) = recorded else { return vec![] };
    listed.iter().filter(|k| k.slot_ms < r.slot_ms).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const SLOT: i64 = 1_764_045_000_000;

    fn claim(epoch: u64, beat: u64) -> SeenClaim {
        SeenClaim {
            epoch,
            body: Some(ClaimBody {
                beat,
                ..ClaimBody::new("node-a/1")
            }),
        }
    }

    fn released(epoch: u64, how: Release) -> SeenClaim {
        let mut c = claim(epoch, 3);
        c.body.as_mut().unwrap().released = Some(how);
        c
    }

    #[test]
    fn keys_round_trip_and_only_canonical_ones_parse() {
        let k = claim_key("nightly", SLOT, 12);
        assert_eq!(k, format!("slm/claims/nightly/{SLOT}/12"));
        assert!(k.starts_with(&slot_prefix("nightly", SLOT)));
        assert!(k.starts_with(&policy_prefix("nightly")));
        assert_eq!(
            parse_claim_key(&k),
            Some(ClaimKey {
                policy: "nightly".into(),
                slot_ms: SLOT,
                epoch: 12,
            })
        );
        for bad in [
            "slm/claims/nightly/1/01",
            "slm/claims/nightly/-1/1",
            "slm/claims/nightly/1",
            "slm/claims/nightly/1/2/3",
            "slm/claims//1/2",
            "slm/claims/nightly/1/+2",
            "slm/claims/nightly/9223372036854775808/1",
            "slm/policies/nightly",
        ] {
            assert_eq!(parse_claim_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn claim_bodies_round_trip_and_hold_no_time() {
        let body = ClaimBody {
            beat: 7,
            ..ClaimBody::new("node-a/5f0c")
        };
        let json = String::from_utf8(body.encode()).unwrap();
        assert_eq!(json, r#"{"format":1,"holder":"node-a/5f0c","beat":7}"#);
        assert_eq!(ClaimBody::decode(json.as_bytes()), Some(body));
        let failed = r#"{"format":1,"holder":"x","beat":1,"released":"failed"}"#;
        let read = ClaimBody::decode(failed.as_bytes()).unwrap();
        assert_eq!(read.released, Some(Release::Failed));
        assert_eq!(
            ClaimBody::decode(br#"{"format":2,"holder":"x","beat":1}"#),
            None
        );
        assert_eq!(ClaimBody::decode(b"garbage"), None);
    }

    #[test]
    fn a_recorded_slot_or_a_newer_one_is_done_whatever_the_claims_say() {
        for recorded_ms in [SLOT, SLOT + 1] {
            let r = SlotRecord {
                slot_ms: recorded_ms,
                epoch: 2,
            };
            assert_eq!(
                decide(SLOT, Some(r), &[claim(5, 1)], None, 0),
                Decision::Done(Handled::Committed(r))
            );
        }
        let older = SlotRecord {
            slot_ms: SLOT - 1,
            epoch: 1,
        };
        assert_eq!(
            decide(SLOT, Some(older), &[], None, 0),
            Decision::Claim { epoch: 1 }
        );
    }

    #[test]
    fn a_live_holder_is_waited_for_and_a_silent_one_taken_over() {
        let t = 5_000_000;
        let first = decide(SLOT, None, &[claim(1, 4)], None, t);
        let Decision::Wait {
            observed,
            retry_at_ms,
        } = first
        else {
            panic!("{first:?}")
        };
        assert_eq!(observed.since_ms, t);
        assert_eq!(retry_at_ms, t + POLL_EVERY_MS);
        // The beat moved: the clock restarts.
        let later = t + TAKEOVER_AFTER_MS;
        let moved = decide(SLOT, None, &[claim(1, 5)], Some(&observed), later);
        assert!(
            matches!(moved, Decision::Wait { observed: o, .. } if o.since_ms == later && o.beat == Some(5))
        );
        // Unchanged for just under the timeout: still waiting, and told to
        // look again right at the timeout.
        let almost = decide(SLOT, None, &[claim(1, 4)], Some(&observed), later - 1);
        assert!(matches!(almost, Decision::Wait { retry_at_ms, .. } if retry_at_ms == later));
        // Unchanged for the timeout: taken over with the next epoch.
        assert_eq!(
            decide(SLOT, None, &[claim(1, 4)], Some(&observed), later),
            Decision::TakeOver { epoch: 2 }
        );
        // The newest epoch is the holder; a new holder restarts the clock.
        let after_takeover = decide(
            SLOT,
            None,
            &[claim(1, 4), claim(2, 0)],
            Some(&observed),
            later,
        );
        assert!(matches!(after_takeover, Decision::Wait { observed: o, .. } if o.epoch == 2));
    }

    #[test]
    fn staleness_is_judged_on_the_observers_clock_only() {
        // Claims hold no time, so nothing another node's clock says can
        // make a claim look stale; an observer whose clock is hours off
        // waits exactly the timeout from its own first sighting.
        for skew in [-3_600_000_i64, 0, 3_600_000] {
            let t = 10_000_000 + skew;
            let Decision::Wait { observed, .. } = decide(SLOT, None, &[claim(3, 9)], None, t)
            else {
                panic!()
            };
            let early = decide(
                SLOT,
                None,
                &[claim(3, 9)],
                Some(&observed),
                t + TAKEOVER_AFTER_MS - 1,
            );
            assert!(matches!(early, Decision::Wait { .. }), "{skew}");
            let due = decide(
                SLOT,
                None,
                &[claim(3, 9)],
                Some(&observed),
                t + TAKEOVER_AFTER_MS,
            );
            assert_eq!(due, Decision::TakeOver { epoch: 4 }, "{skew}");
        }
    }

    #[test]
    fn unreadable_claims_go_stale_by_epoch_alone() {
        let gone = SeenClaim {
            epoch: 2,
            body: None,
        };
        let Decision::Wait { observed, .. } =
            decide(SLOT, None, std::slice::from_ref(&gone), None, 0)
        else {
            panic!()
        };
        assert_eq!(observed.beat, None);
        assert_eq!(
            decide(SLOT, None, &[gone], Some(&observed), TAKEOVER_AFTER_MS),
            Decision::TakeOver { epoch: 3 }
        );
    }

    #[test]
    fn released_claims_end_the_slot_or_hand_it_over_at_once() {
        assert_eq!(
            decide(
                SLOT,
                None,
                &[claim(1, 1), released(2, Release::Failed)],
                None,
                0
            ),
            Decision::Done(Handled::Failed { epoch: 2 })
        );
        assert_eq!(
            decide(SLOT, None, &[released(1, Release::Abandoned)], None, 0),
            Decision::TakeOver { epoch: 2 }
        );
    }

    #[test]
    fn holders_learn_they_lost_and_old_claims_are_garbage() {
        let key = |slot_ms, epoch| ClaimKey {
            policy: "p".into(),
            slot_ms,
            epoch,
        };
        let listed = [key(SLOT, 1), key(SLOT, 2)];
        assert!(lost(1, &listed));
        assert!(!lost(2, &listed));
        let all = [
            key(SLOT - 2, 1),
            key(SLOT - 1, 3),
            key(SLOT, 1),
            key(SLOT + 1, 1),
        ];
        let r = SlotRecord {
            slot_ms: SLOT,
            epoch: 1,
        };
        let old: Vec<_> = garbage(&all, Some(r)).into_iter().cloned().collect();
        assert_eq!(old, vec![key(SLOT - 2, 1), key(SLOT - 1, 3)]);
        assert!(garbage(&all, None).is_empty());
    }
}
