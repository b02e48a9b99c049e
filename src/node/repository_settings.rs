//! Elasticsearch's repository types and settings mapped to snapkeep
//! locations: `fs` to a folder under `path.repo`, `s3`/`azure`/`gcs` to
//! object-storage URLs (credentials from the node's environment), `url` to
//! a read-only edge repository.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use crate::node::reply::EsError;
use crate::node::state::Registration;

/// Settings every type takes.
const COMMON: &[&str] = &[
    "readonly",
    "compress",
    "chunk_size",
    "max_snapshot_bytes_per_sec",
    "max_restore_bytes_per_sec",
];

/// The settings of each type (besides [`COMMON`]).
fn type_settings(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "fs" => &["location"],
        "s3" => &["bucket", "base_path", "client", "endpoint", "region"],
        "azure" => &["container", "base_path", "client"],
        "gcs" => &["bucket", "base_path", "client"],
        "url" => &["url"],
        _ => return None,
    })
}

/// Checks a registration request's type and settings and maps them to a
/// location. Errors are Elasticsearch's: 400 for a malformed request, 500
/// `repository_exception` (under `[r] failed to create repository`) for a
/// repository that cannot be made.
pub fn registration(
    name: &str,
    kind: &str,
    settings: &Map<String, Value>,
    path_repo: &[PathBuf],
) -> Result<Registration, EsError> {
    let allowed = type_settings(kind).ok_or_else(|| {
        EsError::repository(name, format!("repository type [{kind}] does not exist"))
            .caused(failed(name))
    })?;
    let mut flat = BTreeMap::new();
    flatten("", settings, &mut flat)?;
    if let Some(unknown) = flat
        .keys()
        .find(|k| !allowed.contains(&k.as_str()) && !COMMON.contains(&k.as_str()))
    {
        return Err(EsError::illegal_argument(format!(
            "unknown setting [{unknown}] for repository type [{kind}]: it takes {}",
            allowed
                .iter()
                .chain(COMMON)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let readonly = match flat.get("readonly") {
        None => kind == "url",
        Some(v) => parse_bool(v)? || kind == "url",
    };
    let need = |key: &str| {
        flat.get(key)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| {
                EsError::repository(
                    name,
                    format!("missing setting [{key}] for repository type [{kind}]"),
                )
                .caused(failed(name))
            })
    };
    let base = |url: String| match flat.get("base_path").map(|p| p.trim_matches('/')) {
        Some(p) if !p.is_empty() => format!("{url}/{p}"),
        _ => url,
    };
    let mut options = Vec::new();
    let location = match kind {
        "fs" => fs_location(name, &need("location")?, path_repo)?,
        "s3" => {
            if let Some(endpoint) = flat.get("endpoint") {
                options.push(("endpoint".to_string(), endpoint.clone()));
                if endpoint.starts_with("http://") {
                    options.push(("allow_http".to_string(), "true".to_string()));
                }
            }
            if let Some(region) = flat.get("region") {
                options.push(("region".to_string(), region.clone()));
            }
            base(format!("s3://{}", need("bucket")?))
        }
        "azure" => base(format!("az://{}", need("container")?)),
        "gcs" => base(format!("gs://{}", need("bucket")?)),
        _ => edge_url(name, &need("url")?)?,
    };
    Ok(Registration {
        kind: kind.to_string(),
        settings: flat,
        location,
        options,
        readonly,
        uuid: None,
    })
}

fn failed(name: &str) -> String {
    format!("[{name}] failed to create repository")
}

/// Setting values as ES keeps them: strings, nested objects as dotted keys.
fn flatten(
    prefix: &str,
    settings: &Map<String, Value>,
    out: &mut BTreeMap<String, String>,
) -> Result<(), EsError> {
    for (k, v) in settings {
        let key = format!("{prefix}{k}");
        let text = match v {
            Value::Object(inner) => {
                flatten(&format!("{key}."), inner, out)?;
                continue;
            }
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Null => continue,
            Value::Array(_) => {
                return Err(EsError::illegal_argument(format!(
                    "setting [{key}] must be a single value, not an array"
                )))
            }
        };
        out.insert(key, text);
    }
    Ok(())
}

fn parse_bool(v: &str) -> Result<bool, EsError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(EsError::illegal_argument(format!(
            "Failed to parse value [{v}] as only [true] or [false] are allowed."
        ))),
    }
}

/// An `fs` location: relative ones resolve against the first `path.repo`
/// entry; the result must lie under one of them (symbolic links followed
/// as far as the path exists), as Elasticsearch requires.
fn fs_location(name: &str, location: &str, path_repo: &[PathBuf]) -> Result<String, EsError> {
    let refuse = |why: &str| {
        EsError::repository(
            name,
            format!("location [{location}] doesn't match any of the locations specified by path.repo{why}"),
        )
        .caused(failed(name))
    };
    if path_repo.is_empty() {
        return Err(refuse(" because this setting is empty"));
    }
    let given = Path::new(location);
    let joined = if given.is_absolute() {
        given.to_path_buf()
    } else {
        path_repo[0].join(given)
    };
    let resolved = resolve(&joined);
    let inside = path_repo
        .iter()
        .any(|root| resolved.starts_with(resolve(root)));
    if !inside {
        return Err(refuse(""));
    }
    Ok(resolved.display().to_string())
}

/// `path` without `.`/`..` components, with the longest existing prefix
/// replaced by its canonical form (so a link cannot lead out of a root).
fn resolve(path: &Path) -> PathBuf {
    let mut lexical = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other.as_os_str()),
        }
    }
    let mut existing = lexical.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(n), Some(parent)) => {
                rest.push(n);
                existing = parent.to_path_buf();
            }
            _ => return lexical,
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    out.extend(rest.iter().rev());
    out
}

/// A `url` repository: snapkeep reads edge repositories
/// (`https://HOST/api/repos/NAME`) this way.
fn edge_url(name: &str, url: &str) -> Result<String, EsError> {
    match crate::storage::edge::parse_url(url) {
        Some(Ok(_)) => Ok(url.to_string()),
        _ => Err(EsError::repository(
            name,
            format!("url [{url}] is not a snapkeep edge repository (https://HOST/api/repos/NAME)"),
        )
        .caused(failed(name))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn fs_locations_must_lie_under_path_repo() {
        let root = tempfile::tempdir().unwrap();
        let roots = vec![root.path().to_path_buf()];
        let inside = root.path().join("a/b");
        let r = registration("r", "fs", &settings(json!({"location": inside})), &roots).unwrap();
        assert_eq!(r.location, resolve(&inside).display().to_string());
        let relative =
            registration("r", "fs", &settings(json!({"location": "rel"})), &roots).unwrap();
        assert!(relative.location.ends_with("/rel"), "{}", relative.location);
        let escape = root.path().join("../elsewhere");
        let e =
            registration("r", "fs", &settings(json!({"location": escape})), &roots).unwrap_err();
        assert_eq!(e.kind, "repository_exception");
        assert!(e
            .caused_by
            .unwrap()
            .reason
            .ends_with("specified by path.repo"));
        let e = registration("r", "fs", &settings(json!({"location": "/x"})), &[]).unwrap_err();
        assert!(e
            .caused_by
            .unwrap()
            .reason
            .ends_with("because this setting is empty"));
    }

    #[test]
    fn a_link_out_of_path_repo_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        let roots = vec![root.path().to_path_buf()];
        let location = root.path().join("link/repo");
        assert!(registration("r", "fs", &settings(json!({"location": location})), &roots).is_err());
    }

    #[test]
    fn object_stores_map_to_urls_with_their_options() {
        let s = settings(
            json!({"bucket": "b", "base_path": "/x/y/", "endpoint": "http://127.0.0.1:9000", "readonly": true}),
        );
        let r = registration("r", "s3", &s, &[]).unwrap();
        assert_eq!(r.location, "s3://b/x/y");
        assert!(r.readonly);
        assert!(r.options.contains(&("allow_http".into(), "true".into())));
        assert_eq!(r.settings["readonly"], "true");
        let r = registration("r", "azure", &settings(json!({"container": "c"})), &[]).unwrap();
        assert_eq!(r.location, "az://c");
        let r = registration(
            "r",
            "gcs",
            &settings(json!({"bucket": "g", "base_path": "p"})),
            &[],
        )
        .unwrap();
        assert_eq!(r.location, "gs://g/p");
        let r = registration(
            "r",
            "url",
            &settings(json!({"url": "https://e.example/api/repos/n"})),
            &[],
        )
        .unwrap();
        assert!(r.readonly);
    }

    #[test]
    fn unknown_settings_types_and_values_are_refused() {
        let e = registration(
            "r",
            "s3",
            &settings(json!({"bucket": "b", "bukket": "c"})),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.kind.as_str()),
            (400, "illegal_argument_exception")
        );
        assert!(e.reason.contains("[bukket]"));
        let e = registration("r", "hdfs", &Map::new(), &[]).unwrap_err();
        assert!(e
            .caused_by
            .unwrap()
            .reason
            .contains("[hdfs] does not exist"));
        let e = registration(
            "r",
            "s3",
            &settings(json!({"bucket": "b", "readonly": "yes"})),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        let e = registration("r", "s3", &Map::new(), &[]).unwrap_err();
        assert!(e.caused_by.unwrap().reason.contains("[bucket]"));
    }
}
