//! Claiming a lifecycle policy's slot in the repository, so that of the
//! nodes holding one policy one runs each slot (the rules are in
//! `core::slm::claims`). A scheduler calls, per due slot:
//!
//! ```text
//! match claimer.claim_slot(policy, slot_ms, sleep).await? {
//!     Turn::Done(_) => {}                       // handled elsewhere
//!     Turn::Mine(claim) => {
//!         // SnapshotOptions { slot: Some(claim.fence()), .. }
//!         let out = with_claim(&claim, sleep, run_snapshot).await;
//!         claim.finish(&out).await;            // failed runs are released
//!     }
//! }
//! ```
//!
//! The claim only keeps the others from doing the work twice; the fence
//! the snapshot's commit carries is what makes the slot commit once.
//! Nothing here spawns or blocks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::{self, Either};

use crate::core::format::root::{SlotFence, SlotRecord};
use crate::core::slm::claims::{
    self, claim_key, decide, garbage, parse_claim_key, policy_prefix, slot_prefix, ClaimBody,
    ClaimKey, Decision, Handled, Observation, Release, SeenClaim, BEAT_EVERY_MS,
};
use crate::error::{Error, Result};
use crate::repo::clock::{Clock, Sleep};
use crate::repo::RepoReader;
use crate::storage::{PutMode, Storage, StorageError};

/// What a scheduler does with a slot.
#[derive(Debug)]
pub enum Turn {
    /// Nothing: the slot committed (or a newer one did), or its run failed.
    Done(Handled),
    /// This node holds the slot: run it with [`SlotClaim::fence`].
    Mine(SlotClaim),
}

/// One look at a slot: [`Turn`], or look again at `at_ms` (own clock).
#[derive(Debug)]
pub enum Attempt {
    Turn(Turn),
    Wait { at_ms: i64 },
}

/// Claims slots of one repository for one node process.
#[derive(Debug, Clone)]
pub struct SlotClaimer {
    reader: RepoReader,
    clock: Arc<dyn Clock>,
    holder: String,
}

impl SlotClaimer {
    /// `holder` must be unique to this process (a node name and a fresh
    /// uuid): a restarted node is another holder, so the claims of the
    /// process it replaces are taken over like any other's, and a claim
    /// put whose answer was lost is recognised as its own. `clock` only
    /// measures how long a beat stays unchanged here: no other node's
    /// time is ever compared with it.
    pub fn new(reader: RepoReader, clock: Arc<dyn Clock>, holder: &str) -> SlotClaimer {
        SlotClaimer {
            reader,
            clock,
            holder: holder.to_string(),
        }
    }

    fn store(&self) -> &Arc<dyn Storage> {
        &self.reader.store
    }

    /// Looks at the slot until it is handled or this node holds it,
    /// [`claims::POLL_EVERY_MS`] apart while another node's claim beats
    /// (as long as that node's snapshot runs).
    pub async fn claim_slot(&self, policy: &str, slot_ms: i64, sleep: &dyn Sleep) -> Result<Turn> {
        let mut watching = None;
        loop {
            match self.try_claim(policy, slot_ms, &mut watching).await? {
                Attempt::Turn(turn) => return Ok(turn),
                Attempt::Wait { at_ms } => {
                    let wait = (at_ms - self.clock.now_ms()).max(1) as u64;
                    sleep.sleep(Duration::from_millis(wait)).await;
                }
            }
        }
    }

    /// One look at the slot. `watching` carries what this node saw of the
    /// holder from one look to the next (start with `None`).
    pub async fn try_claim(
        &self,
        policy: &str,
        slot_ms: i64,
        watching: &mut Option<Observation>,
    ) -> Result<Attempt> {
        // Claims first, then the root: a holder commits before it leaves.
        let holder = self.newest_claim(policy, slot_ms).await?;
        let recorded = self.recorded(policy).await?;
        let now = self.clock.now_ms();
        let seen: Vec<SeenClaim> = holder.into_iter().collect();
        let epoch = match decide(slot_ms, recorded, &seen, watching.as_ref(), now) {
            Decision::Done(handled) => {
                // Best effort: the next look removes what this one leaves.
                let _ = self.cleanup(policy).await;
                return Ok(Attempt::Turn(Turn::Done(handled)));
            }
            Decision::Wait {
                observed,
                retry_at_ms,
            } => {
                *watching = Some(observed);
                return Ok(Attempt::Wait { at_ms: retry_at_ms });
            }
            Decision::Claim { epoch } | Decision::TakeOver { epoch } => epoch,
        };
        match self.put_claim(policy, slot_ms, epoch).await? {
            Some(claim) => {
                // A node that claims every slot never sees one done: it
                // removes the superseded claims here.
                let _ = self.cleanup(policy).await;
                Ok(Attempt::Turn(Turn::Mine(claim)))
            }
            // Another node won this epoch: look again at once.
            None => Ok(Attempt::Wait { at_ms: now }),
        }
    }

    /// The slot the newest root records for `policy`.
    async fn recorded(&self, policy: &str) -> Result<Option<SlotRecord>> {
        let root = self.reader.root_shared().await?;
        Ok(root.slm_slots.get(policy).copied())
    }

    /// The slot's claim of the highest epoch, read.
    async fn newest_claim(&self, policy: &str, slot_ms: i64) -> Result<Option<SeenClaim>> {
        let listed = self.store().list(&slot_prefix(policy, slot_ms)).await?;
        let Some(epoch) = listed
            .iter()
            .filter_map(|m| parse_claim_key(&m.key))
            .filter(|k| k.policy == policy && k.slot_ms == slot_ms)
            .map(|k| k.epoch)
            .max()
        else {
            return Ok(None);
        };
        let body = match self
            .store()
            .get(&claim_key(policy, slot_ms, epoch), None)
            .await
        {
            Ok(bytes) => ClaimBody::decode(&bytes),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Some(SeenClaim { epoch, body }))
    }

    /// Creates the claim; `None` if another node created it first.
    async fn put_claim(&self, policy: &str, slot_ms: i64, epoch: u64) -> Result<Option<SlotClaim>> {
        let key = claim_key(policy, slot_ms, epoch);
        let body = ClaimBody::new(&self.holder);
        let put = self
            .store()
            .put(&key, Bytes::from(body.encode()), PutMode::Create)
            .await;
        match put {
            Ok(()) => {}
            // A retried put may have met its own first attempt.
            Err(StorageError::AlreadyExists { .. }) if self.holds(&key).await => {}
            Err(StorageError::AlreadyExists { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        Ok(Some(SlotClaim {
            store: self.store().clone(),
            key: ClaimKey {
                policy: policy.to_string(),
                slot_ms,
                epoch,
            },
            body: Mutex::new(body),
            lost: AtomicBool::new(false),
        }))
    }

    async fn holds(&self, key: &str) -> bool {
        match self.store().get(key, None).await {
            Ok(bytes) => ClaimBody::decode(&bytes).is_some_and(|b| b.holder == self.holder),
            Err(_) => false,
        }
    }

    /// Deletes the claims of `policy` older than the slot the newest root
    /// records (no decision needs them); returns how many. Listed before
    /// the root is read, so only claims already superseded go.
    pub async fn cleanup(&self, policy: &str) -> Result<usize> {
        let listed: Vec<ClaimKey> = self
            .store()
            .list(&policy_prefix(policy))
            .await?
            .iter()
            .filter_map(|m| parse_claim_key(&m.key))
            .filter(|k| k.policy == policy)
            .collect();
        let recorded = self.recorded(policy).await?;
        let old = garbage(&listed, recorded);
        for k in &old {
            self.store()
                .delete(&claim_key(&k.policy, k.slot_ms, k.epoch))
                .await?;
        }
        Ok(old.len())
    }
}

/// A slot this node holds.
#[derive(Debug)]
pub struct SlotClaim {
    store: Arc<dyn Storage>,
    key: ClaimKey,
    body: Mutex<ClaimBody>,
    lost: AtomicBool,
}

impl SlotClaim {
    /// What the snapshot of this slot carries to its commit
    /// (`SnapshotOptions::slot`).
    pub fn fence(&self) -> SlotFence {
        SlotFence {
            policy: self.key.policy.clone(),
            slot_ms: self.key.slot_ms,
            epoch: self.key.epoch,
        }
    }

    pub fn epoch(&self) -> u64 {
        self.key.epoch
    }

    /// Another node took the slot over (this one was paused or cut off past
    /// the takeover timeout). The snapshot may be stopped: its commit would
    /// be refused if the other run commits first, and the other run's would
    /// be if this one does.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    fn key(&self) -> String {
        claim_key(&self.key.policy, self.key.slot_ms, self.key.epoch)
    }

    /// Rewrites the claim with the next beat, unless a newer epoch exists
    /// (then the claim is lost, and left alone). A failed write is retried
    /// at the next beat: a claim unrefreshed for the takeover timeout is
    /// taken over, which costs work, never a second commit.
    pub async fn beat(&self) {
        if self.is_lost() || self.check_lost().await {
            return;
        }
        let body = {
            let mut b = self.body.lock().unwrap();
            b.beat += 1;
            b.clone()
        };
        let _ = self.write(&body).await;
    }

    async fn check_lost(&self) -> bool {
        let prefix = slot_prefix(&self.key.policy, self.key.slot_ms);
        let Ok(listed) = self.store.list(&prefix).await else {
            return false;
        };
        let keys: Vec<ClaimKey> = listed
            .iter()
            .filter_map(|m| parse_claim_key(&m.key))
            .collect();
        let lost = claims::lost(self.key.epoch, &keys);
        if lost {
            self.lost.store(true, Ordering::Relaxed);
        }
        lost
    }

    async fn write(&self, body: &ClaimBody) -> Result<()> {
        self.store
            .put(&self.key(), Bytes::from(body.encode()), PutMode::Overwrite)
            .await
            .map_err(Error::from)
    }

    /// Beats every [`BEAT_EVERY_MS`] until `stop` fires (or its sender is
    /// dropped); returns only then.
    pub async fn heartbeat(&self, sleep: &dyn Sleep, mut stop: oneshot::Receiver<()>) {
        let every = Duration::from_millis(BEAT_EVERY_MS as u64);
        loop {
            match future::select(&mut stop, sleep.sleep(every)).await {
                Either::Left(_) => return,
                Either::Right(_) => self.beat().await,
            }
        }
    }

    /// Lets the slot go unfinished: `Failed` (it ran and failed: nobody
    /// runs it again) or `Abandoned` (taken over at once). A lost claim is
    /// left alone: the newer epoch decides.
    pub async fn release(&self, how: Release) -> Result<()> {
        if self.is_lost() || self.check_lost().await {
            return Ok(());
        }
        let body = {
            let mut b = self.body.lock().unwrap();
            b.released = Some(how);
            b.clone()
        };
        self.write(&body).await
    }

    /// After the slot's run: a commit (this one, or another's that refused
    /// it) needs nothing, the root records the slot; any other failure
    /// releases the slot as failed. Best effort: an unreleased claim is
    /// taken over after the timeout, and the next run meets the fence.
    pub async fn finish<T>(&self, outcome: &Result<T>) {
        match outcome {
            Ok(_) | Err(Error::SlotTaken { .. }) => {}
            Err(_) => {
                let _ = self.release(Release::Failed).await;
            }
        }
    }
}

/// Runs `work` while `claim` beats beside it (in the same task: nothing is
/// spawned). The claim is not released: see [`SlotClaim::finish`].
pub async fn with_claim<T>(
    claim: &SlotClaim,
    sleep: &dyn Sleep,
    work: impl std::future::Future<Output = T>,
) -> T {
    let (stop, stopped) = oneshot::channel::<()>();
    let work = async move {
        let out = work.await;
        drop(stop);
        out
    };
    let (out, ()) = future::join(work, claim.heartbeat(sleep, stopped)).await;
    out
}
