//! Errors shaped like Elasticsearch's
//! (`{"error":{"type":..,"reason":..},"status":N}`), the shape the inspector
//! and the edge client read.

use serde_json::json;

use super::http::ApiResponse;
use crate::error::Error;
use crate::storage::StorageError;

/// A failed request: the HTTP status, Elasticsearch's error type, and a
/// one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
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

    /// The error as a JSON response; a 401 names the scheme to use.
    pub fn into_response(self) -> ApiResponse {
        let body = json!({
            "error": {"type": self.kind, "reason": self.reason},
            "status": self.status,
        });
        let response = ApiResponse::json(&body)
            .unwrap_or_else(|_| ApiResponse::bytes(500, super::http::JSON, Vec::new()))
            .with_status(self.status);
        if self.status == 401 {
            response.with_header("WWW-Authenticate", "Bearer realm=\"snapkeep\"")
        } else {
            response
        }
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
            // The shell serving the views cannot open the repository: no
            // token changes that, so not a 401.
            Error::Encrypted(_) | Error::WrongReadKey(_) => {
                Self::new(403, "repository_encrypted_exception", reason)
            }
            Error::SnapshotMissing(_) => Self::new(404, "snapshot_missing_exception", reason),
            Error::NotFound(_) => Self::not_found(reason),
            Error::SnapshotPinned { .. } => {
                Self::new(409, "snapshot_in_use_deletion_exception", reason)
            }
            Error::Name(_)
            | Error::Selection(_)
            | Error::NoWritableLayer { .. }
            | Error::UnsupportedLayer { .. }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_elasticsearchs_shape() {
        let r = ApiError::from(Error::SnapshotMissing("nightly".into())).into_response();
        assert_eq!(r.status, 404);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["status"], 404);
        assert_eq!(v["error"]["type"], "snapshot_missing_exception");
        assert!(v["error"]["reason"].as_str().unwrap().contains("nightly"));
        assert_eq!(v.as_object().unwrap().len(), 2);
        assert_eq!(r.header("WWW-Authenticate"), None);
        let r = ApiError::new(401, "security_exception", "no token").into_response();
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"snapkeep\"")
        );
        assert_eq!(r.header("Content-Type"), Some("application/json"));
    }
}
