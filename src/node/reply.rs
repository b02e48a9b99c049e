//! Answers in Elasticsearch's shapes: the error object and the HTTP
//! layer's string errors come from `core::es::errors`; this module only
//! turns them into HTTP responses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

pub use crate::core::es::errors::{EsError, PlainError, WWW_AUTHENTICATE};

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// A 401 also carries its challenges as `WWW-Authenticate` headers, one
/// per scheme, as Elasticsearch sends them.
impl IntoResponse for EsError {
    fn into_response(self) -> Response {
        let mut response = (status(self.status), json_bytes(&self)).into_response();
        if self.status == 401 {
            for c in WWW_AUTHENTICATE {
                response
                    .headers_mut()
                    .append(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
            }
        }
        response
    }
}

impl IntoResponse for PlainError {
    fn into_response(self) -> Response {
        (status(self.status), json_bytes(&self)).into_response()
    }
}

/// Marks a response whose `Content-Type` is its own (the `/api` answers
/// and the inspector's files), which the outer layer then leaves alone.
#[derive(Debug, Clone, Copy)]
pub struct OwnContentType;

/// A JSON answer (the content type is set for every response by the
/// server's outer layer).
pub fn ok(value: Value) -> Response {
    (StatusCode::OK, json_bytes(&value)).into_response()
}

/// 413: a body over the node's `max_body_bytes`.
pub fn body_too_large(limit: usize) -> EsError {
    EsError::new(
        413,
        "illegal_argument_exception",
        format!("request body is larger than the node's limit of {limit} bytes (max_body_bytes)"),
    )
}

/// 500: a failure of the node itself (its state folder).
pub fn internal(reason: impl Into<String>) -> EsError {
    EsError::new(500, "exception", reason)
}
