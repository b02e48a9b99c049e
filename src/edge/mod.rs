//! The edge shell: a Cloudflare Worker (feature `worker`, wasm32) serving
//! repositories stored in the R2 bucket bound as `REPOS`, one repository
//! per top-level folder. Static files (the inspector in `www/`) are served by
//! the Workers assets binding before this code runs.
//!
//! ```text
//!  /api/repos/NAME                               GET   config and stats
//!  /api/repos/NAME/snapshots?sort&order&size&after GET list, paged
//!  /api/repos/NAME/snapshots/SNAP                GET   manifest detail
//!  /api/repos/NAME/snapshots/SNAP/tree?index&path GET  one folder level
//!  /api/repos/NAME/snapshots/SNAP/file?index&path GET  file bytes (Range)
//!  /api/repos/NAME/snapshots/SNAP/_restore_plan  POST  restore plan summary
//!  /api/repos/NAME/diff?from&to                  GET   changes
//!  /api/repos/NAME/objects?prefix&cursor         GET   object listing
//!  /api/repos/NAME/objects/KEY                   GET HEAD PUT DELETE
//! ```

mod api;
mod auth;
mod objects;
mod r2;
mod reply;

use std::sync::Arc;

use worker::{event, Context, Env, Method, Request, Response};

use crate::core::format::codec;
use crate::core::format::naming::validate_name;
use crate::repo::RepoReader;
use crate::storage::edge_wire::{unescape_key, unescape_segment};
use auth::{authorize, Access};
use r2::R2Store;
use reply::{ApiError, ApiResult};

/// The R2 binding that holds repositories (see wrangler.toml).
const BUCKET_BINDING: &str = "REPOS";

#[event(fetch)]
pub async fn fetch(mut req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    match route(&mut req, &env).await {
        Ok(r) => Ok(r),
        Err(e) => e.into_response(),
    }
}

async fn route(req: &mut Request, env: &Env) -> ApiResult<Response> {
    let url = req.url()?;
    let path = url.path().to_string();
    let Some(rest) = path.strip_prefix("/api/repos/") else {
        return Err(ApiError::not_found(format!("no such endpoint: {path}")));
    };
    let (repo_name, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let repo_name = unescape_segment(repo_name);
    validate_name("repository", &repo_name).map_err(crate::error::Error::from)?;
    let bucket = env.bucket(BUCKET_BINDING)?;
    let store = R2Store::new(bucket, BUCKET_BINDING, &repo_name);
    let method = req.method();

    // The object API: raw access for the native CLI.
    if rest == "objects" || rest.starts_with("objects/") {
        let need = match method {
            Method::Get | Method::Head => Access::Read,
            _ => Access::Write,
        };
        authorize(req, env, need)?;
        return match rest.strip_prefix("objects/") {
            Some(key) if !key.is_empty() => objects::object(req, &store, &unescape_key(key)).await,
            _ if method == Method::Get => objects::list(&store, &url).await,
            _ => Err(ApiError::bad_request("an object key is required")),
        };
    }

    authorize(req, env, Access::Read)?;
    let reader = RepoReader::open(Arc::new(store), codec::ruzstd_decode).await?;
    let parts: Vec<String> = rest
        .split('/')
        .filter(|p| !p.is_empty())
        .map(unescape_segment)
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    match (&method, parts.as_slice()) {
        (Method::Get, []) => api::repository(&reader, &repo_name).await,
        (Method::Get, ["snapshots"]) => api::snapshots(&reader, &url).await,
        (Method::Get, ["snapshots", snap]) => api::snapshot(&reader, snap).await,
        (Method::Get, ["snapshots", snap, "tree"]) => api::tree(&reader, snap, &url).await,
        (Method::Get, ["snapshots", snap, "file"]) => api::file(req, &reader, snap, &url).await,
        (Method::Post, ["snapshots", snap, "_restore_plan"]) => {
            api::restore_plan(req, &reader, snap).await
        }
        (Method::Get, ["diff"]) => api::diff(&reader, &url).await,
        _ => Err(ApiError::new(
            404,
            "resource_not_found_exception",
            format!("no such endpoint: {} {path}", method_name(&method)),
        )),
    }
}

fn method_name(m: &Method) -> String {
    format!("{m:?}").to_uppercase()
}
