//! Fault injection for tests: makes chosen requests fail, before or after
//! they take effect, to prove that no failure leaves a repository invalid.
//! It counts the faults it fired, so a test can tell that each one did.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use super::{Capabilities, ObjectMeta, PutMode, Storage, StorageError, StorageResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Put,
    List,
    Delete,
    Head,
}

/// Whether a failing request took effect first (an ambiguous failure, as
/// when a connection drops after the server applied a write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Before,
    After,
    /// A put stores only the first half of the bytes and reports success
    /// (a lying or broken server).
    Truncated,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub op: Op,
    pub key_prefix: String,
    /// Matching requests that succeed before the fault fires.
    pub skip: u32,
    /// How many matching requests fail once it fires.
    pub times: u32,
    pub when: When,
    pub error: StorageError,
}

#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn Storage>,
    faults: Mutex<Vec<Armed>>,
}

/// A fault with what is left of it, and how often it fired.
#[derive(Debug)]
struct Armed {
    fault: Fault,
    fired: u32,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn Storage>, faults: Vec<Fault>) -> FaultyStore {
        FaultyStore {
            inner,
            faults: Mutex::new(
                faults
                    .into_iter()
                    .map(|fault| Armed { fault, fired: 0 })
                    .collect(),
            ),
        }
    }

    /// How many times each fault fired so far, in the order given.
    pub fn fired(&self) -> Vec<u32> {
        let faults = self.faults.lock().unwrap();
        faults.iter().map(|a| a.fired).collect()
    }

    /// The fault to inject for this request, if any (consuming one use).
    fn fire(&self, op: Op, key: &str) -> Option<(When, StorageError)> {
        let mut faults = self.faults.lock().unwrap();
        for armed in faults
            .iter_mut()
            .filter(|a| a.fault.op == op && key.starts_with(&a.fault.key_prefix))
        {
            let f = &mut armed.fault;
            if f.skip > 0 {
                f.skip -= 1;
                return None;
            }
            if f.times > 0 {
                f.times -= 1;
                armed.fired += 1;
                return Some((f.when, f.error.clone()));
            }
        }
        None
    }

    async fn guard<T: Send>(
        &self,
        op: Op,
        key: &str,
        run: impl std::future::Future<Output = StorageResult<T>> + Send,
    ) -> StorageResult<T> {
        match self.fire(op, key) {
            None => run.await,
            Some((When::Before, e)) => Err(e),
            Some((When::After, e)) => {
                run.await?;
                Err(e)
            }
            Some((When::Truncated, _)) => run.await,
        }
    }
}

#[async_trait]
impl Storage for FaultyStore {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        self.guard(Op::Get, key, self.inner.get(key, range)).await
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> StorageResult<()> {
        match self.fire(Op::Put, key) {
            None => self.inner.put(key, data, mode).await,
            Some((When::Before, e)) => Err(e),
            Some((When::After, e)) => {
                self.inner.put(key, data, mode).await?;
                Err(e)
            }
            Some((When::Truncated, _)) => {
                self.inner
                    .put(key, data.slice(..data.len() / 2), mode)
                    .await
            }
        }
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        self.guard(Op::List, prefix, self.inner.list(prefix)).await
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.guard(Op::Delete, key, self.inner.delete(key)).await
    }

    async fn head(&self, key: &str) -> StorageResult<ObjectMeta> {
        self.guard(Op::Head, key, self.inner.head(key)).await
    }

    async fn leftovers(&self, older_than_ms: i64) -> StorageResult<Vec<ObjectMeta>> {
        self.inner.leftovers(older_than_ms).await
    }

    async fn remove_leftover(&self, key: &str) -> StorageResult<()> {
        self.inner.remove_leftover(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStore;

    #[tokio::test]
    async fn faults_fire_after_their_skips_and_are_counted() {
        let fault = |op, key_prefix: &str, skip, times| Fault {
            op,
            key_prefix: key_prefix.into(),
            skip,
            times,
            when: When::Before,
            error: StorageError::Unavailable {
                detail: "injected".into(),
            },
        };
        let store = FaultyStore::new(
            Arc::new(MemoryStore::new()),
            vec![fault(Op::Put, "a/", 1, 2), fault(Op::Get, "never/", 0, 1)],
        );
        let put = |key: &'static str| store.put(key, Bytes::new(), PutMode::Overwrite);
        assert!(put("a/1").await.is_ok(), "skipped");
        assert!(put("a/2").await.is_err());
        assert!(put("b/1").await.is_ok(), "another prefix");
        assert!(put("a/3").await.is_err());
        assert!(put("a/4").await.is_ok(), "used up");
        assert_eq!(store.fired(), [2, 0]);
    }
}
