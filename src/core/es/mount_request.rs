//! The body of `POST /_snapshot/<repo>/<snap>/_mount` (searchable
//! snapshots): `index` (required), `renamed_index`, and the index settings
//! ES takes, which a folder has no use for but accepts.

use serde_json::Value;

use super::body::{object, string_list, unknown};
use super::errors::EsError;
use crate::core::format::naming::validate_name;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRequest {
    /// The index in the snapshot.
    pub index: String,
    /// The name it is mounted as (the index's own by default).
    pub renamed_index: String,
}

impl MountRequest {
    pub fn parse(body: &[u8]) -> Result<MountRequest, EsError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(EsError::body_required());
        }
        let (mut index, mut renamed) = (None, None);
        for (name, v) in object(body)? {
            match name.as_str() {
                "index" => index = Some(text(&v, "index")?),
                "renamed_index" => renamed = Some(text(&v, "renamed_index")?),
                "index_settings" => {}
                "ignore_index_settings" => {
                    string_list(&v, "ignore_index_settings")?;
                }
                other => return Err(unknown(other)),
            }
        }
        let index =
            index.ok_or_else(|| EsError::action_request_validation(&["index name is missing"]))?;
        let renamed_index = renamed.unwrap_or_else(|| index.clone());
        validate_name("index", &renamed_index)
            .map_err(|e| EsError::new(400, "invalid_index_name_exception", e.to_string()))?;
        Ok(MountRequest {
            index,
            renamed_index,
        })
    }
}

fn text(v: &Value, field: &str) -> Result<String, EsError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| EsError::parse(format!("[{field}] must be a string")))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn the_index_is_required_and_renamed_defaults_to_it() {
        let r = MountRequest::parse(br#"{"index":"logs","index_settings":{"x":1}}"#).unwrap();
        assert_eq!(
            (r.index.as_str(), r.renamed_index.as_str()),
            ("logs", "logs")
        );
        let r = MountRequest::parse(
            br#"{"index":"logs","renamed_index":"old-logs","ignore_index_settings":["a"]}"#,
        )
        .unwrap();
        assert_eq!(r.renamed_index, "old-logs");
        assert_eq!(MountRequest::parse(b"{}").unwrap_err().status, 400);
        assert_eq!(
            MountRequest::parse(b"").unwrap_err().reason,
            "request body is required"
        );
    }

    #[test]
    fn bad_names_and_members_are_refused() {
        let e = MountRequest::parse(br#"{"index":"a","renamed_index":"Bad"}"#).unwrap_err();
        assert_eq!(e.kind, "invalid_index_name_exception");
        let e = MountRequest::parse(br#"{"index":"a","colour":1}"#).unwrap_err();
        assert!(e.reason.contains("colour"), "{}", e.reason);
        assert!(MountRequest::parse(br#"{"index":3}"#).is_err());
    }
}
