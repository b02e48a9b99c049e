//! Counts the requests an operation makes and the bytes it moves, so every
//! command can report its cost in requests (what object storage bills).

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;

use super::{Capabilities, ObjectMeta, PutMode, Storage, StorageResult};

#[derive(Debug, Default)]
pub struct RequestCounter {
    gets: AtomicU64,
    puts: AtomicU64,
    lists: AtomicU64,
    deletes: AtomicU64,
    heads: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    pub gets: u64,
    pub puts: u64,
    pub lists: u64,
    pub deletes: u64,
    pub heads: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl RequestStats {
    pub fn total(&self) -> u64 {
        self.gets + self.puts + self.lists + self.deletes + self.heads
    }
}

impl RequestCounter {
    pub fn stats(&self) -> RequestStats {
        RequestStats {
            gets: self.gets.load(Relaxed),
            puts: self.puts.load(Relaxed),
            lists: self.lists.load(Relaxed),
            deletes: self.deletes.load(Relaxed),
            heads: self.heads.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
        }
    }
}

#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn Storage>,
    counter: Arc<RequestCounter>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn Storage>, counter: Arc<RequestCounter>) -> CountingStore {
        CountingStore { inner, counter }
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl Storage for CountingStore {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        self.counter.gets.fetch_add(1, Relaxed);
        let b = self.inner.get(key, range).await?;
        self.counter
            .bytes_received
            .fetch_add(b.len() as u64, Relaxed);
        Ok(b)
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> StorageResult<()> {
        self.counter.puts.fetch_add(1, Relaxed);
        self.counter
            .bytes_sent
            .fetch_add(data.len() as u64, Relaxed);
        self.inner.put(key, data, mode).await
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        self.counter.lists.fetch_add(1, Relaxed);
        self.inner.list(prefix).await
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.counter.deletes.fetch_add(1, Relaxed);
        self.inner.delete(key).await
    }

    async fn head(&self, key: &str) -> StorageResult<ObjectMeta> {
        self.counter.heads.fetch_add(1, Relaxed);
        self.inner.head(key).await
    }

    // Not counted: only local folders have leftovers, and no one bills
    // for reading a folder.

    async fn leftovers(&self, older_than_ms: i64) -> StorageResult<Vec<ObjectMeta>> {
        self.inner.leftovers(older_than_ms).await
    }

    async fn remove_leftover(&self, key: &str) -> StorageResult<()> {
        self.inner.remove_leftover(key).await
    }
}
