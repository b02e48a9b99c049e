//! A parsed registration (`core::es::repository_request`) mapped to a
//! snapkeep location: `fs` to a folder under `path.repo`,
//! `s3`/`azure`/`gcs` to object-storage URLs (credentials from the node's
//! environment; an s3 `endpoint` and `region` setting become storage
//! options), `url` to a read-only edge repository.

use std::path::{Component, Path, PathBuf};

use crate::core::es::repository_request::{RepositoryRequest, RepositorySpec};
use crate::node::reply::EsError;
use crate::node::state::Registration;

/// Maps `req` (for repository `name`) to a registration. A location that
/// cannot be used is ES's `[r] failed to create repository` (500).
pub fn registration(
    name: &str,
    req: &RepositoryRequest,
    path_repo: &[PathBuf],
) -> Result<Registration, EsError> {
    let failed =
        |msg: String| EsError::repository_create_failed(name, EsError::repository(name, &msg));
    let under =
        |url: String, base: &Option<String>| match base.as_deref().map(|p| p.trim_matches('/')) {
            Some(p) if !p.is_empty() => format!("{url}/{p}"),
            _ => url,
        };
    let mut options = Vec::new();
    let location = match &req.spec {
        RepositorySpec::Fs { location } => fs_location(location, path_repo).map_err(failed)?,
        RepositorySpec::S3 {
            bucket, base_path, ..
        } => {
            if let Some(endpoint) = req.settings.get("endpoint") {
                options.push(("endpoint".to_string(), endpoint.clone()));
                if endpoint.starts_with("http://") {
                    options.push(("allow_http".to_string(), "true".to_string()));
                }
            }
            if let Some(region) = req.settings.get("region") {
                options.push(("region".to_string(), region.clone()));
            }
            under(format!("s3://{bucket}"), base_path)
        }
        RepositorySpec::Azure {
            container,
            base_path,
            ..
        } => under(format!("az://{container}"), base_path),
        RepositorySpec::Gcs {
            bucket, base_path, ..
        } => under(format!("gs://{bucket}"), base_path),
        RepositorySpec::Url { url } => match crate::storage::edge::parse_url(url) {
            Some(Ok(_)) => url.clone(),
            _ => {
                return Err(failed(format!(
                    "url [{url}] is not a snapkeep edge repository (https://HOST/api/repos/NAME)"
                )))
            }
        },
    };
    Ok(Registration {
        kind: req.kind.clone(),
        settings: req.settings.clone(),
        location,
        options,
        readonly: req.common.readonly || matches!(req.spec, RepositorySpec::Url { .. }),
        uuid: None,
    })
}

/// An `fs` location: relative ones resolve against the first `path.repo`
/// entry; the result must lie under one of them (symbolic links followed
/// as far as the path exists), as Elasticsearch requires.
fn fs_location(location: &str, path_repo: &[PathBuf]) -> Result<String, String> {
    let refuse = |why: &str| {
        format!(
            "location [{location}] doesn't match any of the locations specified by path.repo{why}"
        )
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
    if !path_repo
        .iter()
        .any(|root| resolved.starts_with(resolve(root)))
    {
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

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn register(body: Value, roots: &[PathBuf]) -> Result<Registration, EsError> {
        let req = RepositoryRequest::parse("r", body.to_string().as_bytes())?;
        registration("r", &req, roots)
    }

    fn cause(e: EsError) -> String {
        e.caused_by.unwrap().reason
    }

    #[test]
    fn fs_locations_must_lie_under_path_repo() {
        let root = tempfile::tempdir().unwrap();
        let roots = vec![root.path().to_path_buf()];
        let inside = root.path().join("a/b");
        let r = register(
            json!({"type": "fs", "settings": {"location": inside}}),
            &roots,
        )
        .unwrap();
        assert_eq!(r.location, resolve(&inside).display().to_string());
        let relative = register(
            json!({"type": "fs", "settings": {"location": "rel"}}),
            &roots,
        )
        .unwrap();
        assert!(relative.location.ends_with("/rel"), "{}", relative.location);
        let escape = root.path().join("../elsewhere");
        let e = register(
            json!({"type": "fs", "settings": {"location": escape}}),
            &roots,
        )
        .unwrap_err();
        assert_eq!(e.kind, "repository_exception");
        assert!(cause(e).ends_with("specified by path.repo"));
        let e = register(json!({"type": "fs", "settings": {"location": "/x"}}), &[]).unwrap_err();
        assert!(cause(e).ends_with("because this setting is empty"));
    }

    #[test]
    fn a_link_out_of_path_repo_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        let roots = vec![root.path().to_path_buf()];
        let location = root.path().join("link/repo");
        assert!(register(
            json!({"type": "fs", "settings": {"location": location}}),
            &roots
        )
        .is_err());
    }

    #[test]
    fn object_stores_map_to_urls_with_their_options() {
        let s3 = json!({"type": "s3", "settings": {"bucket": "b", "base_path": "/x/y/", "endpoint": "http://127.0.0.1:9000", "readonly": true}});
        let r = register(s3, &[]).unwrap();
        assert_eq!(r.location, "s3://b/x/y");
        assert!(r.readonly);
        assert!(r.options.contains(&("allow_http".into(), "true".into())));
        assert_eq!(r.settings["readonly"], "true");
        let r = register(
            json!({"type": "azure", "settings": {"container": "c"}}),
            &[],
        )
        .unwrap();
        assert_eq!(r.location, "az://c");
        let r = register(
            json!({"type": "gcs", "settings": {"bucket": "g", "base_path": "p"}}),
            &[],
        )
        .unwrap();
        assert_eq!(r.location, "gs://g/p");
        let url = json!({"type": "url", "settings": {"url": "https://e.example/api/repos/n"}});
        assert!(register(url, &[]).unwrap().readonly);
        let other = json!({"type": "url", "settings": {"url": "https://e.example/elsewhere"}});
        assert_eq!(register(other, &[]).unwrap_err().status, 500);
    }
}
