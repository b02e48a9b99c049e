//! The storage port over an R2 bucket binding: one repository is every
//! object under `<repository name>/`.
//!
//! Create-only puts are R2 conditional puts (`onlyIf: {etagDoesNotMatch:
//! "*"}`): R2 refuses them atomically when the key exists.

use std::fmt;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use worker::{Bucket, Conditional, Range as R2Range};

use crate::storage::{
    clamp_range, validate_key, Capabilities, ObjectMeta, PutMode, Storage, StorageError,
    StorageResult,
};

/// The largest integer a JS number holds exactly.
const MAX_EXACT: u64 = (1 << 53) - 1;

pub struct R2Store {
    bucket: Bucket,
    /// `<repository>/`
    prefix: String,
}

impl fmt::Debug for R2Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "R2Store({})", self.location())
    }
}

impl R2Store {
    pub fn new(bucket: Bucket, repository: &str) -> R2Store {
        R2Store {
            bucket,
            prefix: format!("{repository}/"),
        }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn err(&self, key: &str, e: worker::Error) -> StorageError {
        StorageError::Unavailable {
            detail: format!("R2 {}: {e}", self.full(key)),
        }
    }

    fn meta(&self, o: &worker::Object) -> ObjectMeta {
        ObjectMeta {
            key: o
                .key()
                .strip_prefix(&self.prefix)
                .unwrap_or_default()
                .to_string(),
            size: o.size(),
            modified_ms: Some(o.uploaded().as_millis() as i64),
        }
    }

    /// The object (with its body, of `range` when given) for streaming it
    /// straight into a response, without copying it through wasm memory.
    /// `None` when the key does not exist.
    pub async fn get_streamed(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> StorageResult<Option<worker::Object>> {
        validate_key(key)?;
        let mut request = self.bucket.get(self.full(key));
        if let Some(r) = range {
            request = request.range(if r.end > MAX_EXACT {
                R2Range::OffsetToEnd { offset: r.start }
            } else {
                R2Range::OffsetWithLength {
                    offset: r.start,
                    length: r.end - r.start,
                }
            });
        }
        request.execute().await.map_err(|e| self.err(key, e))
    }

    /// A put of bytes the Worker already holds (no extra copy).
    pub async fn put_vec(&self, key: &str, data: Vec<u8>, mode: PutMode) -> StorageResult<()> {
        validate_key(key)?;
        let mut request = self.bucket.put(self.full(key), data);
        if mode == PutMode::Create {
            request = request.only_if(Conditional {
                etag_does_not_match: Some("*".into()),
                ..Default::default()
            });
        }
        match request.execute().await.map_err(|e| self.err(key, e))? {
            Some(_) => Ok(()),
            // The condition failed: the key exists.
            None => Err(StorageError::AlreadyExists { key: key.into() }),
        }
    }

    /// One page of a listing: up to 1000 objects after `cursor`.
    pub async fn list_page(
        &self,
        prefix: &str,
        cursor: Option<String>,
    ) -> StorageResult<(Vec<ObjectMeta>, Option<String>)> {
        let mut request = self.bucket.list().prefix(self.full(prefix)).limit(1000);
        if let Some(c) = cursor {
            request = request.cursor(c);
        }
        let page = request.execute().await.map_err(|e| self.err(prefix, e))?;
        let objects = page.objects().iter().map(|o| self.meta(o)).collect();
        let next = if page.truncated() {
            page.cursor()
        } else {
            None
        };
        Ok((objects, next))
    }
}

/// The bucket's top-level folders (`NAME/`), by name: where repositories
/// may be. Listed with R2's delimiter, one page of 1000 at a time.
pub async fn folders(bucket: &Bucket) -> worker::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = bucket.list().delimiter("/").limit(1000);
        if let Some(c) = cursor.take() {
            request = request.cursor(c);
        }
        let page = request.execute().await?;
        out.extend(
            page.delimited_prefixes()
                .into_iter()
                .filter_map(|p| p.strip_suffix('/').map(str::to_string)),
        );
        match page.cursor().filter(|_| page.truncated()) {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[async_trait(?Send)]
impl Storage for R2Store {
    fn location(&self) -> String {
        // The repository as clients address it: the bucket binding's name
        // is the deployment's business, not the answer's.
        format!("/api/repos/{}", self.prefix.trim_end_matches('/'))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::remote()
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        validate_key(key)?;
        if range.as_ref().is_some_and(|r| r.start > MAX_EXACT) {
            return Err(StorageError::InvalidRange {
                key: key.into(),
                start: range.as_ref().map_or(0, |r| r.start),
                end: range.as_ref().map_or(0, |r| r.end),
                size: 0,
            });
        }
        let not_found = || StorageError::NotFound { key: key.into() };
        let Some(range) = range else {
            let object = self
                .bucket
                .get(self.full(key))
                .execute()
                .await
                .map_err(|e| self.err(key, e))?
                .ok_or_else(not_found)?;
            let body = object.body().ok_or_else(not_found)?;
            return Ok(Bytes::from(
                body.bytes().await.map_err(|e| self.err(key, e))?,
            ));
        };
        if range.start >= range.end {
            // Empty ranges need no read, only the existence check.
            let size = self.head(key).await?.size;
            clamp_range(key, Some(range.clone()), size)?;
            return Ok(Bytes::new());
        }
        let ranged = |r: Range<u64>| {
            // R2 takes JS numbers: an end beyond 2^53 means "to the end".
            let spec = if r.end > MAX_EXACT {
                R2Range::OffsetToEnd { offset: r.start }
            } else {
                R2Range::OffsetWithLength {
                    offset: r.start,
                    length: r.end - r.start,
                }
            };
            self.bucket.get(self.full(key)).range(spec).execute()
        };
        let object = match ranged(range.clone()).await {
            Ok(o) => o,
            // R2 refuses ranges that reach past the end; the port cuts them
            // at the end and refuses only those starting past it.
            Err(_) => {
                let size = self.head(key).await?.size;
                let r = clamp_range(key, Some(range), size)?;
                if r.start == r.end {
                    return Ok(Bytes::new());
                }
                ranged(r).await.map_err(|e| self.err(key, e))?
            }
        }
        .ok_or_else(not_found)?;
        let body = object.body().ok_or_else(not_found)?;
        Ok(Bytes::from(
            body.bytes().await.map_err(|e| self.err(key, e))?,
        ))
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> StorageResult<()> {
        self.put_vec(key, data.to_vec(), mode).await
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let (page, next) = self.list_page(prefix, cursor).await?;
            out.extend(page);
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        validate_key(key)?;
        self.bucket
            .delete(self.full(key))
            .await
            .map_err(|e| self.err(key, e))
    }

    async fn head(&self, key: &str) -> StorageResult<ObjectMeta> {
        validate_key(key)?;
        let object = self
            .bucket
            .head(self.full(key))
            .await
            .map_err(|e| self.err(key, e))?
            .ok_or_else(|| StorageError::NotFound { key: key.into() })?;
        Ok(self.meta(&object))
    }
}
