//! `repo cleanup` for the synchronous shell: the local disk's reserve
//! around the repository layer's cleanup (`repo::cleanup`), blocked on once.

use std::time::Duration;

use crate::native::clock::now_millis;
use crate::native::error::Result;
use crate::native::repo::Repo;
use crate::native::runtime::block_on;

pub use crate::repo::cleanup::CleanupReport;

/// See [`crate::repo::cleanup::cleanup`].
pub fn cleanup(repo: &Repo, grace: Duration, dry_run: bool) -> Result<CleanupReport> {
    let local = crate::native::guard::local_root(repo).filter(|_| !dry_run);
    if let Some(root) = &local {
        crate::native::reserve::release_if_tight(root);
    }
    let readonly = repo.settings.readonly;
    let report = block_on(crate::repo::cleanup::cleanup(
        repo.reader(),
        readonly,
        now_millis(),
        grace,
        dry_run,
    ));
    if let Some(root) = &local {
        crate::native::reserve::ensure(root);
    }
    report
}

#[cfg(test)]
mod tests {
    use std::ops::Range;
    use std::sync::Arc;

    use async_trait::async_trait;
    use bytes::Bytes;

    use super::*;
    use crate::core::format::config::RepoConfig;
    use crate::core::format::id::Id;
    use crate::core::format::keys;
    use crate::native::repo::Repo;
    use crate::native::runtime::block_on;
    use crate::storage::memory::MemoryStore;
    use crate::storage::ObjectMeta;
    use crate::storage::{Capabilities, PutMode, Storage, StorageResult};

    /// Lists modification times truncated to whole seconds, as S3 and Azure
    /// do, and lets another writer put an object just before the full
    /// listing (after cleanup took its start time).
    #[derive(Debug)]
    struct CoarseClockStore {
        inner: MemoryStore,
        intruder: String,
    }

    #[async_trait]
    impl Storage for CoarseClockStore {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn capabilities(&self) -> Capabilities {
            self.inner.capabilities()
        }
        async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
            self.inner.get(key, range).await
        }
        async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> StorageResult<()> {
            self.inner.put(key, data, mode).await
        }
        async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
            if prefix.is_empty() {
                let data = Bytes::from_static(b"uploaded by a snapshot that just started");
                self.inner
                    .put(&self.intruder, data, PutMode::Overwrite)
                    .await?;
            }
            let mut all = self.inner.list(prefix).await?;
            for m in &mut all {
                m.modified_ms = m.modified_ms.map(|t| t - t.rem_euclid(1000));
            }
            Ok(all)
        }
        async fn delete(&self, key: &str) -> StorageResult<()> {
            self.inner.delete(key).await
        }
        async fn head(&self, key: &str) -> StorageResult<ObjectMeta> {
            self.inner.head(key).await
        }
    }

    #[test]
    fn an_object_written_after_cleanup_started_survives_whole_second_timestamps() {
        let intruder = keys::pack(&Id::of(b"a pack of a snapshot in flight"));
        let store = Arc::new(CoarseClockStore {
            inner: MemoryStore::new(),
            intruder: intruder.clone(),
        });
        let repo = Repo::init_in(store.clone(), RepoConfig::new("t".into(), 0)).unwrap();
        // Whatever the sub-second phase, the intruder is written after
        // cleanup's start and must be judged young, even with no grace.
        for _ in 0..20 {
            let report = cleanup(&repo, Duration::ZERO, false).unwrap();
            assert!(!report.keys.contains(&intruder), "{:?}", report.keys);
            block_on(store.inner.head(&intruder)).unwrap();
            std::thread::sleep(Duration::from_millis(37));
        }
    }
}
