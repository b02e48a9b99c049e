//! In-memory storage for tests (`memory://`). Every guarantee of the port
//! holds because one mutex orders all operations.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    clamp_range, validate_key, Capabilities, Latency, ObjectMeta, PutMode, Storage, StorageError,
    StorageResult,
};

#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Object>>,
}

#[derive(Debug)]
struct Object {
    data: Bytes,
    modified_ms: Option<i64>,
}

impl Object {
    fn meta(&self, key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            size: self.data.len() as u64,
            modified_ms: self.modified_ms,
        }
    }
}

/// Wall-clock time where there is one (wasm32 in a browser has none here).
fn now_ms() -> Option<i64> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(d.as_millis() as i64)
    }
    #[cfg(target_arch = "wasm32")]
    None
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl Storage for MemoryStore {
    fn location(&self) -> String {
        "memory://".into()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            local_root: None,
            latency: Latency::Local,
        }
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        validate_key(key)?;
        let objects = self.objects.lock().unwrap();
        let data = &objects
            .get(key)
            .ok_or_else(|| StorageError::NotFound { key: key.into() })?
            .data;
        let r = clamp_range(key, range, data.len() as u64)?;
        Ok(data.slice(r.start as usize..r.end as usize))
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> StorageResult<()> {
        validate_key(key)?;
        let mut objects = self.objects.lock().unwrap();
        if mode == PutMode::Create && objects.contains_key(key) {
            return Err(StorageError::AlreadyExists { key: key.into() });
        }
        let modified_ms = now_ms();
        objects.insert(key.to_string(), Object { data, modified_ms });
        Ok(())
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, o)| o.meta(k))
            .collect())
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        validate_key(key)?;
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }

    async fn head(&self, key: &str) -> StorageResult<ObjectMeta> {
        validate_key(key)?;
        let objects = self.objects.lock().unwrap();
        objects
            .get(key)
            .map(|o| o.meta(key))
            .ok_or_else(|| StorageError::NotFound { key: key.into() })
    }
}
