//! Responses: JSON bodies, and errors shaped like Elasticsearch's
//! (`{"error":{"type":..,"reason":..},"status":N}`).

use serde::Serialize;
use serde_json::json;
use worker::{Headers, Response};

use crate::error::Error;
use crate::storage::StorageError;

/// A failed request: the HTTP status, Elasticsearch's error type, and a
/// one-line reason.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub reason: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: u16, kind: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            reason: reason.into(),
        }
    }

    pub fn bad_request(reason: impl Into<String>) -> ApiError {
        Self::new(400, "illegal_argument_exception", reason)
    }

    pub fn not_found(reason: impl Into<String>) -> ApiError {
        Self::new(404, "resource_not_found_exception", reason)
    }

    pub fn into_response(self) -> worker::Result<Response> {
        let body = json!({
            "error": {"type": self.kind, "reason": self.reason},
            "status": self.status,
        });
        let mut r = Response::from_json(&body)?.with_status(self.status);
        if self.status == 401 {
            r.headers_mut()
                .set("WWW-Authenticate", "Bearer realm=\"snapkeep\"")?;
        }
        Ok(r)
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> ApiError {
        let reason = e.to_string();
        match e {
            StorageError::NotFound { .. } => Self::new(404, "resource_not_found_exception", reason),
            StorageError::AlreadyExists { .. } => Self::new(
                crate::storage::edge_wire::EXISTS_STATUS,
                "version_conflict_engine_exception",
                reason,
            ),
            StorageError::InvalidKey { .. } => Self::bad_request(reason),
            StorageError::InvalidRange { .. } => {
                Self::new(416, "requested_range_not_satisfiable", reason)
            }
            StorageError::PermissionDenied { .. } | StorageError::ReadOnly { .. } => {
                Self::new(403, "security_exception", reason)
            }
            StorageError::Unavailable { .. } | StorageError::TimedOut { .. } => {
                Self::new(503, "repository_exception", reason)
            }
            _ => Self::new(500, "repository_exception", reason),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let reason = e.to_string();
        match e {
            Error::Storage(s) => s.into(),
            Error::NotARepository(_) => Self::new(404, "repository_missing_exception", reason),
            Error::SnapshotMissing(_) => Self::new(404, "snapshot_missing_exception", reason),
            Error::NotFound(_) => Self::not_found(reason),
            Error::Name(_)
            | Error::Selection(_)
            | Error::Usage(_)
            | Error::OutOfMemory { .. }
            | Error::UnsafePath { .. }
            | Error::BadLocation(_) => Self::bad_request(reason),
            Error::Integrity { .. }
            | Error::BlobMissing { .. }
            | Error::Format { .. }
            | Error::DamagedObject { .. }
            | Error::DamagedSnapshot { .. } => {
                Self::new(500, "repository_verification_exception", reason)
            }
            _ => Self::new(500, "repository_exception", reason),
        }
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> ApiError {
        Self::new(500, "exception", e.to_string())
    }
}

/// A JSON response.
pub fn json_response<T: Serialize>(value: &T) -> ApiResult<Response> {
    Ok(Response::from_json(value)?)
}

/// Raw bytes with a content type.
pub fn bytes_response(body: Vec<u8>, status: u16, headers: Headers) -> ApiResult<Response> {
    Ok(Response::from_bytes(body)?
        .with_status(status)
        .with_headers(headers))
}
