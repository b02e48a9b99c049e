//! The repository API: JSON views computed by the core from what the
//! shared access layer reads out of R2.

use serde::Deserialize;
use serde_json::json;
use worker::{Headers, Request, Response, Url};

use super::reply::{bytes_response, json_response, ApiError, ApiResult};
use crate::core::format::tree::NodeType;
use crate::core::plan::restore::TargetState;
use crate::core::policy::listing::{list, ListParams};
use crate::core::policy::selection::{Rename, Selection};
use crate::repo::http_range as ranges;
use crate::repo::restore::{prepare, RestoreChoice};
use crate::repo::shapes::{manifest_json, page_json, plan_summary_json, tree_entries_json};
use crate::repo::views::{self, locate, read_file_range, Located};
use crate::repo::RepoReader;

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn required(url: &Url, name: &str) -> ApiResult<String> {
    query(url, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("query parameter [{name}] is required")))
}

/// `GET /api/repos/NAME`: config and statistics.
pub async fn repository(reader: &RepoReader, name: &str) -> ApiResult<Response> {
    let stats = views::stats(reader).await?;
    json_response(&json!({
        "repository": name,
        "config": reader.config,
        "stats": stats,
    }))
}

/// `GET /api/repos/NAME/snapshots?sort=&order=&size=&after=`, answered from
/// the root generation alone.
pub async fn snapshots(reader: &RepoReader, url: &Url) -> ApiResult<Response> {
    let bad = |e: crate::core::policy::listing::ListingError| ApiError::bad_request(e.to_string());
    let (sort, order, size, after) = (
        query(url, "sort"),
        query(url, "order"),
        query(url, "size"),
        query(url, "after"),
    );
    let q = ListParams {
        sort: sort.as_deref(),
        order: order.as_deref(),
        size: size.as_deref(),
        after: after.as_deref(),
    }
    .parse()
    .map_err(bad)?;
    let root = reader.root().await?;
    let page = list(&root.snapshots, &q).map_err(bad)?;
    json_response(&page_json(&page))
}

/// `GET /api/repos/NAME/snapshots/SNAP`: the manifest, with per-index
/// statistics, metadata and failures.
pub async fn snapshot(reader: &RepoReader, snap: &str) -> ApiResult<Response> {
    let root = reader.root().await?;
    let m = views::manifest_named(reader, &root, snap).await?;
    json_response(&json!({"snapshots": [manifest_json(&m)], "total": 1, "remaining": 0}))
}

/// `GET /api/repos/NAME/snapshots/SNAP/tree?index=&path=`: one folder level.
pub async fn tree(reader: &RepoReader, snap: &str, url: &Url) -> ApiResult<Response> {
    let index_name = required(url, "index")?;
    let path = query(url, "path").unwrap_or_default();
    let (root, index) = reader.root_and_index().await?;
    let m = views::manifest_named(reader, &root, snap).await?;
    let Located::Dir(t) = locate(reader, &index, &m, &index_name, &path).await? else {
        return Err(ApiError::bad_request(format!(
            "{index_name}/{path} is not a folder"
        )));
    };
    json_response(&json!({
        "snapshot": snap,
        "index": index_name,
        "path": path.trim_matches('/'),
        "entries": tree_entries_json(&t),
    }))
}

/// `GET /api/repos/NAME/snapshots/SNAP/file?index=&path=`: the file's bytes,
/// honouring `Range`; only the chunks a range needs are read from R2.
pub async fn file(
    req: &Request,
    reader: &RepoReader,
    snap: &str,
    url: &Url,
) -> ApiResult<Response> {
    let index_name = required(url, "index")?;
    let path = required(url, "path")?;
    let (root, index) = reader.root_and_index().await?;
    let m = views::manifest_named(reader, &root, snap).await?;
    let node = match locate(reader, &index, &m, &index_name, &path).await? {
        Located::Entry(n) if n.kind == NodeType::File => n,
        _ => {
            return Err(ApiError::bad_request(format!(
                "{index_name}/{path} is not a file"
            )))
        }
    };
    let headers = Headers::new();
    headers.set("Content-Type", "application/octet-stream")?;
    headers.set("Accept-Ranges", "bytes")?;
    let file_name = path.rsplit('/').next().unwrap_or("file");
    headers.set("Content-Disposition", &content_disposition(file_name))?;
    let wanted = req.headers().get("Range")?.and_then(|h| ranges::parse(&h));
    let range = match wanted {
        None => 0..node.size,
        Some(w) => match w.resolve(node.size) {
            Some(r) => r,
            None => {
                let err = ApiError::new(
                    416,
                    "requested_range_not_satisfiable",
                    "range outside the file",
                );
                let mut response = err.into_response()?;
                response
                    .headers_mut()
                    .set("Content-Range", &format!("bytes */{}", node.size))?;
                return Ok(response);
            }
        },
    };
    // Assembled in the Worker's memory (limited to 128 MB on Cloudflare):
    // larger pieces are asked for by range.
    if range.end - range.start > MAX_FILE_RESPONSE {
        return Err(ApiError::new(
            413,
            "request_entity_too_large",
            format!(
                "{} bytes in one response is over the {} MiB limit: read the file in ranges (Range: bytes=...)",
                range.end - range.start,
                MAX_FILE_RESPONSE >> 20
            ),
        ));
    }
    let body = read_file_range(reader, &index, &node, range.clone()).await?;
    if wanted.is_none() {
        return bytes_response(body, 200, headers);
    }
    headers.set(
        "Content-Range",
        &format!("bytes {}-{}/{}", range.start, range.end - 1, node.size),
    )?;
    bytes_response(body, 206, headers)
}

/// The largest file (or range of one) assembled into one response.
const MAX_FILE_RESPONSE: u64 = 32 << 20;

/// `attachment` with the name as ASCII (others replaced) and, for every
/// client that reads it, exactly as UTF-8 (RFC 6266 / RFC 8187).
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// `GET /api/repos/NAME/diff?from=&to=`.
pub async fn diff(reader: &RepoReader, url: &Url) -> ApiResult<Response> {
    let (from, to) = (required(url, "from")?, required(url, "to")?);
    json_response(&views::diff(reader, &from, &to).await?)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanBody {
    #[serde(default)]
    indices: Option<String>,
    #[serde(default)]
    rename_pattern: Option<String>,
    #[serde(default)]
    rename_replacement: Option<String>,
    #[serde(default)]
    include_global_state: bool,
}

/// `POST /api/repos/NAME/snapshots/SNAP/_restore_plan`: what restoring the
/// chosen indices (renamed) into an empty target would fetch.
pub async fn restore_plan(
    req: &mut Request,
    reader: &RepoReader,
    snap: &str,
) -> ApiResult<Response> {
    let text = req.text().await?;
    let body: PlanBody = if text.trim().is_empty() {
        PlanBody::default()
    } else {
        serde_json::from_str(&text)
            .map_err(|e| ApiError::bad_request(format!("request body: {e}")))?
    };
    let rename = match (body.rename_pattern, body.rename_replacement) {
        (Some(p), Some(r)) => Some(Rename::new(&p, &r).map_err(crate::error::Error::from)?),
        (None, None) => None,
        _ => {
            return Err(ApiError::bad_request(
                "rename_pattern and rename_replacement go together",
            ))
        }
    };
    let choice = RestoreChoice {
        snapshot: snap.into(),
        selection: Selection::parse(body.indices.as_deref().unwrap_or("*"))
            .map_err(crate::error::Error::from)?,
        rename,
        include_global_state: body.include_global_state,
    };
    let prepared = prepare(reader, &choice).await?;
    let plan = prepared.plan(TargetState::default())?;
    json_response(&plan_summary_json(snap, &plan))
}
