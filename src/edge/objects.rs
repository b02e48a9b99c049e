//! The object API the native CLI uses as a repository backend:
//! `GET` (with `Range`), `HEAD`, `PUT` (`If-None-Match: *` = create-only,
//! 412 when the key exists) and `DELETE` on `objects/KEY`, and
//! `GET objects?prefix=&cursor=` to list one page at a time. The wire
//! format is [`crate::storage::edge_wire`], shared with the client.

use serde_json::json;
use worker::{Headers, Method, Request, Response, Url};

use super::r2::R2Store;
use super::reply::{bytes_response, error_response, json_response, ApiError, ApiResult};
use crate::repo::http_range as ranges;
use crate::storage::edge_wire::{self as wire, ListPage};
use crate::storage::{Storage, StorageError};

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub async fn list(store: &R2Store, url: &Url) -> ApiResult<Response> {
    let prefix = query(url, wire::PREFIX_PARAM).unwrap_or_default();
    let cursor = query(url, wire::CURSOR_PARAM).filter(|c| !c.is_empty());
    let (objects, next) = store.list_page(&prefix, cursor).await?;
    // Answered as a JSON value, so its keys come out sorted, as always.
    let page = serde_json::to_value(ListPage::new(objects, next))
        .map_err(|e| ApiError::new(500, "repository_exception", e.to_string()))?;
    json_response(&page)
}

pub async fn object(req: &mut Request, store: &R2Store, key: &str) -> ApiResult<Response> {
    match req.method() {
        Method::Get => {
            // Streamed from R2 into the response: a pack never sits whole
            // in the Worker's memory.
            let wanted = req.headers().get("Range")?.and_then(|h| ranges::parse(&h));
            let headers = Headers::new();
            headers.set("Content-Type", "application/octet-stream")?;
            headers.set("Accept-Ranges", "bytes")?;
            let missing = || StorageError::NotFound { key: key.into() };
            let Some(wanted) = wanted else {
                let object = store.get_streamed(key, None).await?.ok_or_else(missing)?;
                return stream(object, 200, headers);
            };
            let size = store.head(key).await?.size;
            let Some(range) = wanted.resolve(size) else {
                headers.set("Content-Range", &format!("bytes */{size}"))?;
                let err = ApiError::new(
                    416,
                    "requested_range_not_satisfiable",
                    format!("range outside object {key} ({size} bytes)"),
                );
                return Ok(error_response(err)?.with_headers(headers));
            };
            let object = store
                .get_streamed(key, Some(range.clone()))
                .await?
                .ok_or_else(missing)?;
            headers.set(
                "Content-Range",
                &format!("bytes {}-{}/{size}", range.start, range.end - 1),
            )?;
            stream(object, 206, headers)
        }
        Method::Head => {
            let meta = store.head(key).await?;
            let headers = Headers::new();
            for (name, value) in wire::head_headers(&meta) {
                headers.set(name, &value)?;
            }
            bytes_response(Vec::new(), 200, headers)
        }
        Method::Put => {
            let mode = wire::put_mode(req.headers().get(wire::CREATE_ONLY_HEADER)?.as_deref());
            let body = req.bytes().await?;
            store.put_vec(key, body, mode).await?;
            Ok(json_response(&json!({"acknowledged": true}))?.with_status(201))
        }
        Method::Delete => {
            store.delete(key).await?;
            Ok(json_response(&json!({"acknowledged": true}))?)
        }
        other => Err(ApiError::new(
            405,
            "illegal_argument_exception",
            format!("method {other:?} is not allowed on objects"),
        )),
    }
}

/// An R2 object's body as the response body.
fn stream(object: worker::Object, status: u16, headers: Headers) -> ApiResult<Response> {
    let body = object
        .body()
        .ok_or_else(|| ApiError::new(500, "repository_exception", "R2 returned no body"))?
        .response_body()?;
    Ok(Response::from_body(body)?
        .with_status(status)
        .with_headers(headers))
}
