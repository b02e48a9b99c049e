//! Reading JSON request bodies the way ES's `source()` methods do: the
//! body must be JSON (`x_content_parse_exception` otherwise) and an object,
//! and each member is checked for its type with ES's reason text.
//!
//! Unknown members are refused with `Unknown parameter <name>` in every
//! body (issue #15). ES itself refuses them only in restore and ignores
//! them in create and repository registration (reference 8.1); no client
//! checked sends any.

use serde_json::{Map, Value};

use super::errors::EsError;

/// Index options ES reads from the same bodies (`IndicesOptions.fromMap`).
pub const INDEX_OPTIONS: [&str; 4] = [
    "expand_wildcards",
    "allow_no_indices",
    "ignore_unavailable",
    "ignore_throttled",
];

/// The body as a JSON object; an empty body is an empty object.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, EsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(EsError::parse("request body must be a JSON object")),
        Err(e) => Err(EsError::from_json_error(&e)),
    }
}

/// 400 `Unknown parameter <name>`.
pub fn unknown(name: &str) -> EsError {
    EsError::illegal_argument(format!("Unknown parameter {name}"))
}

/// `nodeBooleanValue`: a JSON boolean or the strings `true`/`false`.
pub fn boolean(v: &Value, name: &str) -> Result<bool, EsError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        _ => Err(EsError::illegal_argument(format!(
            "Could not convert [{name}] to boolean"
        ))),
    }
}

/// The `feature_states` member of create and restore: an array of names
/// (ES refuses a plain string here, unlike `indices`).
pub fn feature_states(v: &Value) -> Result<Vec<String>, EsError> {
    if !v.is_array() {
        return Err(EsError::illegal_argument(
            "malformed feature_states section, should be an array of strings",
        ));
    }
    string_list(v, "feature_states")
}

/// A comma-separated string or an array of strings; `section` names it
/// in ES's `malformed <section> section, should be an array of strings`.
pub fn string_list(v: &Value, section: &str) -> Result<Vec<String>, EsError> {
    let malformed = || {
        EsError::illegal_argument(format!(
            "malformed {section} section, should be an array of strings"
        ))
    };
    match v {
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(malformed))
            .collect(),
        _ => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn bodies_must_be_json_objects() {
        assert_eq!(object(b"  \n").unwrap(), Map::new());
        assert_eq!(object(br#"{"a":1}"#).unwrap()["a"], 1);
        assert_eq!(object(b"[1]").unwrap_err().kind, "parse_exception");
        let e = object(b"{\"a\":").unwrap_err();
        assert_eq!((e.status, e.kind), (400, "x_content_parse_exception"));
    }

    #[test]
    fn members_are_typed_with_es_reasons() {
        assert_eq!(boolean(&json!(true), "partial"), Ok(true));
        assert_eq!(boolean(&json!("false"), "partial"), Ok(false));
        assert_eq!(
            boolean(&json!(1), "partial").unwrap_err().reason,
            "Could not convert [partial] to boolean"
        );
        assert_eq!(
            string_list(&json!("a, b,,c"), "indices").unwrap(),
            ["a", "b", "c"]
        );
        assert_eq!(
            string_list(&json!(["a", "b"]), "indices").unwrap(),
            ["a", "b"]
        );
        for bad in [json!(1), json!(["a", 2]), json!({"a": 1})] {
            assert_eq!(
                string_list(&bad, "indices").unwrap_err().reason,
                "malformed indices section, should be an array of strings"
            );
        }
        assert_eq!(unknown("x").reason, "Unknown parameter x");
    }
}
