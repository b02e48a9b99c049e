//! Request media types and Elasticsearch's compatibility mode
//! (`application/vnd.elasticsearch+json; compatible-with=N`), accepted for
//! N = 7, 8 and 9 so that the 8.x and 9.x clients both work.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::node::reply::{EsError, PlainError};

/// What the node answers with.
pub const JSON: &str = "application/json";
pub const COMPATIBLE_JSON: &str = "application/vnd.elasticsearch+json;compatible-with=8";

/// Body types the node reads.
const BODY_TYPES: &[&str] = &[
    "application/json",
    "application/x-ndjson",
    "application/vnd.elasticsearch+json",
    "application/vnd.elasticsearch+x-ndjson",
];

/// A header's mime type and `compatible-with` version, if any.
fn parse(value: &str) -> (String, Option<String>) {
    let mut parts = value.split(';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let version = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("compatible-with"))
            .then(|| v.trim().trim_matches('"').to_string())
    });
    (mime, version)
}

/// Why the media-type headers are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// 406, with a string `error` as Elasticsearch answers (the header
    /// as sent).
    Unsupported(String),
    /// 400 `status_exception`: a compatibility version out of range, or
    /// two that differ.
    Version(String),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Unsupported(content_type) => {
                PlainError::unsupported_content_type(&content_type).into_response()
            }
            Refused::Version(m) => EsError::status_exception(400, m).into_response(),
        }
    }
}

/// Checks `Content-Type` (when a body comes) and `Accept`; returns whether
/// the client asked for compatibility mode.
pub fn check(headers: &HeaderMap, has_body: bool) -> Result<bool, Refused> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let accept = text(header::ACCEPT).map(parse);
    let content = text(header::CONTENT_TYPE).filter(|_| has_body).map(parse);
    if let Some((mime, _)) = &content {
        if !BODY_TYPES.contains(&mime.as_str()) {
            let raw = text(header::CONTENT_TYPE).unwrap_or_default();
            return Err(Refused::Unsupported(raw.to_string()));
        }
    }
    for (name, parsed) in [("Accept", &accept), ("Content-Type", &content)] {
        if let Some((_, Some(v))) = parsed {
            if !["7", "8", "9"].contains(&v.as_str()) {
                return Err(Refused::Version(format!(
                    "{name} version must be either version 8 or 7, but found {v}. {name}={}",
                    text(if name == "Accept" {
                        header::ACCEPT
                    } else {
                        header::CONTENT_TYPE
                    })
                    .unwrap_or_default()
                )));
            }
        }
    }
    if let (Some((_, Some(a))), Some((_, Some(c)))) = (&accept, &content) {
        if a != c {
            return Err(Refused::Version(format!(
                "A compatible version is required on both Content-Type and Accept headers if either one has requested a compatible version and the compatible versions must match. Accept={}, Content-Type={}",
                text(header::ACCEPT).unwrap_or_default(),
                text(header::CONTENT_TYPE).unwrap_or_default()
            )));
        }
    }
    let compatible =
        |p: &Option<(String, Option<String>)>| p.as_ref().is_some_and(|(_, v)| v.is_some());
    Ok(compatible(&accept) || compatible(&content))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn json_and_compatible_types_pass() {
        assert_eq!(
            check(
                &headers(&[(header::CONTENT_TYPE, "application/json")]),
                true
            )
            .ok(),
            Some(false)
        );
        let v8 = "application/vnd.elasticsearch+json; compatible-with=8";
        let h = headers(&[(header::CONTENT_TYPE, v8), (header::ACCEPT, v8)]);
        assert_eq!(check(&h, true).ok(), Some(true));
        let v9 = "application/vnd.elasticsearch+json; compatible-with=9";
        assert_eq!(
            check(&headers(&[(header::ACCEPT, v9)]), false).ok(),
            Some(true)
        );
    }

    #[test]
    fn other_types_and_versions_are_refused() {
        let form = headers(&[(header::CONTENT_TYPE, "application/x-www-form-urlencoded")]);
        assert!(matches!(check(&form, true), Err(Refused::Unsupported(_))));
        assert!(
            check(&form, false).is_ok(),
            "no body, no content type to judge"
        );
        let v6 = headers(&[(
            header::ACCEPT,
            "application/vnd.elasticsearch+json;compatible-with=6",
        )]);
        assert!(matches!(check(&v6, false), Err(Refused::Version(_))));
        let mixed = headers(&[
            (
                header::ACCEPT,
                "application/vnd.elasticsearch+json;compatible-with=7",
            ),
            (
                header::CONTENT_TYPE,
                "application/vnd.elasticsearch+json;compatible-with=8",
            ),
        ]);
        assert!(matches!(check(&mixed, true), Err(Refused::Version(_))));
    }
}
