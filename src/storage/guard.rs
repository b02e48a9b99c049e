//! Wrappers that enforce repository settings: read-only mode and transfer
//! rate limits.

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::{Capabilities, ObjectMeta, PutMode, Storage, StorageError, StorageResult};

/// Refuses every write: the repository's `readonly` setting.
#[derive(Debug)]
pub struct ReadOnlyStore {
    inner: Arc<dyn Storage>,
}

impl ReadOnlyStore {
    pub fn new(inner: Arc<dyn Storage>) -> ReadOnlyStore {
        ReadOnlyStore { inner }
    }

    fn refuse(&self) -> StorageError {
        StorageError::ReadOnly {
            location: self.inner.location(),
        }
    }
}

#[async_trait]
impl Storage for ReadOnlyStore {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        self.inner.get(key, range).await
    }
    async fn put(&self, _key: &str, _data: Bytes, _mode: PutMode) -> StorageResult<()> {
        Err(self.refuse())
    }
    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, _key: &str) -> StorageResult<()> {
        Err(self.refuse())
    }
    async fn head(&self, key: &str) -> StorageResult<ObjectMeta> {
        self.inner.head(key).await
    }
    async fn leftovers(&self, older_than_ms: i64) -> StorageResult<Vec<ObjectMeta>> {
        self.inner.leftovers(older_than_ms).await
    }
    async fn remove_leftover(&self, _key: &str) -> StorageResult<()> {
        Err(self.refuse())
    }
}

/// A shared budget of bytes per second. Each transfer reserves the time its
/// bytes take at the limit, back to back, so the achieved rate over a run
/// converges on the limit however the bytes are split into requests.
#[derive(Debug)]
pub struct Limiter {
    bytes_per_sec: u64,
    next_free: Mutex<Option<Instant>>,
}

impl Limiter {
    pub fn new(bytes_per_sec: u64) -> Limiter {
        Limiter {
            bytes_per_sec: bytes_per_sec.max(1),
            next_free: Mutex::new(None),
        }
    }

    /// Waits until `n` more bytes fit the budget.
    pub async fn take(&self, n: u64) {
        let cost = Duration::from_secs_f64(n as f64 / self.bytes_per_sec as f64);
        let until = {
            let mut next = self.next_free.lock().unwrap();
            let now = Instant::now();
            let start = next.filter(|t| *t > now).unwrap_or(now);
            let end = start + cost;
            *next = Some(end);
            end
        };
        tokio::time::sleep_until(until.into()).await;
    }
}

/// Limits upload (puts) and download (gets) rates.
#[derive(Debug)]
pub struct ThrottledStore {
    inner: Arc<dyn Storage>,
    uploads: Option<Arc<Limiter>>,
    downloads: Option<Arc<Limiter>>,
}

impl ThrottledStore {
    pub fn new(
        inner: Arc<dyn Storage>,
        upload_bytes_per_sec: Option<u64>,
        download_bytes_per_sec: Option<u64>,
    ) -> ThrottledStore {
        Self::sharing(
            inner,
            upload_bytes_per_sec.map(|n| Arc::new(Limiter::new(n))),
            download_bytes_per_sec.map(|n| Arc::new(Limiter::new(n))),
        )
    }

    /// A store whose transfers count against budgets that others share
    /// too (a follower's chunk deltas, which come another way, say).
    pub fn sharing(
        inner: Arc<dyn Storage>,
        uploads: Option<Arc<Limiter>>,
        downloads: Option<Arc<Limiter>>,
    ) -> ThrottledStore {
        ThrottledStore {
            inner,
            uploads,
            downloads,
        }
    }
}

#[async_trait]
impl Storage for ThrottledStore {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        let b = self.inner.get(key, range).await?;
        if let Some(l) = &self.downloads {
            l.take(b.len() as u64).await;
        }
        Ok(b)
    }
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> StorageResult<()> {
        if let Some(l) = &self.uploads {
            l.take(data.len() as u64).await;
        }
        self.inner.put(key, data, mode).await
    }
    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.inner.delete(key).await
    }
    async fn head(&self, key: &str) -> StorageResult<ObjectMeta> {
        self.inner.head(key).await
    }
    async fn leftovers(&self, older_than_ms: i64) -> StorageResult<Vec<ObjectMeta>> {
        self.inner.leftovers(older_than_ms).await
    }
    async fn remove_leftover(&self, key: &str) -> StorageResult<()> {
        self.inner.remove_leftover(key).await
    }
}
