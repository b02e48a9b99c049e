//! A repository behind snapkeep's edge Worker (`https://HOST/api/repos/NAME`),
//! through its object API: `GET`/`HEAD`/`PUT`/`DELETE` on `objects/KEY`
//! and paged `GET objects?prefix=&cursor=`. Create-only puts send
//! `If-None-Match: *`; the Worker makes them R2 conditional puts and answers
//! 412 when the key exists. A bearer token authorises reads and writes.

use std::ops::Range;
use std::time::Duration;

use super::edge_wire::{escape_key, ListPage};
use super::{validate_key, ObjectMeta, PutMode, Storage, StorageError, StorageResult};
use async_trait::async_trait;
use bytes::Bytes;
use reqwest::{header, Method, RequestBuilder, Response, StatusCode};

#[derive(Debug, Clone)]
pub struct EdgeStore {
    client: reqwest::Client,
    /// `https://HOST/api/repos/NAME`, without a trailing slash.
    base: String,
    token: Option<String>,
}

/// Whether `url` names an edge repository, and if so its base URL. Plain
/// `http://` is accepted for 127.0.0.1 and localhost only (local runs).
pub fn parse_url(url: &str) -> Option<Result<String, String>> {
    let (scheme, _) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let parsed = reqwest::Url::parse(url).ok()?;
    let path = parsed.path().trim_end_matches('/');
    let rest = path.strip_prefix("/api/repos")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let name = rest.trim_start_matches('/');
    if name.is_empty() || name.contains('/') {
        return Some(Err(format!(
            "{url:?}: an edge repository URL is https://HOST/api/repos/NAME"
        )));
    }
    if !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Some(Err(format!(
            "{url:?}: an edge repository URL has no user, query or fragment (the token goes in --token or SNAPKEEP_TOKEN)"
        )));
    }
    let host = parsed.host_str()?;
    let local = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if scheme == "http" && !local {
        return Some(Err(format!(
            "{url:?}: plain http:// is only accepted for 127.0.0.1 and localhost; use https://"
        )));
    }
    let authority = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    Some(Ok(format!("{scheme}://{authority}/api/repos/{name}")))
}

impl EdgeStore {
    pub fn new(base: String, token: Option<String>) -> Result<EdgeStore, StorageError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| StorageError::Config {
                detail: format!("HTTP client: {e}"),
            })?;
        Ok(EdgeStore {
            client,
            base,
            token,
        })
    }

    fn request(&self, method: Method, key: Option<&str>) -> RequestBuilder {
        let url = match key {
            Some(k) => format!("{}/objects/{}", self.base, escape_key(k)),
            None => format!("{}/objects", self.base),
        };
        let r = self.client.request(method, url);
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn send(&self, key: &str, r: RequestBuilder) -> StorageResult<Response> {
        r.send().await.map_err(|e| StorageError::Unavailable {
            detail: format!("{} ({key}): {e}", self.base),
        })
    }

    /// Turns an error status into the port's error, with the Worker's
    /// one-line reason.
    async fn failure(&self, key: &str, resp: Response) -> StorageError {
        let status = resp.status();
        let reason = resp
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["error"]["reason"].as_str().map(str::to_string))
            .unwrap_or_else(|| status.to_string());
        let key = key.to_string();
        match status {
            StatusCode::NOT_FOUND => StorageError::NotFound { key },
            StatusCode::PRECONDITION_FAILED => StorageError::AlreadyExists { key },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => StorageError::PermissionDenied {
                key,
                detail: format!(
                    "{} ({reason}); set SNAPKEEP_TOKEN or --token",
                    status.as_u16()
                ),
            },
            StatusCode::RANGE_NOT_SATISFIABLE => StorageError::InvalidRange {
                key,
                start: 0,
                end: 0,
                size: 0,
            },
            StatusCode::BAD_REQUEST => StorageError::Config {
                detail: format!("{}: {reason}", self.base),
            },
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                StorageError::Unavailable {
                    detail: format!("{} {}: {reason}", self.base, s.as_u16()),
                }
            }
            s => StorageError::Io {
                key,
                detail: format!("HTTP {}: {reason}", s.as_u16()),
            },
        }
    }
}

#[async_trait]
impl Storage for EdgeStore {
    fn location(&self) -> String {
        self.base.clone()
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        validate_key(key)?;
        let mut r = self.request(Method::GET, Some(key));
        if let Some(range) = &range {
            if range.start >= range.end {
                // Nothing to read: only the object's existence and size matter.
                let size = self.head(key).await?.size;
                super::clamp_range(key, Some(range.clone()), size)?;
                return Ok(Bytes::new());
            }
            r = r.header(
                header::RANGE,
                format!("bytes={}-{}", range.start, range.end - 1),
            );
        }
        let resp = self.send(key, r).await?;
        if !resp.status().is_success() {
            let err = self.failure(key, resp).await;
            if let (StorageError::InvalidRange { .. }, Some(range)) = (&err, range) {
                let size = self.head(key).await?.size;
                return Err(StorageError::InvalidRange {
                    key: key.into(),
                    start: range.start,
                    end: range.end,
                    size,
                });
            }
            return Err(err);
        }
        let partial = resp.status() == StatusCode::PARTIAL_CONTENT;
        let body = resp.bytes().await.map_err(|e| StorageError::Unavailable {
            detail: format!("{} reading {key}: {e}", self.base),
        })?;
        match range {
            // A proxy that ignores Range sends the whole object: cut it.
            Some(r) if !partial => {
                let r = super::clamp_range(key, Some(r), body.len() as u64)?;
                Ok(body.slice(r.start as usize..r.end as usize))
            }
            _ => Ok(body),
        }
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> StorageResult<()> {
        validate_key(key)?;
        let mut r = self.request(Method::PUT, Some(key)).body(data);
        if mode == PutMode::Create {
            r = r.header(header::IF_NONE_MATCH, "*");
        }
        let resp = self.send(key, r).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(self.failure(key, resp).await)
        }
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("prefix", prefix.to_string())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let r = self.request(Method::GET, None).query(&query);
            let resp = self.send(prefix, r).await?;
            if !resp.status().is_success() {
                return Err(self.failure(prefix, resp).await);
            }
            let page: ListPage = resp.json().await.map_err(|e| StorageError::Io {
                key: prefix.into(),
                detail: format!("listing from {}: {e}", self.base),
            })?;
            out.extend(page.objects.into_iter().map(|o| ObjectMeta {
                key: o.key,
                size: o.size,
                modified_ms: o.modified_ms,
            }));
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        validate_key(key)?;
        let resp = self
            .send(key, self.request(Method::DELETE, Some(key)))
            .await?;
        match resp.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            _ => Err(self.failure(key, resp).await),
        }
    }

    async fn head(&self, key: &str) -> StorageResult<ObjectMeta> {
        validate_key(key)?;
        let resp = self
            .send(key, self.request(Method::HEAD, Some(key)))
            .await?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => return Err(StorageError::NotFound { key: key.into() }),
            // A HEAD answer has no body to explain itself.
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(StorageError::PermissionDenied {
                    key: key.into(),
                    detail: format!("{}; set SNAPKEEP_TOKEN or --token", resp.status()),
                })
            }
            _ => return Err(self.failure(key, resp).await),
        }
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok());
        let size = header("x-snapkeep-size")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| StorageError::Io {
                key: key.into(),
                detail: format!(
                    "{} answered HEAD without a valid X-Snapkeep-Size",
                    self.base
                ),
            })?;
        Ok(ObjectMeta {
            key: key.into(),
            size,
            modified_ms: header("x-snapkeep-modified-ms").and_then(|v| v.parse().ok()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_urls() {
        assert_eq!(
            parse_url("https://edge.example.com/api/repos/prod"),
            Some(Ok("https://edge.example.com/api/repos/prod".into()))
        );
        assert_eq!(
            parse_url("http://127.0.0.1:8787/api/repos/demo/"),
            Some(Ok("http://127.0.0.1:8787/api/repos/demo".into()))
        );
        assert!(parse_url("http://localhost/api/repos/demo")
            .unwrap()
            .is_ok());
        assert!(parse_url("http://example.com/api/repos/demo")
            .unwrap()
            .unwrap_err()
            .contains("only accepted for 127.0.0.1"));
        assert!(parse_url("https://h/api/repos/").unwrap().is_err());
        // The host is the real one, not what precedes an '@'.
        assert!(parse_url("http://127.0.0.1:1@evil.example/api/repos/x")
            .unwrap()
            .is_err());
        assert_eq!(
            parse_url("http://[::1]/api/repos/x"),
            Some(Ok("http://[::1]/api/repos/x".into()))
        );
        assert!(parse_url("https://h/api/repos/x?token=1").unwrap().is_err());
        assert_eq!(parse_url("https://h/other"), None);
        assert_eq!(parse_url("s3://b/p"), None);
        assert_eq!(escape_key("packs/ab/cd ef"), "packs/ab/cd%20ef");
    }
}
