//! The create-snapshot body (reference 3.1), strictly parsed.

use serde_json::{Map, Value};

use super::body::{boolean, feature_states, object, string_list, unknown, INDEX_OPTIONS};
use super::errors::EsError;

/// What a create request asks for; defaults are ES's.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSnapshotRequest {
    /// Index names and patterns; empty means all.
    pub indices: Vec<String>,
    pub ignore_unavailable: bool,
    pub include_global_state: bool,
    pub partial: bool,
    pub metadata: Option<Map<String, Value>>,
    /// `None`: ES's default (all with global state, none otherwise).
    pub feature_states: Option<Vec<String>>,
}

impl Default for CreateSnapshotRequest {
    fn default() -> Self {
        CreateSnapshotRequest {
            indices: Vec::new(),
            ignore_unavailable: false,
            include_global_state: true,
            partial: false,
            metadata: None,
            feature_states: None,
        }
    }
}

/// ES refuses metadata that serializes to 1024 bytes or more.
pub const MAX_METADATA_BYTES: usize = 1024;

impl CreateSnapshotRequest {
    pub fn parse(body: &[u8]) -> Result<CreateSnapshotRequest, EsError> {
        let mut req = CreateSnapshotRequest::default();
        for (name, v) in object(body)? {
            match name.as_str() {
                "indices" => req.indices = string_list(&v, "indices")?,
                "ignore_unavailable" => req.ignore_unavailable = boolean(&v, &name)?,
                "include_global_state" => req.include_global_state = boolean(&v, &name)?,
                "partial" => req.partial = boolean(&v, &name)?,
                "feature_states" => req.feature_states = Some(feature_states(&v)?),
                "metadata" => req.metadata = Some(metadata(v)?),
                n if INDEX_OPTIONS.contains(&n) => {}
                other => return Err(unknown(other)),
            }
        }
        Ok(req)
    }

    /// The metadata as string values, the way snapkeep's manifest keeps
    /// it (strings stay as they are, other values as their JSON text).
    pub fn metadata_strings(&self) -> std::collections::BTreeMap<String, String> {
        self.metadata
            .iter()
            .flatten()
            .map(|(k, v)| {
                let s = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                (k.clone(), s)
            })
            .collect()
    }
}

fn metadata(v: Value) -> Result<Map<String, Value>, EsError> {
    let Value::Object(m) = v else {
        return Err(EsError::illegal_argument(
            "malformed metadata, should be an object",
        ));
    };
    let size = serde_json::to_vec(&m).map_or(0, |b| b.len());
    if size >= MAX_METADATA_BYTES {
        return Err(EsError::action_request_validation(&[format!(
            "metadata must be smaller than 1024 bytes, but was [{size}]"
        )]));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn an_empty_body_gives_es_defaults() {
        let r = CreateSnapshotRequest::parse(b"").unwrap();
        assert_eq!(r, CreateSnapshotRequest::default());
        assert!(r.include_global_state && !r.partial && r.indices.is_empty());
    }

    #[test]
    fn every_member_is_read() {
        let body = br#"{"indices":"a,b*","ignore_unavailable":true,"include_global_state":"false",
            "partial":true,"metadata":{"taken_by":"me","n":2},"feature_states":["none"],"expand_wildcards":"all"}"#;
        let r = CreateSnapshotRequest::parse(body).unwrap();
        assert_eq!(r.indices, ["a", "b*"]);
        assert!(r.ignore_unavailable && !r.include_global_state && r.partial);
        assert_eq!(r.feature_states, Some(vec!["none".to_string()]));
        let meta = r.metadata_strings();
        assert_eq!(meta["taken_by"], "me");
        assert_eq!(meta["n"], "2");
    }

    #[test]
    fn bad_members_are_refused_with_es_reasons() {
        let reason = |b: &str| {
            CreateSnapshotRequest::parse(b.as_bytes())
                .unwrap_err()
                .reason
        };
        assert_eq!(reason(r#"{"indexes":["a"]}"#), "Unknown parameter indexes");
        assert_eq!(
            reason(r#"{"indices":5}"#),
            "malformed indices section, should be an array of strings"
        );
        assert_eq!(
            reason(r#"{"metadata":"x"}"#),
            "malformed metadata, should be an object"
        );
        assert_eq!(
            reason(r#"{"feature_states":"a"}"#),
            "malformed feature_states section, should be an array of strings"
        );
        assert_eq!(
            reason(r#"{"partial":"yes"}"#),
            "Could not convert [partial] to boolean"
        );
        let big = format!(r#"{{"metadata":{{"k":"{}"}}}}"#, "x".repeat(1100));
        let e = CreateSnapshotRequest::parse(big.as_bytes()).unwrap_err();
        assert_eq!(e.kind, "action_request_validation_exception");
        assert_eq!(
            e.reason,
            "Validation Failed: 1: metadata must be smaller than 1024 bytes, but was [1108];"
        );
        assert_eq!(
            CreateSnapshotRequest::parse(b"{").unwrap_err().kind,
            "x_content_parse_exception"
        );
    }
}
