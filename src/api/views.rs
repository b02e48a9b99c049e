//! The repository's read views as JSON (and a file's bytes): what the core
//! computes from what the repository layer reads, shaped for the inspector
//! and scripts.

use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::http::{ApiRequest, ApiResponse, OCTET_STREAM};
use crate::core::format::tree::NodeType;
use crate::core::plan::restore::TargetState;
use crate::core::policy::listing::{list, ListParams};
use crate::core::policy::selection::{Rename, Selection};
use crate::repo::http_range as ranges;
use crate::repo::restore::{prepare, RestoreChoice};
use crate::repo::shapes::{manifest_json, page_json, plan_summary_json, tree_entries_json};
use crate::repo::views::{self, locate, read_file_range, Located};
use crate::repo::RepoReader;

/// `GET /api/repos/NAME`: config and statistics.
pub async fn repository(reader: &RepoReader, name: &str) -> ApiResult<ApiResponse> {
    let stats = views::stats(reader).await?;
    ApiResponse::json(&json!({
        "repository": name,
        "config": reader.config,
        "stats": stats,
    }))
}

/// `GET /api/repos/NAME/snapshots?sort=&order=&size=&after=`, answered from
/// the root generation alone.
pub async fn snapshots(reader: &RepoReader, req: &ApiRequest) -> ApiResult<ApiResponse> {
    let bad = |e: crate::core::policy::listing::ListingError| ApiError::bad_request(e.to_string());
    let (sort, order, size, after) = (
        req.query("sort"),
        req.query("order"),
        req.query("size"),
        req.query("after"),
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
    ApiResponse::json(&page_json(&page))
}

/// `GET /api/repos/NAME/snapshots/SNAP`: the manifest, with per-index
/// statistics, metadata and failures.
pub async fn snapshot(reader: &RepoReader, snap: &str) -> ApiResult<ApiResponse> {
    let root = reader.root().await?;
    let m = views::manifest_named(reader, &root, snap).await?;
    ApiResponse::json(&json!({"snapshots": [manifest_json(&m)], "total": 1, "remaining": 0}))
}

/// `GET /api/repos/NAME/snapshots/SNAP/tree?index=&path=`: one folder level.
pub async fn tree(reader: &RepoReader, snap: &str, req: &ApiRequest) -> ApiResult<ApiResponse> {
    let index_name = req.required("index")?;
    let path = req.query("path").unwrap_or_default();
    let (root, index) = reader.root_and_index().await?;
    let m = views::manifest_named(reader, &root, snap).await?;
    let Located::Dir(t) = locate(reader, &index, &m, &index_name, &path).await? else {
        return Err(ApiError::bad_request(format!(
            "{index_name}/{path} is not a folder"
        )));
    };
    ApiResponse::json(&json!({
        "snapshot": snap,
        "index": index_name,
        "path": path.trim_matches('/'),
        "entries": tree_entries_json(&t),
    }))
}

/// The largest file (or range of one) assembled into one response: the
/// Worker holds it in memory (128 MB there); larger pieces are asked for
/// by range.
pub const MAX_FILE_RESPONSE: u64 = 32 << 20;

/// `GET /api/repos/NAME/snapshots/SNAP/file?index=&path=`: the file's bytes,
/// honouring `Range`; only the chunks a range needs are read.
pub async fn file(reader: &RepoReader, snap: &str, req: &ApiRequest) -> ApiResult<ApiResponse> {
    let index_name = req.required("index")?;
    let path = req.required("path")?;
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
    let file_name = path.rsplit('/').next().unwrap_or("file");
    let wanted = req.header("Range").and_then(ranges::parse);
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
                return Ok(err
                    .into_response()
                    .with_header("Content-Range", &format!("bytes */{}", node.size)));
            }
        },
    };
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
    let status = if wanted.is_none() { 200 } else { 206 };
    let response = ApiResponse::bytes(status, OCTET_STREAM, body)
        .with_header("Accept-Ranges", "bytes")
        .with_header("Content-Disposition", &content_disposition(file_name));
    if wanted.is_none() {
        return Ok(response);
    }
    Ok(response.with_header(
        "Content-Range",
        &format!("bytes {}-{}/{}", range.start, range.end - 1, node.size),
    ))
}

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
pub async fn diff(reader: &RepoReader, req: &ApiRequest) -> ApiResult<ApiResponse> {
    let (from, to) = (req.required("from")?, req.required("to")?);
    ApiResponse::json(&views::diff(reader, &from, &to).await?)
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
    reader: &RepoReader,
    snap: &str,
    req: &ApiRequest,
) -> ApiResult<ApiResponse> {
    let text = req.text();
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
        include: None,
    };
    let prepared = prepare(reader, &choice).await?;
    let plan = prepared.plan(TargetState::default())?;
    ApiResponse::json(&plan_summary_json(snap, &plan))
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn file_names_reach_every_client() {
        assert_eq!(
            content_disposition("a b\"é.log"),
            "attachment; filename=\"a b__.log\"; filename*=UTF-8''a%20b%22%C3%A9.log"
        );
    }
}
