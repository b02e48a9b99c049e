//! `repo verify`: one object written, read back, listed and deleted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::probe_key;
use crate::native::clock::now_millis;
use crate::native::error::{Error, Result};
use crate::native::runtime::block_on;
use crate::storage::{PutMode, Storage};

/// Writes, reads back, lists and deletes a probe object.
pub fn verify(store: &Arc<dyn Storage>) -> Result<Duration> {
    let started = Instant::now();
    let key = probe_key("probe");
    let body = Bytes::from(format!("snapkeep verify {}", now_millis()));
    block_on(store.put(&key, body.clone(), PutMode::Create))?;
    let back = block_on(store.get(&key, None))?;
    let listed = block_on(store.list("verify/"))?
        .iter()
        .any(|m| m.key == key);
    block_on(store.delete(&key))?;
    let gone = block_on(store.head(&key))
        .err()
        .is_some_and(|e| e.is_not_found());
    if back != body || !listed || !gone {
        return Err(Error::ProbeMisbehaved {
            read_back: back == body,
            listed,
            deleted: gone,
        });
    }
    Ok(started.elapsed())
}
