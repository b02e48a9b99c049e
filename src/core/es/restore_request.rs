//! The restore body (reference 3.5), strictly parsed as ES's
//! `RestoreSnapshotRequest.source` does.
//!
//! `index_settings` and a non-empty `ignore_index_settings` are refused:
//! a snapkeep index is a directory, with no index settings to change.

use serde_json::Value;

use super::body::{boolean, feature_states, object, string_list, unknown, INDEX_OPTIONS};
use super::errors::EsError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRequest {
    /// Index names and patterns; empty means all in the snapshot.
    pub indices: Vec<String>,
    pub ignore_unavailable: bool,
    pub include_global_state: bool,
    pub feature_states: Option<Vec<String>>,
    pub partial: bool,
    pub include_aliases: bool,
    /// A Java-style regex; `$1` groups in the replacement.
    pub rename_pattern: Option<String>,
    pub rename_replacement: Option<String>,
}

impl Default for RestoreRequest {
    fn default() -> Self {
        RestoreRequest {
            indices: Vec::new(),
            ignore_unavailable: false,
            include_global_state: false,
            feature_states: None,
            partial: false,
            include_aliases: true,
            rename_pattern: None,
            rename_replacement: None,
        }
    }
}

fn text(v: &Value, name: &str) -> Result<String, EsError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| EsError::illegal_argument(format!("malformed {name}")))
}

fn refused(what: &str) -> EsError {
    EsError::illegal_argument(format!(
        "{what} is not supported: snapkeep indices are directories without index settings"
    ))
}

impl RestoreRequest {
    pub fn parse(body: &[u8]) -> Result<RestoreRequest, EsError> {
        let mut req = RestoreRequest::default();
        for (name, v) in object(body)? {
            match name.as_str() {
                "indices" => req.indices = string_list(&v, "indices")?,
                "ignore_unavailable" => req.ignore_unavailable = boolean(&v, &name)?,
                "include_global_state" => req.include_global_state = boolean(&v, &name)?,
                "partial" => req.partial = boolean(&v, &name)?,
                "include_aliases" => req.include_aliases = boolean(&v, &name)?,
                "feature_states" => req.feature_states = Some(feature_states(&v)?),
                "rename_pattern" => req.rename_pattern = Some(text(&v, &name)?),
                "rename_replacement" => req.rename_replacement = Some(text(&v, &name)?),
                "index_settings" => {
                    if !v.is_object() {
                        return Err(EsError::illegal_argument(
                            "malformed index_settings section",
                        ));
                    }
                    return Err(refused("index_settings"));
                }
                "ignore_index_settings" => {
                    if !string_list(&v, "ignore_index_settings")?.is_empty() {
                        return Err(refused("ignore_index_settings"));
                    }
                }
                n if INDEX_OPTIONS.contains(&n) => {}
                other => return Err(unknown(other)),
            }
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn defaults_are_es_defaults() {
        let r = RestoreRequest::parse(b"").unwrap();
        assert_eq!(r, RestoreRequest::default());
        assert!(!r.include_global_state && r.include_aliases);
    }

    #[test]
    fn reads_renames_and_flags() {
        let body = br#"{"indices":["logs-*"],"rename_pattern":"logs-(.+)","rename_replacement":"restored-$1",
            "include_global_state":true,"partial":"true","ignore_unavailable":false,"ignore_index_settings":[]}"#;
        let r = RestoreRequest::parse(body).unwrap();
        assert_eq!(r.indices, ["logs-*"]);
        assert_eq!(r.rename_pattern.as_deref(), Some("logs-(.+)"));
        assert_eq!(r.rename_replacement.as_deref(), Some("restored-$1"));
        assert!(r.include_global_state && r.partial);
    }

    #[test]
    fn unknown_and_malformed_members_are_refused() {
        let reason = |b: &str| RestoreRequest::parse(b.as_bytes()).unwrap_err().reason;
        assert_eq!(reason(r#"{"rename":"x"}"#), "Unknown parameter rename");
        assert_eq!(
            reason(r#"{"rename_pattern":1}"#),
            "malformed rename_pattern"
        );
        assert_eq!(
            reason(r#"{"rename_replacement":[]}"#),
            "malformed rename_replacement"
        );
        assert_eq!(
            reason(r#"{"index_settings":1}"#),
            "malformed index_settings section"
        );
        assert!(
            reason(r#"{"index_settings":{"index.number_of_replicas":0}}"#)
                .starts_with("index_settings is not supported")
        );
        assert!(
            reason(r#"{"ignore_index_settings":"index.refresh_interval"}"#)
                .starts_with("ignore_index_settings is not supported")
        );
        assert_eq!(
            reason(r#"{"indices":{"a":1}}"#),
            "malformed indices section, should be an array of strings"
        );
    }
}
