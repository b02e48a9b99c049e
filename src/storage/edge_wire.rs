//! The edge object API's wire format, shared by the CLI's client
//! ([`super::edge`], native) and the Worker (`crate::edge`, wasm32): how an
//! object key travels in a URL path, and the JSON page that answers
//! `GET objects?prefix=&cursor=`. Pure, so it builds for every target and is
//! fuzzed natively (fuzz/).

use serde::{Deserialize, Serialize};

/// One page of an object listing; `cursor` is present while more follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub modified_ms: Option<i64>,
}

/// Parses a listing page as the client receives it.
pub fn parse_list_page(bytes: &[u8]) -> Result<ListPage, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Escapes a key for a URL path, keeping its `/` separators: every byte but
/// unreserved ones and `/` becomes `%XX`.
pub fn escape_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undoes `%XX` escapes in a path segment (clients may escape names and
/// keys); a malformed escape is kept as it is, and bytes that are not UTF-8
/// after unescaping become U+FFFD.
pub fn unescape_segment(segment: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Object keys keep their `/` separators; each segment is unescaped, so an
/// escaped `/` (`%2F`) inside a segment stays part of that segment's text.
pub fn unescape_key(key: &str) -> String {
    key.split('/')
        .map(unescape_segment)
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_escaping() {
        assert_eq!(escape_key("packs/ab/cd ef"), "packs/ab/cd%20ef");
        for key in ["packs/ab/cd ef", "snapshots/é%2F.json", "index-3"] {
            assert_eq!(unescape_key(&escape_key(key)), key);
        }
        assert_eq!(unescape_segment("100%"), "100%");
        assert_eq!(unescape_segment("%zz%4"), "%zz%4");
        assert_eq!(unescape_segment("%ff"), "\u{fffd}");
    }

    #[test]
    fn list_pages_parse() {
        let page = parse_list_page(
            br#"{"objects":[{"key":"config","size":5,"modified_ms":null}],"cursor":"c"}"#,
        )
        .unwrap();
        assert_eq!(page.objects[0].key, "config");
        assert_eq!(page.cursor.as_deref(), Some("c"));
        // A last page may leave the cursor out.
        assert_eq!(parse_list_page(br#"{"objects":[]}"#).unwrap().cursor, None);
        assert!(parse_list_page(br#"{"objects":[{"key":"k"}]}"#).is_err());
    }
}
