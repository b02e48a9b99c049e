//! The edge object API's wire format, defined once for the CLI's client
//! ([`super::edge`], native) and the Worker (`crate::edge`, wasm32): how an
//! object key travels in a URL path, the JSON page that answers
//! `GET objects?prefix=&cursor=`, the headers a `HEAD` answers with, and
//! how a put asks to be create-only and learns that the key exists. Pure,
//! so it builds for every target and is fuzzed natively (fuzz/).

use serde::{Deserialize, Serialize};

use super::{ObjectMeta, PutMode};

/// The object API's path under a repository's URL: `objects/KEY` for one
/// object, `objects` alone for listings.
pub const OBJECTS: &str = "objects";
/// The query parameters of a listing page: keys starting with `prefix`,
/// after the `cursor` the previous page gave.
pub const PREFIX_PARAM: &str = "prefix";
pub const CURSOR_PARAM: &str = "cursor";
/// A `HEAD` answer has no body: the object's size and modification time
/// (milliseconds since the Unix epoch, when known) travel in these headers.
pub const SIZE_HEADER: &str = "X-Snapkeep-Size";
pub const MODIFIED_HEADER: &str = "X-Snapkeep-Modified-Ms";
/// A create-only put carries this header with [`CREATE_ONLY_VALUE`]; the
/// Worker makes it an R2 conditional put.
pub const CREATE_ONLY_HEADER: &str = "If-None-Match";
pub const CREATE_ONLY_VALUE: &str = "*";
/// The status answering a create-only put of a key that exists.
pub const EXISTS_STATUS: u16 = 412;

/// The put a request asks for, from its [`CREATE_ONLY_HEADER`] value.
pub fn put_mode(create_only_header: Option<&str>) -> PutMode {
    if create_only_header.is_some_and(|v| v.trim() == CREATE_ONLY_VALUE) {
        PutMode::Create
    } else {
        PutMode::Overwrite
    }
}

/// The header a put in `mode` sends, if any.
pub fn put_header(mode: PutMode) -> Option<(&'static str, &'static str)> {
    (mode == PutMode::Create).then_some((CREATE_ONLY_HEADER, CREATE_ONLY_VALUE))
}

/// The headers a `HEAD` of `meta` answers with.
pub fn head_headers(meta: &ObjectMeta) -> Vec<(&'static str, String)> {
    let mut out = vec![(SIZE_HEADER, meta.size.to_string())];
    if let Some(m) = meta.modified_ms {
        out.push((MODIFIED_HEADER, m.to_string()));
    }
    out
}

/// An object's metadata from the values of a `HEAD` answer's
/// [`SIZE_HEADER`] and [`MODIFIED_HEADER`]; `None` without a valid size.
/// A modification time that does not parse is unknown.
pub fn parse_head(key: &str, size: Option<&str>, modified: Option<&str>) -> Option<ObjectMeta> {
    Some(ObjectMeta {
        key: key.into(),
        size: size?.parse().ok()?,
        modified_ms: modified.and_then(|v| v.parse().ok()),
    })
}

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

impl From<ObjectMeta> for ListedObject {
    fn from(m: ObjectMeta) -> ListedObject {
        ListedObject {
            key: m.key,
            size: m.size,
            modified_ms: m.modified_ms,
        }
    }
}

impl From<ListedObject> for ObjectMeta {
    fn from(o: ListedObject) -> ObjectMeta {
        ObjectMeta {
            key: o.key,
            size: o.size,
            modified_ms: o.modified_ms,
        }
    }
}

impl ListPage {
    /// The page the Worker answers with: `objects`, and the cursor of the
    /// next page while more follow.
    pub fn new(objects: Vec<ObjectMeta>, cursor: Option<String>) -> ListPage {
        ListPage {
            objects: objects.into_iter().map(ListedObject::from).collect(),
            cursor,
        }
    }
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

    #[test]
    fn list_pages_read_back_as_written() {
        let meta = |key: &str, modified_ms| ObjectMeta {
            key: key.into(),
            size: 7,
            modified_ms,
        };
        let objects = vec![meta("a", Some(5)), meta("b/c", None)];
        let page = ListPage::new(objects.clone(), Some("next".into()));
        let back = parse_list_page(&serde_json::to_vec(&page).unwrap()).unwrap();
        assert_eq!(back, page);
        let metas: Vec<ObjectMeta> = back.objects.into_iter().map(ObjectMeta::from).collect();
        assert_eq!(metas, objects);
        // The last page says so with a null cursor, as the Worker always has.
        assert_eq!(
            serde_json::to_value(ListPage::new(vec![], None)).unwrap(),
            serde_json::json!({"objects": [], "cursor": null})
        );
    }

    #[test]
    fn create_only_puts_travel_as_if_none_match() {
        for mode in [PutMode::Create, PutMode::Overwrite] {
            let header = put_header(mode);
            assert_eq!(put_mode(header.map(|(_, v)| v)), mode);
        }
        assert_eq!(put_header(PutMode::Create), Some(("If-None-Match", "*")));
        assert_eq!(put_mode(Some(" * ")), PutMode::Create);
        assert_eq!(put_mode(Some("\"etag\"")), PutMode::Overwrite);
    }

    #[test]
    fn head_answers_carry_size_and_time() {
        let meta = ObjectMeta {
            key: "k".into(),
            size: 42,
            modified_ms: Some(-3),
        };
        let headers = head_headers(&meta);
        let find = |name| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            parse_head("k", find(SIZE_HEADER), find(MODIFIED_HEADER)),
            Some(meta)
        );
        assert_eq!(parse_head("k", None, Some("1")), None);
        assert_eq!(parse_head("k", Some("x"), None), None);
        assert_eq!(
            parse_head("k", Some("1"), Some("soon"))
                .unwrap()
                .modified_ms,
            None
        );
    }
}
