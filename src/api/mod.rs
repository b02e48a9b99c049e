//! The HTTP API over repositories, independent of the transport: the edge
//! Worker (`src/edge`) and the native node each convert their requests to
//! an [`ApiRequest`], call [`serve`] with their [`RepoLookup`], and convert
//! the [`ApiResponse`] back. Compiled for every target; nothing here knows
//! `worker` or a native HTTP library.
//!
//! ```text
//!  /api/repos                                    GET   repository names (where listed)
//!  /api/repos/NAME                               GET   config and stats
//!  /api/repos/NAME/snapshots?sort&order&size&after GET list, paged
//!  /api/repos/NAME/snapshots/SNAP                GET   manifest detail
//!  /api/repos/NAME/snapshots/SNAP/tree?index&path GET  one folder level
//!  /api/repos/NAME/snapshots/SNAP/file?index&path GET  file bytes (Range)
//!  /api/repos/NAME/snapshots/SNAP/_restore_plan  POST  restore plan summary
//!  /api/repos/NAME/diff?from&to                  GET   changes
//!  /api/repos/NAME/objects?prefix&cursor         GET   object listing
//!  /api/repos/NAME/objects/KEY                   GET HEAD (Range)
//! ```
//!
//! The Worker answers the object paths itself (R2 streaming, and writes
//! for the CLI's edge backend) before calling [`serve`]; a native server
//! gets their read side from [`objects`]. The inspector's static files are
//! [`assets`].

pub mod assets;
mod error;
mod http;
mod lookup;
pub mod objects;
pub mod views;

pub use error::{ApiError, ApiResult};
pub use http::{decode_query, ApiRequest, ApiResponse, JSON, OCTET_STREAM};
pub use lookup::{missing, RepoLookup};

use serde_json::json;

use crate::core::format::naming::validate_name;
use crate::storage::edge_wire::{unescape_key, unescape_segment};

/// Where every repository's API lives.
pub const REPOS_PATH: &str = "/api/repos";

/// A path under `/api/repos/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPath {
    /// The repository's name, unescaped and valid.
    pub name: String,
    /// What follows `NAME/`, still escaped (may be empty).
    pub rest: String,
}

impl RepoPath {
    /// Splits `/api/repos/NAME/REST`: another path is an unknown endpoint
    /// (404), an invalid name a bad request.
    pub fn parse(path: &str) -> ApiResult<RepoPath> {
        let Some(rest) = path
            .strip_prefix(REPOS_PATH)
            .and_then(|p| p.strip_prefix('/'))
        else {
            return Err(ApiError::not_found(format!("no such endpoint: {path}")));
        };
        let (name, rest) = rest.split_once('/').unwrap_or((rest, ""));
        let name = unescape_segment(name);
        validate_name("repository", &name).map_err(crate::error::Error::from)?;
        Ok(RepoPath {
            name,
            rest: rest.to_string(),
        })
    }

    /// Whether this is the object API (`objects` or `objects/KEY`).
    pub fn is_objects(&self) -> bool {
        self.rest == "objects" || self.rest.starts_with("objects/")
    }

    /// The unescaped key of `objects/KEY`; `None` for the listing.
    pub fn object_key(&self) -> Option<String> {
        self.rest
            .strip_prefix("objects/")
            .filter(|k| !k.is_empty())
            .map(unescape_key)
    }
}

/// Answers one request; failures become Elasticsearch-shaped error
/// responses. Off wasm32 the future is `Send` (tests/api.rs spawns it on a
/// multi-threaded runtime), so a server can run it on any thread.
pub async fn serve(repos: &dyn RepoLookup, req: &ApiRequest) -> ApiResponse {
    match route(repos, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn route(repos: &dyn RepoLookup, req: &ApiRequest) -> ApiResult<ApiResponse> {
    let method = req.method.as_str();
    if req.path == REPOS_PATH && method == "GET" {
        if let Some(names) = repos.names().await? {
            return ApiResponse::json(&json!({ "repositories": names }));
        }
    }
    let target = RepoPath::parse(&req.path)?;
    let reader = repos.reader(&target.name).await?;
    if target.is_objects() {
        return match target.object_key() {
            Some(key) => objects::object(reader.store.as_ref(), req, &key).await,
            None if method == "GET" => objects::list(reader.store.as_ref(), req).await,
            None => Err(ApiError::bad_request("an object key is required")),
        };
    }
    let parts: Vec<String> = target
        .rest
        .split('/')
        .filter(|p| !p.is_empty())
        .map(unescape_segment)
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    match (method, parts.as_slice()) {
        ("GET", []) => views::repository(&reader, &target.name).await,
        ("GET", ["snapshots"]) => views::snapshots(&reader, req).await,
        ("GET", ["snapshots", snap]) => views::snapshot(&reader, snap).await,
        ("GET", ["snapshots", snap, "tree"]) => views::tree(&reader, snap, req).await,
        ("GET", ["snapshots", snap, "file"]) => views::file(&reader, snap, req).await,
        ("POST", ["snapshots", snap, "_restore_plan"]) => {
            views::restore_plan(&reader, snap, req).await
        }
        ("GET", ["diff"]) => views::diff(&reader, req).await,
        _ => Err(ApiError::not_found(format!(
            "no such endpoint: {method} {}",
            req.path
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_paths_split_into_name_and_rest() {
        let p = RepoPath::parse("/api/repos/my%2Dbackups/objects/packs/ab%20c").unwrap();
        assert_eq!(p.name, "my-backups");
        assert!(p.is_objects());
        assert_eq!(p.object_key().as_deref(), Some("packs/ab c"));
        let p = RepoPath::parse("/api/repos/r").unwrap();
        assert_eq!((p.name.as_str(), p.rest.as_str()), ("r", ""));
        assert!(!p.is_objects());
        assert!(RepoPath::parse("/api/repos/r/objects")
            .unwrap()
            .object_key()
            .is_none());
        assert_eq!(RepoPath::parse("/api/repos").unwrap_err().status, 404);
        assert_eq!(RepoPath::parse("/other").unwrap_err().status, 404);
        assert_eq!(RepoPath::parse("/api/repos/").unwrap_err().status, 400);
        assert_eq!(
            RepoPath::parse("/api/repos/Bad*Name").unwrap_err().status,
            400
        );
    }
}
