//! The object API's read side over any [`Storage`], for servers whose
//! repositories are not on R2 (the node): `GET objects/KEY` (with `Range`),
//! `HEAD objects/KEY` and `GET objects?prefix=&cursor=`, on the wire of
//! [`crate::storage::edge_wire`], so the browser inspector and the CLI's
//! edge client read a node's repositories as they read a Worker's. Writes
//! are refused: the node writes through its own API. The Worker keeps its
//! own streaming object API (`edge::objects`).

use super::error::{ApiError, ApiResult};
use super::http::{ApiRequest, ApiResponse, OCTET_STREAM};
use crate::repo::http_range as ranges;
use crate::storage::edge_wire::{self as wire, ListPage};
use crate::storage::Storage;

/// Objects in one listing page.
pub const LIST_PAGE: usize = 1000;

/// `GET objects?prefix=&cursor=`: up to [`LIST_PAGE`] objects after the
/// cursor (the last key of the previous page).
pub async fn list(store: &dyn Storage, req: &ApiRequest) -> ApiResult<ApiResponse> {
    let prefix = req.query(wire::PREFIX_PARAM).unwrap_or_default();
    let cursor = req.query(wire::CURSOR_PARAM).filter(|c| !c.is_empty());
    let all = store.list(&prefix).await?;
    let start = match &cursor {
        Some(c) => all.partition_point(|m| m.key.as_str() <= c.as_str()),
        None => 0,
    };
    let page: Vec<_> = all.into_iter().skip(start).take(LIST_PAGE + 1).collect();
    let more = page.len() > LIST_PAGE;
    let page: Vec<_> = page.into_iter().take(LIST_PAGE).collect();
    let next = more.then(|| page.last().map(|m| m.key.clone())).flatten();
    // As a JSON value, so its keys come out sorted, as the Worker's do.
    let value = serde_json::to_value(ListPage::new(page, next))
        .map_err(|e| ApiError::new(500, "repository_exception", e.to_string()))?;
    ApiResponse::json(&value)
}

/// `GET` or `HEAD objects/KEY`.
pub async fn object(store: &dyn Storage, req: &ApiRequest, key: &str) -> ApiResult<ApiResponse> {
    match req.method.as_str() {
        "GET" => get(store, req, key).await,
        "HEAD" => {
            let meta = store.head(key).await?;
            let mut response = ApiResponse::bytes(200, OCTET_STREAM, Vec::new());
            for (name, value) in wire::head_headers(&meta) {
                response = response.with_header(name, &value);
            }
            Ok(response)
        }
        other => Err(ApiError::new(
            405,
            "illegal_argument_exception",
            format!("method {other} is not allowed on objects here: they are served read-only"),
        )),
    }
}

async fn get(store: &dyn Storage, req: &ApiRequest, key: &str) -> ApiResult<ApiResponse> {
    let wanted = req.header("Range").and_then(ranges::parse);
    let Some(wanted) = wanted else {
        let body = store.get(key, None).await?;
        return Ok(
            ApiResponse::bytes(200, OCTET_STREAM, body).with_header("Accept-Ranges", "bytes")
        );
    };
    let size = store.head(key).await?.size;
    let Some(range) = wanted.resolve(size) else {
        let err = ApiError::new(
            416,
            "requested_range_not_satisfiable",
            format!("range outside object {key} ({size} bytes)"),
        );
        return Ok(err
            .into_response()
            .with_header("Content-Range", &format!("bytes */{size}")));
    };
    let body = store.get(key, Some(range.clone())).await?;
    Ok(ApiResponse::bytes(206, OCTET_STREAM, body)
        .with_header("Accept-Ranges", "bytes")
        .with_header(
            "Content-Range",
            &format!("bytes {}-{}/{size}", range.start, range.end - 1),
        ))
}
