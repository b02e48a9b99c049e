//! The leader's keeper of one followed index: its next checkpoint is
//! taken when its watch reports a change, not only when a follower's read
//! asks. A follower that was paused, disconnected or busy applying finds
//! the checkpoint of what changed meanwhile already taken, so its catch-up
//! is the fetch and the apply alone.
//!
//! The comparison and checkpoint are the reads' own (`leader::keep_up`):
//! they share one lock and one record of the last comparison, so an event
//! is compared once whichever of a read and the keeper comes first. A
//! keeper runs while the index has a live lease (a follower that read it
//! within the lease period, paused or not) and its watch works; without a
//! watch the reads' periodic rescan is all there is, as before. After a
//! checkpoint that took `t`, the next waits at least `t`, so an index
//! written without pause costs its leader at most about half a core.

use std::time::{Duration, Instant};

use crate::node::ccr::leader;
use crate::node::ccr::watch::changed_within;
use crate::node::server::Shared;

/// The longest a keeper waits for an event before it looks whether its
/// index is still followed.
const IDLE: Duration = Duration::from_secs(60);
/// The wait after a failed checkpoint.
const RETRY: Duration = Duration::from_secs(5);

/// Starts the keeper of `index` unless one runs.
pub fn keep(node: &Shared, index: &str) {
    if !node.ccr.leaders.start_keeper(index) {
        return;
    }
    let (node, index) = (node.clone(), index.to_string());
    tokio::spawn(async move {
        run(&node, &index).await;
        node.ccr.leaders.keeper_stopped(&index);
    });
}

/// Starts the keepers of the indices the node leads with a live lease
/// (at start-up: their followers may be away, their index not).
pub async fn keep_all(node: &Shared) {
    for index in leader::followed_indices(node).await {
        keep(node, &index);
    }
}

async fn run(node: &Shared, index: &str) {
    let data = node.settings.data.clone();
    let Some(mut events) = node.ccr.leaders.watches.subscribe(&data, index) else {
        return;
    };
    loop {
        let woken = changed_within(Some(&mut events), IDLE).await;
        if !leader::is_followed(node, index).await {
            return;
        }
        if !woken {
            continue;
        }
        // Subscribed again before the comparison (which also watches a
        // folder that was replaced anew): a change made during it wakes
        // the next wait at once.
        let Some(fresh) = node.ccr.leaders.watches.subscribe(&data, index) else {
            return;
        };
        events = fresh;
        let count = *events.borrow();
        let started = Instant::now();
        let pause = match leader::keep_up(node, index, count).await {
            Ok(()) => started.elapsed(),
            Err(e) => {
                eprintln!("snapkeep node: checkpoint of [{index}]: {e}");
                RETRY
            }
        };
        tokio::time::sleep(pause).await;
    }
}
