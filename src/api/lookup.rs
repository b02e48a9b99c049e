//! Where the API finds repositories: the server's side of the contract.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::error::{ApiError, ApiResult};
use crate::repo::RepoReader;
use crate::storage::MaybeSendSync;

/// The repositories a server offers by name. The Worker opens the R2
/// folder of that name (checking the caller's token first); the node looks
/// up its registered repositories.
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait RepoLookup: MaybeSendSync {
    /// Repository `name` (a valid name: [`super::RepoPath::parse`] checked
    /// it) opened for reading. An unknown one is [`missing`]; a reader may
    /// be kept and handed out again (its clones share their caches).
    async fn reader(&self, name: &str) -> ApiResult<RepoReader>;

    /// The names `GET /api/repos` lists, sorted; `None` where the server
    /// does not list them (that path is then an unknown endpoint, as on
    /// the Worker).
    async fn names(&self) -> ApiResult<Option<Vec<String>>>;
}

/// The error for a repository the server does not have.
pub fn missing(name: &str) -> ApiError {
    ApiError::new(
        404,
        "repository_missing_exception",
        format!("[{name}] missing"),
    )
}

/// A fixed set of open repositories, listed.
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl RepoLookup for BTreeMap<String, RepoReader> {
    async fn reader(&self, name: &str) -> ApiResult<RepoReader> {
        self.get(name).cloned().ok_or_else(|| missing(name))
    }

    async fn names(&self) -> ApiResult<Option<Vec<String>>> {
        Ok(Some(self.keys().cloned().collect()))
    }
}
