//! `repo analyze`: probes the storage semantics snapkeep relies on
//! (read-after-write, list-after-write, exact ranges, create-only
//! conflicts, large uploads, deletes), each with its time.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;

use super::probe_key;
use crate::native::runtime::block_on;
use crate::storage::{PutMode, Storage, StorageError};

#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub name: &'static str,
    pub ok: bool,
    pub millis: u64,
    pub detail: String,
}

/// Tests the storage semantics snapkeep relies on.
pub fn analyze(store: &Arc<dyn Storage>) -> Vec<Probe> {
    let mut out = Vec::new();
    let mut run = |name: &'static str, f: &dyn Fn() -> std::result::Result<String, String>| {
        let t = Instant::now();
        let r = f();
        out.push(Probe {
            name,
            ok: r.is_ok(),
            millis: t.elapsed().as_millis() as u64,
            detail: r.unwrap_or_else(|e| e),
        });
    };
    let s = |e: StorageError| e.to_string();
    let body = |n: usize, seed: u8| {
        Bytes::from(
            (0..n)
                .map(|i| (i as u8).wrapping_mul(31) ^ seed)
                .collect::<Vec<u8>>(),
        )
    };

    run("read-after-write", &|| {
        let key = probe_key("raw");
        let data = body(1 << 20, 1);
        block_on(store.put(&key, data.clone(), PutMode::Overwrite)).map_err(s)?;
        let back = block_on(store.get(&key, None)).map_err(s)?;
        let size = block_on(store.head(&key)).map_err(s)?.size;
        let _ = block_on(store.delete(&key));
        if back == data && size == data.len() as u64 {
            Ok("1 MiB written and read back".into())
        } else {
            Err("read back different bytes".into())
        }
    });
    run("list-after-write", &|| {
        let dir = probe_key("list");
        let keys: Vec<String> = (0..5).map(|i| format!("{dir}/{i}")).collect();
        for k in &keys {
            block_on(store.put(k, body(10, 2), PutMode::Overwrite)).map_err(s)?;
        }
        let listed = block_on(store.list(&format!("{dir}/"))).map_err(s)?.len();
        for k in &keys {
            let _ = block_on(store.delete(k));
        }
        if listed == keys.len() {
            Ok("5 new objects listed at once".into())
        } else {
            Err(format!("listed {listed} of {}", keys.len()))
        }
    });
    run("range-reads", &|| {
        let key = probe_key("range");
        let data = body(100_000, 3);
        block_on(store.put(&key, data.clone(), PutMode::Overwrite)).map_err(s)?;
        let checks = [
            (0u64, 1u64),
            (500, 600),
            (99_990, 100_000),
            (99_990, 200_000),
        ];
        let mut bad = Vec::new();
        for (a, b) in checks {
            let got = block_on(store.get(&key, Some(a..b))).map_err(s)?;
            if got != data.slice(a as usize..(b as usize).min(data.len())) {
                bad.push(format!("{a}..{b}"));
            }
        }
        let _ = block_on(store.delete(&key));
        if bad.is_empty() {
            Ok("exact bytes for 4 ranges".into())
        } else {
            Err(format!("wrong bytes for {}", bad.join(", ")))
        }
    });
    run("create-only-conflicts", &|| {
        let mut failures = Vec::new();
        for round in 0..5 {
            let key = probe_key("cas");
            let results: Vec<_> = block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for i in 0..2u8 {
                    let (store, key) = (store.clone(), key.clone());
                    set.spawn(async move {
                        store
                            .put(&key, Bytes::from(vec![i; 1024]), PutMode::Create)
                            .await
                    });
                }
                set.join_all().await
            });
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
            let _ = block_on(store.delete(&key));
        }
        if failures.is_empty() {
            Ok("two concurrent creators: exactly one wins, 5 of 5 rounds".into())
        } else {
            Err(failures.join("; "))
        }
    });
    run("large-upload", &|| {
        let key = probe_key("large");
        let data = body(24 << 20, 4);
        block_on(store.put(&key, data.clone(), PutMode::Overwrite)).map_err(s)?;
        let back = block_on(store.get(&key, None)).map_err(s)?;
        let _ = block_on(store.delete(&key));
        if back == data {
            Ok("24 MiB (multipart where the service supports it) read back".into())
        } else {
            Err("read back different bytes".into())
        }
    });
    run("delete", &|| {
        let key = probe_key("del");
        block_on(store.put(&key, body(10, 5), PutMode::Overwrite)).map_err(s)?;
        block_on(store.delete(&key)).map_err(s)?;
        match block_on(store.head(&key)) {
            Err(e) if e.is_not_found() => Ok("deleted objects are gone".into()),
            Ok(_) => Err("object still there after delete".into()),
            Err(e) => Err(e.to_string()),
        }
    });
    out
}
