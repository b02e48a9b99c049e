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

use super::{timeouts, Capabilities, ObjectMeta, PutMode, Storage, StorageError, StorageResult};

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

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
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

    async fn leftovers(&self, older_than_ms: i64) -> StorageResult<Vec<ObjectMeta>> {
        self.retry(|| self.inner.leftovers(older_than_ms)).await
    }

    async fn remove_leftover(&self, key: &str) -> StorageResult<()> {
        self.retry(|| self.inner.remove_leftover(key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::faulty::{Fault, FaultyStore, Op, When};
    use crate::storage::memory::MemoryStore;

    fn timing_out() -> Arc<dyn Storage> {
        Arc::new(FaultyStore::new(
            Arc::new(MemoryStore::new()),
            vec![Fault {
                op: Op::Get,
                key_prefix: String::new(),
                skip: 0,
                times: 1000,
                when: When::Before,
                error: StorageError::TimedOut {
                    what: "edge repository http://h/api/repos/x: no response to GET objects/k within 2 s"
                        .into(),
                    option: "first_byte_timeout",
                    attempts: 1,
                    elapsed_ms: 0,
                },
            }],
        ))
    }

    #[tokio::test]
    async fn no_retry_starts_after_the_deadline_and_the_message_counts_the_attempts() {
        // Delays of 100 and 200 ms: the second retry would start after 250 ms.
        let store = RetryStore::with_deadline(timing_out(), Duration::from_millis(250));
        let started = Instant::now();
        let err = store.get("k", None).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(250));
        assert!(
            matches!(err, StorageError::TimedOut { attempts: 2, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "edge repository http://h/api/repos/x: no response to GET objects/k within 2 s \
             (2 attempts over 0 s); raise with --storage-option first_byte_timeout=..."
        );
        // Without a deadline, the usual number of attempts.
        let err = RetryStore::new(timing_out())
            .get("k", None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StorageError::TimedOut { attempts: 4, .. }),
            "{err:?}"
        );
    }
}
