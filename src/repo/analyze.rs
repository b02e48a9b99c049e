//! `repo analyze`: probes the storage semantics snapkeep relies on
//! (read-after-write, list-after-write, exact ranges, create-only
//! conflicts, large uploads, deletes), each with its time.

use std::future::Future;

use bytes::Bytes;
use serde::Serialize;

use crate::repo::clock::Clock;
use crate::repo::verify::{elapsed, probe_key};
use crate::repo::RepoReader;
use crate::storage::{PutMode, Storage, StorageError};

#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub name: &'static str,
    pub ok: bool,
    pub millis: u64,
    pub detail: String,
}

/// What one probe found: what held, or what did not.
type Outcome = std::result::Result<String, String>;

/// Tests the storage semantics snapkeep relies on, timing each probe by
/// `clock`. Every probe writes under `verify/` with keys named by
/// `run_id`, which must be fresh for each run, and deletes what it wrote.
pub async fn analyze(reader: &RepoReader, clock: &dyn Clock, run_id: &str) -> Vec<Probe> {
    let store = reader.store.as_ref();
    vec![
        timed(clock, "read-after-write", read_after_write(store, run_id)).await,
        timed(clock, "list-after-write", list_after_write(store, run_id)).await,
        timed(clock, "range-reads", range_reads(store, run_id)).await,
        timed(clock, "create-only-conflicts", create_only(store, run_id)).await,
        timed(clock, "large-upload", large_upload(store, run_id)).await,
        timed(clock, "delete", delete(store, run_id)).await,
    ]
}

async fn timed(
    clock: &dyn Clock,
    name: &'static str,
    probe: impl Future<Output = Outcome>,
) -> Probe {
    let started = clock.now_ms();
    let r = probe.await;
    Probe {
        name,
        ok: r.is_ok(),
        millis: elapsed(clock, started).as_millis() as u64,
        detail: r.unwrap_or_else(|e| e),
    }
}

fn s(e: StorageError) -> String {
    e.to_string()
}

/// `n` bytes of a pattern that differs by `seed`.
fn body(n: usize, seed: u8) -> Bytes {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

async fn read_after_write(store: &dyn Storage, run_id: &str) -> Outcome {
    let key = probe_key("raw", run_id);
    let data = body(1 << 20, 1);
    store
        .put(&key, data.clone(), PutMode::Overwrite)
        .await
        .map_err(s)?;
    let back = store.get(&key, None).await.map_err(s)?;
    let size = store.head(&key).await.map_err(s)?.size;
    let _ = store.delete(&key).await;
    if back == data && size == data.len() as u64 {
        Ok("1 MiB written and read back".into())
    } else {
        Err("read back different bytes".into())
    }
}

async fn list_after_write(store: &dyn Storage, run_id: &str) -> Outcome {
    let dir = probe_key("list", run_id);
    let keys: Vec<String> = (0..5).map(|i| format!("{dir}/{i}")).collect();
    for k in &keys {
        store
            .put(k, body(10, 2), PutMode::Overwrite)
            .await
            .map_err(s)?;
    }
    let listed = store.list(&format!("{dir}/")).await.map_err(s)?.len();
    for k in &keys {
        let _ = store.delete(k).await;
    }
    if listed == keys.len() {
        Ok("5 new objects listed at once".into())
    } else {
        Err(format!("listed {listed} of {}", keys.len()))
    }
}

async fn range_reads(store: &dyn Storage, run_id: &str) -> Outcome {
    let key = probe_key("range", run_id);
    let data = body(100_000, 3);
    store
        .put(&key, data.clone(), PutMode::Overwrite)
        .await
        .map_err(s)?;
    let checks = [
        (0u64, 1u64),
        (500, 600),
        (99_990, 100_000),
        (99_990, 200_000),
    ];
    let mut bad = Vec::new();
    for (a, b) in checks {
        let got = store.get(&key, Some(a..b)).await.map_err(s)?;
        if got != data.slice(a as usize..(b as usize).min(data.len())) {
            bad.push(format!("{a}..{b}"));
        }
    }
    let _ = store.delete(&key).await;
    if bad.is_empty() {
        Ok("exact bytes for 4 ranges".into())
    } else {
        Err(format!("wrong bytes for {}", bad.join(", ")))
    }
}

/// Two creators of one key at once, five times: exactly one must win.
/// Both requests are in flight together (joined, not spawned, so this runs
/// on any executor).
async fn create_only(store: &dyn Storage, run_id: &str) -> Outcome {
    let mut failures = Vec::new();
    for round in 0..5 {
        let key = probe_key("cas", &format!("{run_id}-{round}"));
        let (a, b) = futures::future::join(
            store.put(&key, Bytes::from(vec![0u8; 1024]), PutMode::Create),
            store.put(&key, Bytes::from(vec![1u8; 1024]), PutMode::Create),
        )
        .await;
        let results = [a, b];
        let wins = results.iter().filter(|r| r.is_ok()).count();
        let conflicts = results
            .iter()
            .filter(|r| matches!(r, Err(StorageError::AlreadyExists { .. })))
            .count();
        if wins != 1 || conflicts != 1 {
            failures.push(format!(
                "round {round}: {wins} winners, {conflicts} conflicts"
            ));
        }
        let _ = store.delete(&key).await;
    }
    if failures.is_empty() {
        Ok("two concurrent creators: exactly one wins, 5 of 5 rounds".into())
    } else {
        Err(failures.join("; "))
    }
}

async fn large_upload(store: &dyn Storage, run_id: &str) -> Outcome {
    let key = probe_key("large", run_id);
    let data = body(24 << 20, 4);
    store
        .put(&key, data.clone(), PutMode::Overwrite)
        .await
        .map_err(s)?;
    let back = store.get(&key, None).await.map_err(s)?;
    let _ = store.delete(&key).await;
    if back == data {
        Ok("24 MiB (multipart where the service supports it) read back".into())
    } else {
        Err("read back different bytes".into())
    }
}

async fn delete(store: &dyn Storage, run_id: &str) -> Outcome {
    let key = probe_key("del", run_id);
    store
        .put(&key, body(10, 5), PutMode::Overwrite)
        .await
        .map_err(s)?;
    store.delete(&key).await.map_err(s)?;
    match store.head(&key).await {
        Err(e) if e.is_not_found() => Ok("deleted objects are gone".into()),
        Ok(_) => Err("object still there after delete".into()),
        Err(e) => Err(e.to_string()),
    }
}
