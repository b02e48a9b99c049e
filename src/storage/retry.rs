//! Retries transient storage failures with exponential backoff. Permanent
//! failures (not found, denied, missing bucket, bad key) return at once.
//!
//! A retried create-only put may meet its own earlier attempt, which the
//! service applied before the connection failed; it then reports
//! `AlreadyExists`. Callers of create-only puts must tell their own write
//! from another writer's (content-addressed keys hold equal bytes anyway;
//! root commits re-read the root and look for their change).

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::{timeouts, ObjectMeta, PutMode, Storage, StorageError, StorageResult};

#[derive(Debug)]
pub struct RetryStore {
    inner: Arc<dyn Storage>,
    attempts: u32,
    base_delay: Duration,
    /// No attempt starts once this much time has passed since the first.
    deadline: Option<Duration>,
}

/// The longest pause between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(10);

impl RetryStore {
    pub fn new(inner: Arc<dyn Storage>) -> RetryStore {
        RetryStore {
            inner,
            attempts: 4,
            base_delay: Duration::from_millis(100),
            deadline: None,
        }
    }

    pub fn with_policy(inner: Arc<dyn Storage>, attempts: u32, base_delay: Duration) -> RetryStore {
        RetryStore {
            inner,
            attempts: attempts.max(1),
            base_delay,
            deadline: None,
        }
    }

    /// The usual policy, with no retry started after `deadline`
    /// (`retry_timeout` of [`super::timeouts`]).
    pub fn with_deadline(inner: Arc<dyn Storage>, deadline: Duration) -> RetryStore {
        RetryStore {
            deadline: Some(deadline),
            ..RetryStore::new(inner)
        }
    }

    async fn retry<T, F, Fut>(&self, mut op: F) -> StorageResult<T>
    where
        F: FnMut() -> Fut + Send,
        Fut: std::future::Future<Output = StorageResult<T>> + Send,
        T: Send,
    {
        let start = Instant::now();
        let tries = async {
            let mut delay = self.base_delay;
            let mut attempt = 1;
            loop {
                match op().await {
                    Err(e)
                        if e.is_retryable()
                            && attempt < self.attempts
                            && self.deadline.is_none_or(|d| start.elapsed() + delay < d) =>
                    {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(MAX_DELAY);
                        attempt += 1;
                    }
                    other => return (other, attempt),
                }
            }
        };
        let ((out, attempt), requests) = timeouts::counting_attempts(tries).await;
        match out {
            Err(StorageError::TimedOut { what, option, .. }) => Err(StorageError::TimedOut {
                what,
                option,
                attempts: requests.max(attempt),
                elapsed_ms: start.elapsed().as_millis() as u64,
            }),
            other => other,
        }
    }
}

#[async_trait]
impl Storage for RetryStore {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        self.retry(|| self.inner.get(key, range.clone())).await
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> StorageResult<()> {
        self.retry(|| self.inner.put(key, data.clone(), mode)).await
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        self.retry(|| self.inner.list(prefix)).await
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.retry(|| self.inner.delete(key)).await
    }

    async fn head(&self, key: &str) -> StorageResult<ObjectMeta> {
        self.retry(|| self.inner.head(key)).await
    }
}
