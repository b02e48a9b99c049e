//! [`SealedStore`]: an encrypted repository's storage as the rest of the
//! repository layer sees it. Whole objects (roots, the `index.latest`
//! hint, index files, manifests, control records) are sealed on `put` and
//! opened on `get`, each as the envelope kind its key names
//! (`keys::envelope_kind`); packs, key slots and the config pass through,
//! since their parts are sealed one by one by the writers that build them.
//! Sizes from `head` and `list` are the stored (sealed) sizes.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::core::format::keys;
use crate::repo::sealing::Sealing;
use crate::storage::{
    clamp_range, Capabilities, ObjectMeta, PutMode, Storage, StorageError, StorageResult,
};

#[derive(Debug)]
pub struct SealedStore {
    inner: Arc<dyn Storage>,
    sealing: Sealing,
}

impl SealedStore {
    /// `inner` seen through `sealing` (an encrypted repository's).
    pub fn new(inner: Arc<dyn Storage>, sealing: Sealing) -> SealedStore {
        SealedStore { inner, sealing }
    }

    /// [`SealedStore::new`], shared. On wasm32 stores are single-threaded
    /// (`MaybeSendSync`), so the `Arc` is not `Send` there, as for every
    /// store of those shells.
    #[allow(clippy::arc_with_non_send_sync)]
    pub fn over(inner: Arc<dyn Storage>, sealing: Sealing) -> Arc<dyn Storage> {
        Arc::new(SealedStore::new(inner, sealing))
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl Storage for SealedStore {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        let Some(kind) = keys::envelope_kind(key) else {
            return self.inner.get(key, range).await;
        };
        let stored = self.inner.get(key, None).await?;
        let plain = self
            .sealing
            .open(kind, &stored)
            .map_err(|e| StorageError::Sealed {
                key: key.to_string(),
                detail: e.to_string(),
            })?;
        let r = clamp_range(key, range, plain.len() as u64)?;
        Ok(Bytes::from(plain).slice(r.start as usize..r.end as usize))
    }
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> StorageResult<()> {
        let Some(kind) = keys::envelope_kind(key) else {
            return self.inner.put(key, data, mode).await;
        };
        let sealed = self
            .sealing
            .seal(kind, &data)
            .map_err(|e| StorageError::Sealed {
                key: key.to_string(),
                detail: e.to_string(),
            })?;
        self.inner.put(key, Bytes::from(sealed), mode).await
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
