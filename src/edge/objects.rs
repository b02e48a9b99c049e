//! The object API the native CLI uses as a repository backend:
//! `GET` (with `Range`), `HEAD`, `PUT` (`If-None-Match: *` = create-only,
//! 412 when the key exists) and `DELETE` on `objects/KEY`, and
//! `GET objects?prefix=&cursor=` to list one page at a time.

use serde_json::json;
use worker::{Headers, Method, Request, Response, Url};

use super::r2::R2Store;
use super::reply::{bytes_response, json_response, ApiError, ApiResult};
use crate::repo::http_range as ranges;
use crate::storage::{PutMode, Storage, StorageError};

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub async fn list(store: &R2Store, url: &Url) -> ApiResult<Response> {
    let prefix = query(url, "prefix").unwrap_or_default();
    let cursor = query(url, "cursor").filter(|c| !c.is_empty());
    let (objects, next) = store.list_page(&prefix, cursor).await?;
    json_response(&json!({
        "objects": objects.iter().map(|m| json!({
            "key": m.key, "size": m.size, "modified_ms": m.modified_ms,
        })).collect::<Vec<_>>(),
        "cursor": next,
    }))
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
                return Ok(err.into_response()?.with_headers(headers));
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
            headers.set("X-Snapkeep-Size", &meta.size.to_string())?;
            if let Some(m) = meta.modified_ms {
                headers.set("X-Snapkeep-Modified-Ms", &m.to_string())?;
            }
            bytes_response(Vec::new(), 200, headers)
        }
        Method::Put => {
            let create_only = req
                .headers()
                .get("If-None-Match")?
                .is_some_and(|v| v.trim() == "*");
            let body = req.bytes().await?;
            let mode = if create_only {
                PutMode::Create
            } else {
                PutMode::Overwrite
            };
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
