//! `repo verify`: one object written, read back, listed and deleted.

use std::time::Duration;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::repo::clock::Clock;
use crate::repo::RepoReader;
use crate::storage::PutMode;

/// The key of a storage probe: under `verify/`, which cleanup never
/// touches, named by the probing run's fresh id (`run_id`) so concurrent
/// runs do not collide.
pub fn probe_key(tag: &str, run_id: &str) -> String {
    format!("verify/{tag}-{run_id}")
}

/// Writes, reads back, lists and deletes a probe object; returns how long
/// that took by `clock`. `run_id` must be fresh for each run.
pub async fn verify(reader: &RepoReader, clock: &dyn Clock, run_id: &str) -> Result<Duration> {
    let store = reader.store.as_ref();
    let started = clock.now_ms();
    let key = probe_key("probe", run_id);
    let body = Bytes::from(format!("snapkeep verify {started}"));
    store.put(&key, body.clone(), PutMode::Create).await?;
    let back = store.get(&key, None).await?;
    let listed = store.list("verify/").await?.iter().any(|m| m.key == key);
    store.delete(&key).await?;
    let gone = store
        .head(&key)
        .await
        .err()
        .is_some_and(|e| e.is_not_found());
    if back != body || !listed || !gone {
        return Err(Error::ProbeMisbehaved {
            read_back: back == body,
            listed,
            deleted: gone,
        });
    }
    Ok(elapsed(clock, started))
}

/// Time since `started_ms` by `clock`; zero if the clock stepped back.
pub(crate) fn elapsed(clock: &dyn Clock, started_ms: i64) -> Duration {
    Duration::from_millis(clock.now_ms().saturating_sub(started_ms).max(0) as u64)
}
