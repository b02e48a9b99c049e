//! The request and response every transport converts to and from: the
//! edge Worker from `worker::Request`, a native server from its HTTP
//! library's types. Nothing here knows either.

use bytes::Bytes;
use serde::Serialize;

use super::error::{ApiError, ApiResult};

/// What the views read of an HTTP request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiRequest {
    /// Upper-case, as on the wire (`GET`, `HEAD`, `POST`, ...).
    pub method: String,
    /// The URL's path as sent: still percent-encoded, no query.
    pub path: String,
    /// The query's pairs, decoded as `application/x-www-form-urlencoded`
    /// (what `url::Url::query_pairs` gives), in order.
    pub query: Vec<(String, String)>,
    /// Request headers; names compare case-insensitively.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiRequest {
    /// A request without headers or body; `raw_query` is the URL's query
    /// without its `?`, still encoded.
    pub fn new(method: &str, path: &str, raw_query: Option<&str>) -> ApiRequest {
        ApiRequest {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query: raw_query.map(decode_query).unwrap_or_default(),
            ..Default::default()
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> ApiRequest {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn with_body(mut self, body: Vec<u8>) -> ApiRequest {
        self.body = body;
        self
    }

    /// The first value of query parameter `name`.
    pub fn query(&self, name: &str) -> Option<String> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// The query parameter `name`, present and not empty.
    pub fn required(&self, name: &str) -> ApiResult<String> {
        self.query(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("query parameter [{name}] is required")))
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text; bytes that are not UTF-8 become U+FFFD, as the
    /// Fetch API's `text()` does.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Decodes a URL query (`a=1&b=x+y`) into pairs.
pub fn decode_query(raw: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub const JSON: &str = "application/json";
pub const OCTET_STREAM: &str = "application/octet-stream";

/// A complete response: its status, headers (`Content-Type` among them)
/// and body. Bodies are whole: the views bound what they assemble (see
/// `views::MAX_FILE_RESPONSE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Shared, not copied: an object's bytes go out as the store gave them.
    pub body: Bytes,
}

impl ApiResponse {
    /// Status 200 with `value` as compact JSON (the Worker's
    /// `Response::from_json` writes the same bytes).
    pub fn json<T: Serialize>(value: &T) -> ApiResult<ApiResponse> {
        let body = serde_json::to_vec(value)
            .map_err(|e| ApiError::new(500, "exception", format!("JSON encoding: {e}")))?;
        Ok(ApiResponse::bytes(200, JSON, body))
    }

    /// `body` with `status` and a content type.
    pub fn bytes(status: u16, content_type: &str, body: impl Into<Bytes>) -> ApiResponse {
        ApiResponse {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn with_status(mut self, status: u16) -> ApiResponse {
        self.status = status;
        self
    }

    /// Adds a header, replacing one of the same name.
    pub fn with_header(mut self, name: &str, value: &str) -> ApiResponse {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_as_forms_do() {
        let r = ApiRequest::new("get", "/api/repos/x/snapshots", Some("a=1&b=x+y%2Fz&a=2&c"));
        assert_eq!(r.method, "GET");
        assert_eq!(r.query("a").as_deref(), Some("1"));
        assert_eq!(r.query("b").as_deref(), Some("x y/z"));
        assert_eq!(r.query("c").as_deref(), Some(""));
        assert!(r.required("c").is_err());
        assert!(r.required("d").is_err());
    }

    #[test]
    fn header_names_ignore_case() {
        let r = ApiRequest::new("GET", "/", None).with_header("range", "bytes=0-1");
        assert_eq!(r.header("Range"), Some("bytes=0-1"));
        let resp = ApiResponse::bytes(200, OCTET_STREAM, vec![]).with_header("content-type", JSON);
        assert_eq!(resp.headers.len(), 1);
        assert_eq!(resp.header("Content-Type"), Some(JSON));
    }
}
