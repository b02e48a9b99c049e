//! Reading request bodies: bounded in size, JSON objects only, and top-level
//! keys checked against what the endpoint takes, so nothing is changed by a
//! request the node only half understood.

use axum::body::Body;
use serde_json::{Map, Value};

use crate::node::reply::EsError;

/// The body as a JSON object; `None` when the request has no body.
pub async fn read_object(body: Body, limit: usize) -> Result<Option<Map<String, Value>>, EsError> {
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| EsError::body_too_large(limit))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| EsError::json_syntax(format!("[{}:{}] {e}", e.line(), e.column())))?;
    match value {
        Value::Object(map) => Ok(Some(map)),
        other => Err(EsError::parse(format!(
            "request body must be a JSON object, not {}",
            kind(&other)
        ))),
    }
}

/// Refuses top-level keys the endpoint does not take.
pub fn only_known(body: &Map<String, Value>, known: &[&str]) -> Result<(), EsError> {
    match body.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(EsError::illegal_argument(format!("Unknown parameter {k}"))),
        None => Ok(()),
    }
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
