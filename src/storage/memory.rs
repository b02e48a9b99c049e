//! In-memory storage for tests (`memory://`). Every guarantee of the port
//! holds because one mutex orders all operations.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::{clamp_range, validate_key, ObjectMeta, PutMode, Storage, StorageError, StorageResult};

#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Bytes>>,
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

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        validate_key(key)?;
        let objects = self.objects.lock().unwrap();
        let data = objects
            .get(key)
            .ok_or_else(|| StorageError::NotFound { key: key.into() })?;
        let r = clamp_range(key, range, data.len() as u64)?;
        Ok(data.slice(r.start as usize..r.end as usize))
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> StorageResult<()> {
        validate_key(key)?;
        let mut objects = self.objects.lock().unwrap();
        if mode == PutMode::Create && objects.contains_key(key) {
            return Err(StorageError::AlreadyExists { key: key.into() });
        }
        objects.insert(key.to_string(), data);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| ObjectMeta {
                key: k.clone(),
                size: v.len() as u64,
                modified_ms: None,
            })
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
        let data = objects
            .get(key)
            .ok_or_else(|| StorageError::NotFound { key: key.into() })?;
        Ok(ObjectMeta {
            key: key.into(),
            size: data.len() as u64,
            modified_ms: None,
        })
    }
}
