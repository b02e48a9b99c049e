//! `/api/repos/...`: the transport-neutral read API (`crate::api`, the
//! same one the edge Worker serves) over the node's registered
//! repositories. This module only converts axum's request and response to
//! and from [`ApiRequest`]/[`ApiResponse`] and looks repositories up.

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::api::{self, missing, ApiRequest, ApiResponse, ApiResult, RepoLookup};
use crate::native::decompressor::libzstd_decode;
use crate::native::password::NativeUnlock;
use crate::node::ccr::leader::{object_store, CHECKPOINT_REPO};
use crate::node::reply::{EsError, OwnContentType};
use crate::node::server::Shared;
use crate::node::{body, open};
use crate::repo::RepoReader;

/// The node's registered repositories, opened per request as the
/// `_snapshot` routes open them (a reader caches what it reads for its
/// own life only, so a new snapshot is seen by the next request).
struct Registered(Shared);

#[async_trait]
impl RepoLookup for Registered {
    async fn reader(&self, name: &str) -> ApiResult<RepoReader> {
        // The checkpoint repository followers read (`node::ccr::leader`):
        // not a registration, and only readable.
        if name == CHECKPOINT_REPO {
            let store = object_store(&self.0.state_folder).ok_or_else(|| missing(name))?;
            return Ok(RepoReader::open_with(store, libzstd_decode, &NativeUnlock).await?);
        }
        let reg = self
            .0
            .repositories
            .lock()
            .await
            .get(name)
            .cloned()
            .ok_or_else(|| missing(name))?;
        Ok(open::reader(&reg).await?)
    }

    async fn names(&self) -> ApiResult<Option<Vec<String>>> {
        Ok(Some(
            self.0.repositories.lock().await.keys().cloned().collect(),
        ))
    }
}

/// Any method on `/api/repos` and below.
pub async fn handle(State(node): State<Shared>, request: Request) -> Response {
    let limit = node.settings.max_body_bytes;
    let req = match to_api(request, limit).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    from_api(api::serve(&Registered(node), &req).await)
}

async fn to_api(request: Request, limit: usize) -> Result<ApiRequest, EsError> {
    let (parts, body) = request.into_parts();
    let mut req = ApiRequest::new(parts.method.as_str(), parts.uri.path(), parts.uri.query());
    req.headers = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    req.body = body::read(body, limit).await?.to_vec();
    Ok(req)
}

/// The API's answer as sent: its own content type kept (file bytes are
/// `application/octet-stream`, not the node's JSON).
pub fn from_api(answer: ApiResponse) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Body::from(answer.body)).into_response();
    for (name, value) in &answer.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(n, v);
        }
    }
    response.extensions_mut().insert(OwnContentType);
    response
}
