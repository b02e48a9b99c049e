//! The clone-snapshot body (reference 3.2): `{"indices": ...}`, required,
//! plus the index options ES accepts and snapkeep has no use for.

use super::body::{object, string_list, unknown, INDEX_OPTIONS};
use super::errors::EsError;

/// The indices a clone names: a comma list or an array, patterns allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneSnapshotRequest {
    pub indices: Vec<String>,
}

impl CloneSnapshotRequest {
    /// An empty body is refused (ES reads the body with its content parser,
    /// which needs one); a body without `indices` names none, which the
    /// clone then refuses as an empty selection.
    pub fn parse(body: &[u8]) -> Result<CloneSnapshotRequest, EsError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(EsError::body_required());
        }
        let mut indices = Vec::new();
        for (name, v) in object(body)? {
            match name.as_str() {
                "indices" => indices = string_list(&v, "indices")?,
                n if INDEX_OPTIONS.contains(&n) => {}
                other => return Err(unknown(other)),
            }
        }
        Ok(CloneSnapshotRequest { indices })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn indices_come_as_a_list_or_an_array() {
        let r = CloneSnapshotRequest::parse(br#"{"indices":"a,b*"}"#).unwrap();
        assert_eq!(r.indices, ["a", "b*"]);
        let r =
            CloneSnapshotRequest::parse(br#"{"indices":["a"],"ignore_unavailable":true}"#).unwrap();
        assert_eq!(r.indices, ["a"]);
    }

    #[test]
    fn a_missing_body_or_unknown_member_is_refused() {
        assert_eq!(
            CloneSnapshotRequest::parse(b" ").unwrap_err().reason,
            "request body is required"
        );
        let e = CloneSnapshotRequest::parse(br#"{"indices":"a","colour":1}"#).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.reason.contains("colour"), "{}", e.reason);
    }
}
