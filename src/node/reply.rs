//! Elasticsearch's error object and the few answers the HTTP layer gives
//! in its own shapes (string `error` members for routing and media-type
//! failures).
//!
//! Meant to give way to `core::es::errors` once that module lands; the
//! node only builds errors through the constructors here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// `{"error":{"root_cause":[..],"type","reason"},"status":N}`.
#[derive(Debug, Clone)]
pub struct EsError {
    pub status: StatusCode,
    pub kind: String,
    pub reason: String,
    /// Extra members of the error object (e.g. `header` on a 401).
    pub extra: Map<String, Value>,
    /// The inner error, reported as `caused_by` and as the root cause.
    pub caused_by: Option<Box<EsError>>,
    /// `WWW-Authenticate` values to send as response headers.
    pub challenges: Vec<&'static str>,
}

impl EsError {
    pub fn new(status: StatusCode, kind: &str, reason: impl Into<String>) -> EsError {
        EsError {
            status,
            kind: kind.to_string(),
            reason: reason.into(),
            extra: Map::new(),
            caused_by: None,
            challenges: Vec::new(),
        }
    }

    pub fn illegal_argument(reason: impl Into<String>) -> EsError {
        Self::new(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            reason,
        )
    }

    pub fn parse(reason: impl Into<String>) -> EsError {
        Self::new(StatusCode::BAD_REQUEST, "parse_exception", reason)
    }

    /// Malformed JSON (Elasticsearch 8 reports `x_content_parse_exception`).
    pub fn json_syntax(reason: impl Into<String>) -> EsError {
        Self::new(StatusCode::BAD_REQUEST, "x_content_parse_exception", reason)
    }

    pub fn repository_missing(name: &str) -> EsError {
        Self::new(
            StatusCode::NOT_FOUND,
            "repository_missing_exception",
            format!("[{name}] missing"),
        )
    }

    /// A repository that cannot be used: `[<repo>] <detail>`.
    pub fn repository(name: &str, detail: impl std::fmt::Display) -> EsError {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "repository_exception",
            format!("[{name}] {detail}"),
        )
    }

    pub fn repository_verification(name: &str, detail: impl std::fmt::Display) -> EsError {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "repository_verification_exception",
            format!("[{name}] {detail}"),
        )
    }

    pub fn body_too_large(limit: usize) -> EsError {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "illegal_argument_exception",
            format!(
                "request body is larger than the node's limit of {limit} bytes (max_body_bytes)"
            ),
        )
    }

    pub fn security(status: StatusCode, reason: impl Into<String>) -> EsError {
        Self::new(status, "security_exception", reason)
    }

    /// Wraps `self` under an outer error, as ES reports `[r] failed to
    /// create repository` with the detail in `caused_by`.
    pub fn caused(self, outer_reason: impl Into<String>) -> EsError {
        let mut outer = EsError::new(self.status, &self.kind, outer_reason);
        outer.caused_by = Some(Box::new(self));
        outer
    }

    fn object(&self, with_cause: bool) -> Map<String, Value> {
        let mut o = Map::new();
        o.insert("type".into(), json!(self.kind));
        o.insert("reason".into(), json!(self.reason));
        o.extend(self.extra.clone());
        if let (true, Some(c)) = (with_cause, &self.caused_by) {
            o.insert("caused_by".into(), Value::Object(c.object(true)));
        }
        o
    }

    /// The innermost error, which ES lists as the root cause.
    fn root(&self) -> &EsError {
        match &self.caused_by {
            Some(c) => c.root(),
            None => self,
        }
    }

    pub fn body(&self) -> Value {
        let mut error = self.object(true);
        let root = Value::Object(self.root().object(false));
        error.insert("root_cause".into(), json!([root]));
        json!({"error": error, "status": self.status.as_u16()})
    }
}

impl IntoResponse for EsError {
    fn into_response(self) -> Response {
        let mut response = (self.status, json_bytes(&self.body())).into_response();
        for c in &self.challenges {
            response
                .headers_mut()
                .append(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        response
    }
}

/// An error the HTTP layer reports with a string `error` member.
pub fn plain_error(status: StatusCode, message: String) -> Response {
    (
        status,
        json_bytes(&json!({"error": message, "status": status.as_u16()})),
    )
        .into_response()
}

/// A JSON answer (the content type is set for every response by the
/// server's outer layer).
pub fn ok(value: Value) -> Response {
    (StatusCode::OK, json_bytes(&value)).into_response()
}

fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_cause_is_the_innermost_error() {
        let inner = EsError::repository(
            "r",
            "location [/x] doesn't match any of the locations specified by path.repo",
        );
        let body = inner
            .clone()
            .caused("[r] failed to create repository")
            .body();
        assert_eq!(body["status"], 500);
        assert_eq!(body["error"]["type"], "repository_exception");
        assert_eq!(body["error"]["reason"], "[r] failed to create repository");
        assert_eq!(body["error"]["caused_by"]["reason"], inner.reason);
        assert_eq!(body["error"]["root_cause"][0]["reason"], inner.reason);
        assert!(body["error"]["root_cause"][0].get("caused_by").is_none());
    }
}
