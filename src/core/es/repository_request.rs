//! Repository registration, `{"type": .., "settings": {..}}` (reference
//! 4.1), into a typed [`RepositorySpec`].
//!
//! Settings keep ES's names; nested objects flatten to dotted keys and
//! every value is kept as a string, as ES stores and returns them
//! (`GET /_snapshot/<repo>`). Settings snapkeep does not know are kept
//! (ES accepts them too) and listed in [`RepositoryRequest::unused`].

use std::collections::BTreeMap;

use serde_json::Value;

use super::body::{object, unknown};
use super::errors::EsError;

/// Where the repository lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositorySpec {
    Fs {
        location: String,
    },
    S3 {
        bucket: String,
        base_path: Option<String>,
        client: Option<String>,
    },
    Azure {
        container: String,
        base_path: Option<String>,
        client: Option<String>,
    },
    Gcs {
        bucket: String,
        base_path: Option<String>,
        client: Option<String>,
    },
    /// Read-only (ES's `url` type; snapkeep's edge repositories).
    Url {
        url: String,
    },
}

/// Settings every type takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommonSettings {
    pub readonly: bool,
    pub compress: bool,
    pub chunk_size: Option<u64>,
    /// `None`: unthrottled (absent, or `0`/`-1`).
    pub max_snapshot_bytes_per_sec: Option<u64>,
    pub max_restore_bytes_per_sec: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryRequest {
    /// ES's type name (`fs`, `s3`, ...).
    pub kind: String,
    pub spec: RepositorySpec,
    pub common: CommonSettings,
    /// All settings, flattened, as strings (what GET returns).
    pub settings: BTreeMap<String, String>,
}

const COMMON: [&str; 5] = [
    "readonly",
    "compress",
    "chunk_size",
    "max_snapshot_bytes_per_sec",
    "max_restore_bytes_per_sec",
];

fn type_settings(kind: &str) -> &'static [&'static str] {
    match kind {
        "fs" => &["location"],
        "s3" | "gcs" => &["bucket", "base_path", "client"],
        "azure" => &["container", "base_path", "client"],
        "url" => &["url"],
        _ => &[],
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                flatten(&format!("{prefix}{k}."), v, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.trim_end_matches('.').to_string(), s.clone());
        }
        other => {
            out.insert(prefix.trim_end_matches('.').to_string(), other.to_string());
        }
    }
}

/// A `ByteSizeValue` setting (`40mb`, `1.5gb`, `512b`; `0`/`-1` alone).
pub fn parse_byte_size(name: &str, v: &str) -> Result<Option<u64>, EsError> {
    if v == "0" || v == "-1" {
        return Ok(None);
    }
    let bad = || {
        EsError::parse(format!(
            "failed to parse setting [{name}] with value [{v}] as a size in bytes: \
             unit is missing or unrecognized"
        ))
    };
    let lower = v.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (num, unit) = lower.split_at(split);
    let shift = match unit.trim() {
        "b" => 0,
        "k" | "kb" => 10,
        "m" | "mb" => 20,
        "g" | "gb" => 30,
        "t" | "tb" => 40,
        "p" | "pb" => 50,
        _ => return Err(bad()),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let bytes = n * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok((bytes >= 1.0).then_some(bytes as u64))
}

fn setting_bool(name: &str, v: Option<&String>) -> Result<bool, EsError> {
    match v.map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(EsError::illegal_argument(format!(
            "Failed to parse value [{other}] as only [true] or [false] are allowed."
        ))
        .with_cause(EsError::illegal_argument(format!("setting [{name}]")))),
    }
}

impl RepositoryRequest {
    /// Reads the registration body of repository `repo`.
    pub fn parse(repo: &str, body: &[u8]) -> Result<RepositoryRequest, EsError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(EsError::body_required());
        }
        let mut kind = None;
        let mut settings = BTreeMap::new();
        for (name, v) in object(body)? {
            match name.as_str() {
                "type" => kind = Some(v.as_str().map_or_else(|| v.to_string(), str::to_string)),
                "settings" => {
                    if !v.is_object() {
                        return Err(EsError::illegal_argument(
                            "Malformed settings section, should include an inner object",
                        ));
                    }
                    flatten("", &v, &mut settings);
                }
                other => return Err(unknown(other)),
            }
        }
        let kind = kind.ok_or_else(|| EsError::action_request_validation(&["type is missing"]))?;
        let spec = spec(repo, &kind, &settings)?;
        let get = |k: &str| settings.get(k);
        let size = |k: &str| get(k).map_or(Ok(None), |v| parse_byte_size(k, v));
        let common = CommonSettings {
            readonly: setting_bool("readonly", get("readonly"))?,
            compress: setting_bool("compress", get("compress"))?,
            chunk_size: size("chunk_size")?,
            max_snapshot_bytes_per_sec: size("max_snapshot_bytes_per_sec")?,
            max_restore_bytes_per_sec: size("max_restore_bytes_per_sec")?,
        };
        Ok(RepositoryRequest {
            kind,
            spec,
            common,
            settings,
        })
    }

    /// Settings snapkeep stores but does not act on.
    pub fn unused(&self) -> Vec<&str> {
        let known = type_settings(&self.kind);
        self.settings
            .keys()
            .map(String::as_str)
            .filter(|k| !COMMON.contains(k) && !known.contains(k))
            .collect()
    }
}

fn spec(repo: &str, kind: &str, s: &BTreeMap<String, String>) -> Result<RepositorySpec, EsError> {
    let failed =
        |msg: &str| EsError::repository_create_failed(repo, EsError::repository(repo, msg));
    let opt = |k: &str| s.get(k).cloned();
    let need = |k: &str, msg: &str| opt(k).filter(|v| !v.is_empty()).ok_or_else(|| failed(msg));
    Ok(match kind {
        "fs" => RepositorySpec::Fs {
            location: need("location", "missing location")?,
        },
        "s3" => RepositorySpec::S3 {
            bucket: need("bucket", "No bucket defined for s3 repository")?,
            base_path: opt("base_path"),
            client: opt("client"),
        },
        "gcs" => RepositorySpec::Gcs {
            bucket: need("bucket", "No bucket defined for snapshot repository")?,
            base_path: opt("base_path"),
            client: opt("client"),
        },
        "azure" => RepositorySpec::Azure {
            container: opt("container").unwrap_or_else(|| "elasticsearch-snapshots".into()),
            base_path: opt("base_path"),
            client: opt("client"),
        },
        "url" => RepositorySpec::Url {
            url: need("url", "missing url")?,
        },
        other => {
            return Err(EsError::repository(
                repo,
                &format!("repository type [{other}] does not exist"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn parse(body: &str) -> Result<RepositoryRequest, EsError> {
        RepositoryRequest::parse("r", body.as_bytes())
    }

    #[test]
    fn each_type_maps_to_its_spec() {
        let fs = parse(r#"{"type":"fs","settings":{"location":"/backups/a","compress":true,"max_snapshot_bytes_per_sec":"40mb"}}"#).unwrap();
        assert_eq!(
            fs.spec,
            RepositorySpec::Fs {
                location: "/backups/a".into()
            }
        );
        assert!(fs.common.compress && !fs.common.readonly);
        assert_eq!(fs.common.max_snapshot_bytes_per_sec, Some(40 << 20));
        assert_eq!(fs.settings["compress"], "true", "values kept as strings");
        let s3 = parse(r#"{"type":"s3","settings":{"bucket":"b","base_path":"p","client":"c","readonly":"true"}}"#).unwrap();
        assert_eq!(
            s3.spec,
            RepositorySpec::S3 {
                bucket: "b".into(),
                base_path: Some("p".into()),
                client: Some("c".into())
            }
        );
        assert!(s3.common.readonly);
        let az = parse(r#"{"type":"azure","settings":{}}"#).unwrap();
        assert!(
            matches!(az.spec, RepositorySpec::Azure { ref container, .. } if container == "elasticsearch-snapshots")
        );
        let gcs = parse(r#"{"type":"gcs","settings":{"bucket":"g"}}"#).unwrap();
        assert!(matches!(gcs.spec, RepositorySpec::Gcs { ref bucket, .. } if bucket == "g"));
        let url = parse(r#"{"type":"url","settings":{"url":"https://edge/r"}}"#).unwrap();
        assert_eq!(
            url.spec,
            RepositorySpec::Url {
                url: "https://edge/r".into()
            }
        );
    }

    #[test]
    fn nested_settings_flatten_and_unknown_ones_are_kept() {
        let r = parse(r#"{"type":"fs","settings":{"location":"/x","foo":{"bar":1}}}"#).unwrap();
        assert_eq!(r.settings["foo.bar"], "1");
        assert_eq!(r.unused(), ["foo.bar"]);
    }

    #[test]
    fn refusals_carry_es_types_and_reasons() {
        assert_eq!(
            RepositoryRequest::parse("r", b"").unwrap_err().kind,
            "parse_exception"
        );
        let e = parse(r#"{"type":"fs","settings":"x"}"#).unwrap_err();
        assert_eq!(
            e.reason,
            "Malformed settings section, should include an inner object"
        );
        let e = parse(r#"{"settings":{}}"#).unwrap_err();
        assert_eq!(e.reason, "Validation Failed: 1: type is missing;");
        let e = parse(r#"{"type":"hdfs","settings":{}}"#).unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str()),
            (500, "[r] repository type [hdfs] does not exist")
        );
        let e = parse(r#"{"type":"fs","settings":{}}"#).unwrap_err();
        assert_eq!(e.reason, "[r] failed to create repository");
        assert_eq!(e.root_cause().reason, "[r] missing location");
        assert_eq!(
            parse(r#"{"type":"fs","verify":true}"#).unwrap_err().reason,
            "Unknown parameter verify"
        );
        let e =
            parse(r#"{"type":"fs","settings":{"location":"/x","chunk_size":"10"}}"#).unwrap_err();
        assert_eq!(e.kind, "parse_exception");
        let e =
            parse(r#"{"type":"fs","settings":{"location":"/x","readonly":"yes"}}"#).unwrap_err();
        assert_eq!(e.kind, "illegal_argument_exception");
    }

    #[test]
    fn byte_sizes_parse_like_es() {
        assert_eq!(parse_byte_size("x", "512b"), Ok(Some(512)));
        assert_eq!(parse_byte_size("x", "1.5kb"), Ok(Some(1536)));
        assert_eq!(parse_byte_size("x", "2GB"), Ok(Some(2 << 30)));
        assert_eq!(parse_byte_size("x", "0"), Ok(None));
        assert_eq!(parse_byte_size("x", "-1"), Ok(None));
        for bad in ["10", "mb", "1.2.3mb", "5xb", ""] {
            assert!(parse_byte_size("x", bad).is_err(), "{bad}");
        }
    }
}
