//! The inspector shell (feature `inspector`, wasm32): the browser's view of
//! a repository, computed by the core. `www/` loads this module in a Web
//! Worker and calls [`Inspector`]; where the bytes come from is the page's
//! business (see [`backend`]).

mod backend;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use js_sys::Uint8Array;
use serde::Serialize;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

use crate::core::format::codec;
use crate::core::format::index::RepoIndex;
use crate::core::format::root::Root;
use crate::core::format::tree::NodeType;
use crate::core::plan::restore::TargetState;
use crate::core::policy::listing::{list, ListParams};
use crate::core::policy::selection::{wildcard_match, Rename, Selection};
use crate::error::Error;
use crate::repo::keyring::Given;
use crate::repo::restore::{prepare, RestoreChoice};
use crate::repo::shapes::{manifest_json, page_json, plan_summary_json, tree_entries_json};
use crate::repo::views::{self, locate, read_file_range, Located};
use crate::repo::RepoReader;
use backend::JsBackend;
use zeroize::Zeroizing;

/// Every error reaches the page as one line saying what failed.
fn fail(e: impl Into<Error>) -> JsError {
    JsError::new(&e.into().to_string())
}

/// [`fail`], with a `code` on the failures of opening that the page
/// answers by asking for the password: `Encrypted`, `WrongPassword`.
fn locked(e: impl Into<Error>) -> JsValue {
    let e = e.into();
    let code = match e {
        Error::Encrypted(_) => Some("Encrypted"),
        Error::WrongPassword { .. } => Some("WrongPassword"),
        _ => None,
    };
    let js = js_sys::Error::new(&e.to_string());
    if let Some(code) = code {
        // Setting a property on a fresh Error object cannot fail.
        let _ = js_sys::Reflect::set(&js, &"code".into(), &code.into());
    }
    js.into()
}

/// Values go to the page as parsed JSON: plain objects and numbers (a
/// nanosecond mtime beyond 2^53 loses precision rather than failing, and
/// one `JSON.parse` is faster than building large arrays field by field).
fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, JsError> {
    let text = serde_json::to_string(v).map_err(|e| JsError::new(&e.to_string()))?;
    js_sys::JSON::parse(&text).map_err(|_| JsError::new("the inspector produced invalid JSON"))
}

/// Files up to this size may be read in one call.
const MAX_WHOLE_FILE: u64 = 256 << 20;
/// The most one ranged read returns.
const MAX_RANGE_READ: u64 = 64 << 20;

/// SHA-256 computed piece by piece, for files downloaded in ranges.
#[wasm_bindgen]
#[derive(Default)]
pub struct Sha256 {
    state: sha2::Sha256,
}

#[wasm_bindgen]
impl Sha256 {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Sha256 {
        Sha256::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        sha2::Digest::update(&mut self.state, bytes);
    }

    /// The digest as lowercase hex; the hasher starts over.
    pub fn finish(&mut self) -> String {
        hex::encode(sha2::Digest::finalize_reset(&mut self.state))
    }
}

/// An open repository.
#[wasm_bindgen]
pub struct Inspector {
    reader: RepoReader,
    /// The root and index as of opening (or the last `refresh`), shared by
    /// calls in flight rather than copied.
    state: RefCell<Rc<(Root, RepoIndex)>>,
}

#[wasm_bindgen]
impl Inspector {
    /// Opens the repository behind `backend` (see the module docs): reads
    /// its config, newest root and index. An encrypted repository needs
    /// `password`: without one the error's `code` is `Encrypted`, with a
    /// wrong one `WrongPassword`, so the page knows to ask (again). The
    /// password opens a key slot here, in the page's wasm, and the
    /// repository is decrypted here: neither it nor a key is ever sent.
    pub async fn open(backend: JsValue, password: Option<String>) -> Result<Inspector, JsValue> {
        let store = JsBackend::new(backend).map_err(locked)?;
        let store = Arc::new(store);
        let opened = match password {
            None => RepoReader::open(store, codec::ruzstd_decode).await,
            Some(p) => {
                // Wiped when dropped; the JS string it came from cannot be.
                let given = Given {
                    password: Zeroizing::new(p.into_bytes()),
                    nonces: None,
                };
                RepoReader::open_with(store, codec::ruzstd_decode, &given).await
            }
        };
        let reader = opened.map_err(locked)?;
        let state = reader.root_and_index().await.map_err(fail)?;
        Ok(Inspector {
            reader,
            state: RefCell::new(Rc::new(state)),
        })
    }

    /// Reads the newest root again (snapshots taken since opening).
    pub async fn refresh(&self) -> Result<(), JsError> {
        let state = self.reader.root_and_index().await.map_err(fail)?;
        *self.state.borrow_mut() = Rc::new(state);
        Ok(())
    }

    #[wasm_bindgen(getter)]
    pub fn location(&self) -> String {
        self.reader.location()
    }

    /// The repository config and its generation.
    pub fn config(&self) -> Result<JsValue, JsError> {
        let generation = self.state.borrow().0.generation;
        to_js(&json!({"config": self.reader.config, "generation": generation}))
    }

    /// Logical vs stored bytes, dedup ratio, packs and blobs.
    pub async fn stats(&self) -> Result<JsValue, JsError> {
        to_js(&views::stats(&self.reader).await.map_err(fail)?)
    }

    /// One page of snapshots, Elasticsearch-shaped: `sort` is name,
    /// start_time, duration, index_count or size; `order` asc or desc
    /// (anything else is refused, as by the CLI and the Worker);
    /// `filter` a name pattern (`*` wildcards; without one, a substring).
    pub fn snapshots(
        &self,
        sort: &str,
        order: &str,
        size: Option<usize>,
        after: Option<String>,
        filter: Option<String>,
    ) -> Result<JsValue, JsError> {
        let state = self.state.borrow();
        let pattern = filter.filter(|f| !f.trim().is_empty()).map(|f| {
            let f = f.trim().to_string();
            if f.contains('*') {
                f
            } else {
                format!("*{f}*")
            }
        });
        let chosen: Vec<_> = state
            .0
            .snapshots
            .iter()
            .filter(|s| {
                pattern
                    .as_ref()
                    .is_none_or(|p| wildcard_match(p, &s.snapshot))
            })
            .cloned()
            .collect();
        let size = size.map(|n| n.to_string());
        let q = ListParams {
            sort: Some(sort),
            order: Some(order),
            size: size.as_deref(),
            after: after.as_deref(),
        }
        .parse()
        .map_err(|e| JsError::new(&e.to_string()))?;
        let page = list(&chosen, &q).map_err(|e| JsError::new(&e.to_string()))?;
        to_js(&page_json(&page))
    }

    /// Points for the chart of logical bytes against bytes actually stored,
    /// oldest snapshot first.
    pub fn chart(&self) -> Result<JsValue, JsError> {
        let state = self.state.borrow();
        let mut snaps: Vec<_> = state.0.snapshots.iter().collect();
        snaps.sort_by_key(|s| (s.start_time_in_millis, s.snapshot.clone()));
        let mut stored = 0u64;
        let points: Vec<Value> = snaps
            .iter()
            .map(|s| {
                stored += s.new_stored_bytes;
                json!({
                    "snapshot": s.snapshot,
                    "start_time_in_millis": s.start_time_in_millis,
                    "logical_bytes": s.size_in_bytes,
                    "new_stored_bytes": s.new_stored_bytes,
                    "stored_bytes": stored,
                })
            })
            .collect();
        to_js(&points)
    }

    /// The snapshot's manifest: per-index files, logical and new bytes,
    /// metadata and failures.
    pub async fn snapshot(&self, name: &str) -> Result<JsValue, JsError> {
        let state = self.state.borrow().clone();
        let m = views::manifest_named(&self.reader, &state.0, name)
            .await
            .map_err(fail)?;
        to_js(&manifest_json(&m))
    }

    /// One folder level of an index (`_global_state` for global state).
    pub async fn tree(&self, snapshot: &str, index: &str, path: &str) -> Result<JsValue, JsError> {
        let state = self.state.borrow().clone();
        let m = views::manifest_named(&self.reader, &state.0, snapshot)
            .await
            .map_err(fail)?;
        match locate(&self.reader, &state.1, &m, index, path)
            .await
            .map_err(fail)?
        {
            Located::Dir(t) => to_js(&json!({
                "snapshot": snapshot,
                "index": index,
                "path": path.trim_matches('/'),
                "entries": tree_entries_json(&t),
            })),
            Located::Entry(_) => Err(JsError::new(&format!("{index}/{path} is not a folder"))),
        }
    }

    /// A file's bytes, assembled from its chunks, each checked against its
    /// SHA-256. Files over 256 MiB are read with `read_file_range`.
    pub async fn read_file(
        &self,
        snapshot: &str,
        index: &str,
        path: &str,
    ) -> Result<Uint8Array, JsError> {
        let (state, node) = self.file_node(snapshot, index, path).await?;
        if node.size > MAX_WHOLE_FILE {
            return Err(JsError::new(&format!(
                "{index}/{path} has {} bytes: read it in ranges (read_file_range)",
                node.size
            )));
        }
        let bytes = read_file_range(&self.reader, &state.1, &node, 0..node.size)
            .await
            .map_err(fail)?;
        Ok(Uint8Array::from(bytes.as_slice()))
    }

    /// The size of a file in a snapshot.
    pub async fn file_size(&self, snapshot: &str, index: &str, path: &str) -> Result<f64, JsError> {
        let (_, node) = self.file_node(snapshot, index, path).await?;
        Ok(node.size as f64)
    }

    /// Bytes `start..end` of a file (cut to its size), reading only the
    /// chunks they touch, each checked against its SHA-256. At most 64 MiB
    /// per call.
    pub async fn read_file_range(
        &self,
        snapshot: &str,
        index: &str,
        path: &str,
        start: f64,
        end: f64,
    ) -> Result<Uint8Array, JsError> {
        let (start, end) = (start.max(0.0) as u64, end.max(0.0) as u64);
        if end.saturating_sub(start) > MAX_RANGE_READ {
            return Err(JsError::new("read at most 64 MiB of a file per call"));
        }
        let (state, node) = self.file_node(snapshot, index, path).await?;
        let bytes = read_file_range(&self.reader, &state.1, &node, start..end.max(start))
            .await
            .map_err(fail)?;
        Ok(Uint8Array::from(bytes.as_slice()))
    }

    async fn file_node(
        &self,
        snapshot: &str,
        index: &str,
        path: &str,
    ) -> Result<(Rc<(Root, RepoIndex)>, crate::core::format::tree::Node), JsError> {
        let state = self.state.borrow().clone();
        let m = views::manifest_named(&self.reader, &state.0, snapshot)
            .await
            .map_err(fail)?;
        match locate(&self.reader, &state.1, &m, index, path)
            .await
            .map_err(fail)?
        {
            Located::Entry(n) if n.kind == NodeType::File => Ok((state, n)),
            _ => Err(JsError::new(&format!("{index}/{path} is not a file"))),
        }
    }

    /// What changed between two snapshots.
    pub async fn diff(&self, from: &str, to: &str) -> Result<JsValue, JsError> {
        to_js(&views::diff(&self.reader, from, to).await.map_err(fail)?)
    }

    /// The restore plan the CLI would compute for restoring `indices` (a
    /// selection like `logs-*,-logs-old`) of `snapshot` into an empty
    /// target, renamed with a regex pattern and replacement.
    pub async fn restore_plan(
        &self,
        snapshot: &str,
        indices: &str,
        rename_pattern: Option<String>,
        rename_replacement: Option<String>,
        include_global_state: bool,
    ) -> Result<JsValue, JsError> {
        let rename = match (rename_pattern.filter(|p| !p.is_empty()), rename_replacement) {
            (Some(p), Some(r)) => Some(Rename::new(&p, &r).map_err(fail)?),
            (Some(_), None) => return Err(JsError::new("a rename pattern needs a replacement")),
            _ => None,
        };
        let selection = if indices.trim().is_empty() {
            "*"
        } else {
            indices
        };
        let choice = RestoreChoice {
            snapshot: snapshot.into(),
            selection: Selection::parse(selection).map_err(fail)?,
            rename,
            include_global_state,
            include: None,
        };
        let prepared = prepare(&self.reader, &choice).await.map_err(fail)?;
        let plan = prepared.plan(TargetState::default()).map_err(fail)?;
        to_js(&plan_summary_json(snapshot, &plan))
    }
}
