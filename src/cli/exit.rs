//! Exit statuses a script or monitoring can branch on (listed in
//! `snapkeep --help`, `cli::args`), and errors as
//! Elasticsearch's error object for `--json`. The classes follow the
//! error's meaning (the same mapping the API answers with), not its text.

use serde_json::{json, Value};

use crate::api::ApiError;
use crate::core::plan::copy::CopyError;
use crate::core::policy::selection::SelectionError;
use crate::error::Error;
use crate::storage::StorageError;

/// Everything worked.
pub const SUCCESS: u8 = 0;
/// Failed for any reason without its own status below.
pub const FAILURE: u8 = 1;
/// The command was used wrongly: arguments, options, names, a policy.
pub const USAGE: u8 = 2;
/// The snapshot was committed as PARTIAL: some indices or files are
/// missing from it (restic uses 3 for the same).
pub const PARTIAL: u8 = 3;
/// A repository, bucket, snapshot, index or policy that does not exist.
pub const NOT_FOUND: u8 = 4;
/// A missing or wrong credential, or a permission the storage or node
/// refused.
pub const DENIED: u8 = 5;
/// The storage or node could not be reached, or timed out.
pub const UNREACHABLE: u8 = 6;

/// The exit status for `e`.
pub fn code(e: &Error) -> u8 {
    match e {
        Error::Partial { .. } => PARTIAL,
        Error::Usage(_)
        | Error::NoWritableLayer { .. }
        | Error::UnsupportedLayer { .. }
        | Error::BadLocation(_)
        | Error::BadPolicy { .. }
        | Error::Name(_)
        | Error::Copy(CopyError::ChunkerMismatch { .. } | CopyError::NameTaken(_)) => USAGE,
        Error::Selection(SelectionError::NoSuchIndex(_) | SelectionError::NoMatch(_))
        | Error::Storage(StorageError::BucketMissing { .. }) => NOT_FOUND,
        Error::NodeUnreachable { .. } => UNREACHABLE,
        Error::NodeRequest { status, .. } => by_status(*status),
        other => by_status(api_error(other).status),
    }
}

fn by_status(status: u16) -> u8 {
    match status {
        400 => USAGE,
        401 | 403 => DENIED,
        404 => NOT_FOUND,
        503 | 504 => UNREACHABLE,
        _ => FAILURE,
    }
}

/// The API's classification of `e` (its status and Elasticsearch type).
fn api_error(e: &Error) -> ApiError {
    let reason = crate::cli::one_line(&e.to_string());
    let mapped = match e {
        Error::Storage(s) => ApiError::from(s.clone()),
        Error::NotARepository(_) => ApiError::new(404, "repository_missing_exception", ""),
        Error::SnapshotMissing(_) => ApiError::new(404, "snapshot_missing_exception", ""),
        Error::NotFound(_) => ApiError::not_found(""),
        Error::SnapshotPinned { .. } => {
            ApiError::new(409, "snapshot_in_use_deletion_exception", "")
        }
        Error::ChangedDuringRestore { .. } => {
            ApiError::new(409, "file_changed_during_restore_exception", "")
        }
        Error::Selection(SelectionError::NoSuchIndex(_) | SelectionError::NoMatch(_)) => {
            ApiError::new(404, "index_not_found_exception", "")
        }
        Error::Name(_)
        | Error::Copy(CopyError::ChunkerMismatch { .. } | CopyError::NameTaken(_))
        | Error::Selection(_)
        | Error::Usage(_)
        | Error::BadPolicy { .. }
        | Error::UnsafePath { .. }
        | Error::BadLocation(_) => ApiError::bad_request(""),
        Error::NodeUnreachable { .. } => ApiError::new(503, "connect_exception", ""),
        Error::WrongPassword { .. } | Error::Encrypted(_) | Error::Password(_) => {
            ApiError::new(401, "security_exception", "")
        }
        Error::LastKeySlot(_) => ApiError::bad_request(""),
        _ => ApiError::new(500, "snapkeep_exception", ""),
    };
    let mapped = match e {
        Error::Storage(StorageError::BucketMissing { .. }) => {
            ApiError::new(404, "repository_missing_exception", "")
        }
        _ => mapped,
    };
    ApiError { reason, ..mapped }
}

/// `e` as Elasticsearch's error object: the node's own when it answered
/// with one.
pub fn error_json(e: &Error) -> Value {
    if let Error::NodeRequest { body, .. } = e {
        if body["error"].is_object() {
            return body.clone();
        }
    }
    if let Error::NodeRequest {
        status,
        kind,
        reason,
        ..
    } = e
    {
        return json!({"error": {"root_cause": [{"type": kind, "reason": reason}],
            "type": kind, "reason": reason}, "status": status});
    }
    let a = api_error(e);
    let reason = super::without_os_error_codes(&a.reason);
    json!({"error": {"root_cause": [{"type": a.kind, "reason": reason}],
        "type": a.kind, "reason": reason}, "status": a.status})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_has_its_status() {
        let storage = |s: StorageError| Error::Storage(s);
        let cases = [
            (Error::Usage("x".into()), USAGE),
            (Error::NotARepository("/r".into()), NOT_FOUND),
            (Error::SnapshotMissing("s".into()), NOT_FOUND),
            (
                Error::Selection(SelectionError::NoSuchIndex("i".into())),
                NOT_FOUND,
            ),
            (
                storage(StorageError::BucketMissing { bucket: "b".into() }),
                NOT_FOUND,
            ),
            (
                storage(StorageError::PermissionDenied {
                    key: "k".into(),
                    detail: "d".into(),
                }),
                DENIED,
            ),
            (
                storage(StorageError::Unavailable { detail: "d".into() }),
                UNREACHABLE,
            ),
            (
                Error::NodeUnreachable {
                    url: "u".into(),
                    reason: "r".into(),
                },
                UNREACHABLE,
            ),
            (Error::CheckFailed(2), FAILURE),
            (
                Error::Partial {
                    snapshot: "s".into(),
                    failures: 1,
                    first: "i/f: unreadable".into(),
                },
                PARTIAL,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(code(&e), want, "{e}");
        }
    }

    #[test]
    fn errors_become_elasticsearchs_object_in_one_line() {
        let v = error_json(&Error::SnapshotMissing("nightly\nx".into()));
        assert_eq!(v["status"], 404);
        assert_eq!(v["error"]["type"], "snapshot_missing_exception");
        assert_eq!(v["error"]["reason"], "snapshot [nightly\\nx] is missing");
        assert_eq!(
            v["error"]["root_cause"][0]["type"],
            "snapshot_missing_exception"
        );
        let node = json!({"error": {"type": "resource_not_found_exception", "reason": "r"}, "status": 404});
        let e = Error::NodeRequest {
            status: 404,
            kind: "resource_not_found_exception".into(),
            reason: "r".into(),
            body: node.clone(),
        };
        assert_eq!(error_json(&e), node);
        assert_eq!(code(&e), NOT_FOUND);
    }
}
