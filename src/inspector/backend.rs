//! The storage port over a JavaScript object, so the page decides where
//! bytes come from (an edge repository's object API over `fetch`, or files
//! of a local folder the user picked) and the wasm core reads through it.
//!
//! The object must have three async methods:
//!
//! ```text
//! get(key: string, start?: number, end?: number): Promise<Uint8Array>
//! list(prefix: string): Promise<Array<{key: string, size: number, modified_ms?: number}>>
//! head(key: string): Promise<{key: string, size: number, modified_ms?: number}>
//! ```
//!
//! and a `location` string property. A failure rejects with an `Error`
//! whose `code` is `NotFound`, `Unauthorized`, `Forbidden`, `RangeInvalid`
//! or `Unavailable` (anything else is an I/O failure); its message is shown.
//! The inspector never writes.

use std::fmt;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use js_sys::{Function, Promise, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::storage::{
    validate_key, Capabilities, ObjectMeta, PutMode, Storage, StorageError, StorageResult,
};

pub struct JsBackend {
    object: JsValue,
    location: String,
}

impl fmt::Debug for JsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsBackend({})", self.location)
    }
}

#[derive(Deserialize)]
struct Meta {
    key: String,
    size: f64,
    #[serde(default)]
    modified_ms: Option<f64>,
}

impl Meta {
    fn into_meta(self) -> Result<ObjectMeta, String> {
        if !(self.size.is_finite() && self.size >= 0.0) {
            return Err(format!("{} has size {}", self.key, self.size));
        }
        Ok(ObjectMeta {
            key: self.key,
            size: self.size as u64,
            modified_ms: self.modified_ms.filter(|m| m.is_finite()).map(|m| m as i64),
        })
    }
}

fn text(v: &JsValue, name: &str) -> Option<String> {
    Reflect::get(v, &JsValue::from_str(name))
        .ok()
        .and_then(|s| s.as_string())
}

impl JsBackend {
    pub fn new(object: JsValue) -> Result<JsBackend, StorageError> {
        for method in ["get", "list", "head"] {
            let f = Reflect::get(&object, &JsValue::from_str(method)).unwrap_or(JsValue::UNDEFINED);
            if !f.is_function() {
                return Err(StorageError::Config {
                    detail: format!("the backend object has no {method}() method"),
                });
            }
        }
        let location = text(&object, "location").unwrap_or_else(|| "browser".into());
        Ok(JsBackend { object, location })
    }

    async fn call(&self, key: &str, method: &str, args: &[JsValue]) -> StorageResult<JsValue> {
        let f: Function = Reflect::get(&self.object, &JsValue::from_str(method))
            .map_err(|_| self.io(key, "no such method"))?
            .unchecked_into();
        let array = js_sys::Array::new();
        for a in args {
            array.push(a);
        }
        let promise = f
            .apply(&self.object, &array)
            .map_err(|e| self.failure(key, e))?;
        JsFuture::from(Promise::resolve(&promise))
            .await
            .map_err(|e| self.failure(key, e))
    }

    fn io(&self, key: &str, detail: &str) -> StorageError {
        StorageError::Io {
            key: key.into(),
            detail: format!("{}: {detail}", self.location),
        }
    }

    /// Maps a rejection to the port's errors by its `code`.
    fn failure(&self, key: &str, e: JsValue) -> StorageError {
        let message = text(&e, "message")
            .or_else(|| e.as_string())
            .unwrap_or_else(|| "failed".into());
        let key = key.to_string();
        match text(&e, "code").as_deref() {
            Some("NotFound") => StorageError::NotFound { key },
            Some("Unauthorized") | Some("Forbidden") => StorageError::PermissionDenied {
                key,
                detail: message,
            },
            Some("RangeInvalid") => StorageError::InvalidRange {
                key,
                start: 0,
                end: 0,
                size: 0,
            },
            Some("Unavailable") => StorageError::Unavailable {
                detail: format!("{}: {message}", self.location),
            },
            _ => StorageError::Io {
                key,
                detail: message,
            },
        }
    }
}

#[async_trait(?Send)]
impl Storage for JsBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    /// The page may read a picked folder, but only through promises and
    /// with no path the shell could use: judged as the remote it may be.
    fn capabilities(&self) -> Capabilities {
        Capabilities::remote()
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        validate_key(key)?;
        let mut args = vec![JsValue::from_str(key)];
        if let Some(r) = &range {
            args.push(JsValue::from_f64(r.start as f64));
            args.push(JsValue::from_f64(r.end.min(1 << 53) as f64));
        }
        let v = self.call(key, "get", &args).await?;
        let bytes: Uint8Array = v
            .dyn_into()
            .map_err(|_| self.io(key, "get() did not give a Uint8Array"))?;
        Ok(Bytes::from(bytes.to_vec()))
    }

    async fn put(&self, key: &str, _data: Bytes, _mode: PutMode) -> StorageResult<()> {
        Err(StorageError::ReadOnly {
            location: format!(
                "{} (the inspector only reads; {key} was not written)",
                self.location
            ),
        })
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        let v = self
            .call(prefix, "list", &[JsValue::from_str(prefix)])
            .await?;
        let metas: Vec<Meta> = serde_wasm_bindgen::from_value(v)
            .map_err(|e| self.io(prefix, &format!("list() gave {e}")))?;
        let mut out = metas
            .into_iter()
            .map(Meta::into_meta)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.io(prefix, &format!("list() gave {e}")))?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        Err(StorageError::ReadOnly {
            location: format!(
                "{} (the inspector only reads; {key} was not deleted)",
                self.location
            ),
        })
    }

    async fn head(&self, key: &str) -> StorageResult<ObjectMeta> {
        validate_key(key)?;
        let v = self.call(key, "head", &[JsValue::from_str(key)]).await?;
        let meta: Meta = serde_wasm_bindgen::from_value(v)
            .map_err(|e| self.io(key, &format!("head() gave {e}")))?;
        meta.into_meta()
            .map_err(|e| self.io(key, &format!("head() gave {e}")))
    }
}
