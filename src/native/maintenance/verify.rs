//! `repo verify`: one object written, read back, listed and deleted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::probe_key;
use crate::native::clock::now_millis;
use crate::native::error::Result;
use crate::native::runtime::block_on;
use crate::repo::probe::probe;
use crate::storage::Storage;

/// Writes, reads back, lists and deletes a probe object.
pub fn verify(store: &Arc<dyn Storage>) -> Result<Duration> {
    let started = Instant::now();
    let key = probe_key("probe");
    let body = Bytes::from(format!("snapkeep verify {}", now_millis()));
    block_on(probe(store.as_ref(), &key, body))?;
    Ok(started.elapsed())
}
