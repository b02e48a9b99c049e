//! A repository behind snapkeep's edge Worker (`https://HOST/api/repos/NAME`),
//! through its object API: `GET`/`HEAD`/`PUT`/`DELETE` on `objects/KEY`
//! and paged `GET objects?prefix=&cursor=`. Create-only puts send
//! `If-None-Match: *`; the Worker makes them R2 conditional puts and answers
//! 412 when the key exists. A bearer token authorises reads and writes.
//!
//! Every request runs under the limits of [`super::timeouts`]: connect,
//! response headers, pauses and rate of response bodies.

use super::edge_wire::{self as wire, escape_key};
use super::{
    validate_key, Capabilities, ObjectMeta, PutMode, Storage, StorageError, StorageResult,
};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use reqwest::{header, Method, RequestBuilder, Response, StatusCode};
use std::convert::Infallible;
use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::timeouts::{self, Expired, Meter, Timeouts};

/// The most of an error answer's body read for its reason.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Upload bodies are handed to the connection in pieces of this size, the
/// grain at which their progress is seen.
const UPLOAD_PIECE: usize = 64 * 1024;

/// The most of an upload that can sit in the client's and the kernel's
/// send buffers once the body has been handed over: the server may still
/// be receiving it, at `min_rate`, when the response-header clock starts.
const SEND_BUFFERS: u64 = 4 << 20;

/// How often a request in flight is checked against its limits.
const TICK: Duration = Duration::from_millis(100);

/// How much of an upload body the connection has taken, and when.
#[derive(Debug)]
struct Taken {
    bytes: u64,
    last: Instant,
    /// When the last piece was taken.
    done: Option<Instant>,
}

/// An upload body that records each piece the connection takes.
struct UploadBody {
    rest: Bytes,
    taken: Arc<Mutex<Taken>>,
}

impl http_body::Body for UploadBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        let now = Instant::now();
        let mut taken = this.taken.lock().unwrap_or_else(|e| e.into_inner());
        if this.rest.is_empty() {
            taken.done.get_or_insert(now);
            return Poll::Ready(None);
        }
        let piece = this.rest.split_to(this.rest.len().min(UPLOAD_PIECE));
        taken.bytes += piece.len() as u64;
        taken.last = now;
        if this.rest.is_empty() {
            taken.done = Some(now);
        }
        Poll::Ready(Some(Ok(http_body::Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.rest.len() as u64)
    }
}

#[derive(Debug, Clone)]
pub struct EdgeStore {
    client: reqwest::Client,
    /// `https://HOST/api/repos/NAME`, without a trailing slash.
    base: String,
    token: Option<String>,
    timeouts: Timeouts,
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
    /// A store with the time limits of the `SNAPKEEP_*` environment
    /// variables (or the defaults).
    pub fn new(base: String, token: Option<String>) -> Result<EdgeStore, StorageError> {
        let (timeouts, _) = Timeouts::from_options(&[])?;
        EdgeStore::with_timeouts(base, token, timeouts)
    }

    /// No overall request timeout is set on the client: a pack transfer
    /// may rightly take long, and every phase of a request has its own
    /// limit (see `send` and `body`).
    pub fn with_timeouts(
        base: String,
        token: Option<String>,
        timeouts: Timeouts,
    ) -> Result<EdgeStore, StorageError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .build()
            .map_err(|e| StorageError::Config {
                detail: format!("HTTP client: {e}"),
            })?;
        Ok(EdgeStore {
            client,
            base,
            token,
            timeouts,
        })
    }

    fn request(&self, method: Method, key: Option<&str>) -> RequestBuilder {
        let url = match key {
            Some(k) => format!("{}/{}/{}", self.base, wire::OBJECTS, escape_key(k)),
            None => format!("{}/{}", self.base, wire::OBJECTS),
        };
        let r = self.client.request(method, url);
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    fn expired(&self, e: Expired) -> StorageError {
        StorageError::TimedOut {
            what: format!("edge repository {}: {}", self.base, e.what),
            option: e.option,
            attempts: 1,
            elapsed_ms: 0,
        }
    }

    /// Sends a request (`what` names it, e.g. `GET objects/config`) and
    /// waits for the response headers.
    ///
    /// An upload body (`upload`) is under the idle and rate limits while
    /// the connection takes it; the response-header limit starts once it
    /// has all been taken, plus the time what may still sit in send
    /// buffers takes at `min_rate`. Without a body the header limit runs
    /// from the start (connecting included).
    async fn send(
        &self,
        what: &str,
        r: RequestBuilder,
        upload: Option<Bytes>,
    ) -> StorageResult<Response> {
        timeouts::count_attempt();
        let t = &self.timeouts;
        let start = Instant::now();
        let (r, taken, buffered) = match upload {
            Some(data) => {
                let buffered = (data.len() as u64).min(SEND_BUFFERS);
                let taken = Arc::new(Mutex::new(Taken {
                    bytes: 0,
                    // Connecting comes first, under its own limit.
                    last: start + t.connect,
                    done: data.is_empty().then_some(start),
                }));
                let body = UploadBody {
                    rest: data,
                    taken: taken.clone(),
                };
                (r.body(reqwest::Body::wrap(body)), Some(taken), buffered)
            }
            None => (r, None, 0),
        };
        let header_limit = t.response_limit(buffered);
        let mut meter = Meter::new(t);
        let mut metered = 0;
        let sent = r.send();
        tokio::pin!(sent);
        loop {
            let resp = tokio::select! {
                resp = &mut sent => resp,
                _ = tokio::time::sleep(TICK) => {
                    let now = Instant::now();
                    let (bytes, last, done) = match &taken {
                        Some(m) => {
                            let m = m.lock().unwrap_or_else(|e| e.into_inner());
                            (m.bytes, m.last, m.done)
                        }
                        None => (0, start, Some(start)),
                    };
                    if let Some(done) = done {
                        if now.duration_since(done) >= header_limit {
                            return Err(self.expired(Expired::no_response(what, header_limit)));
                        }
                    } else if now.saturating_duration_since(last) >= t.idle {
                        return Err(self.expired(Expired {
                            what: format!("{what} stalled: the server took no data for {}", timeouts::show(t.idle)),
                            option: "idle_timeout",
                        }));
                    } else if bytes > metered {
                        meter.advance((bytes - metered) as usize, what).map_err(|e| self.expired(e))?;
                        metered = bytes;
                    }
                    continue;
                }
            };
            return match resp {
                Ok(resp) => Ok(resp),
                Err(e) if e.is_connect() && e.is_timeout() => {
                    Err(self.expired(Expired::no_connection(what, t.connect)))
                }
                Err(e) => Err(StorageError::Unavailable {
                    detail: format!("{} ({what}): {e}", self.base),
                }),
            };
        }
    }

    /// Reads a response body, at most `cap` bytes of it, under the idle
    /// and rate limits.
    async fn body(&self, what: &str, mut resp: Response, cap: usize) -> StorageResult<Bytes> {
        let idle = self.timeouts.idle;
        let mut meter = Meter::new(&self.timeouts);
        let expected = resp.content_length().unwrap_or(0).min(cap as u64) as usize;
        let mut out = BytesMut::with_capacity(expected);
        while out.len() < cap {
            match tokio::time::timeout(idle, resp.chunk()).await {
                Err(_) => return Err(self.expired(Expired::stalled(what, idle))),
                Ok(Err(e)) => {
                    return Err(StorageError::Unavailable {
                        detail: format!("{} reading {what}: {e}", self.base),
                    })
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(piece))) => {
                    meter
                        .advance(piece.len(), what)
                        .map_err(|e| self.expired(e))?;
                    out.extend_from_slice(&piece);
                }
            }
        }
        out.truncate(cap);
        Ok(out.freeze())
    }

    /// Turns an error status into the port's error, with the Worker's
    /// one-line reason.
    async fn failure(&self, key: &str, resp: Response) -> StorageError {
        let status = resp.status();
        let reason = self
            .body(
                &format!("the error answer about {key}"),
                resp,
                MAX_ERROR_BODY,
            )
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["error"]["reason"].as_str().map(str::to_string))
            .unwrap_or_else(|| status.to_string());
        let key = key.to_string();
        match status {
            StatusCode::NOT_FOUND => StorageError::NotFound { key },
            s if s.as_u16() == wire::EXISTS_STATUS => StorageError::AlreadyExists { key },
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

    fn capabilities(&self) -> Capabilities {
        Capabilities::remote()
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
        let what = format!("GET objects/{key}");
        let resp = self.send(&what, r, None).await?;
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
        let body = self.body(&what, resp, usize::MAX).await?;
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
        let mut r = self.request(Method::PUT, Some(key));
        if let Some((name, value)) = wire::put_header(mode) {
            r = r.header(name, value);
        }
        let resp = self
            .send(&format!("PUT objects/{key}"), r, Some(data))
            .await?;
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
            let mut query = vec![(wire::PREFIX_PARAM, prefix.to_string())];
            if let Some(c) = &cursor {
                query.push((wire::CURSOR_PARAM, c.clone()));
            }
            let r = self.request(Method::GET, None).query(&query);
            let what = format!("GET objects?prefix={prefix}");
            let resp = self.send(&what, r, None).await?;
            if !resp.status().is_success() {
                return Err(self.failure(prefix, resp).await);
            }
            let body = self.body(&what, resp, usize::MAX).await?;
            let page = wire::parse_list_page(&body).map_err(|e| StorageError::Io {
                key: prefix.into(),
                detail: format!("listing from {}: {e}", self.base),
            })?;
            out.extend(page.objects.into_iter().map(ObjectMeta::from));
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
        let r = self.request(Method::DELETE, Some(key));
        let resp = self.send(&format!("DELETE objects/{key}"), r, None).await?;
        match resp.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            _ => Err(self.failure(key, resp).await),
        }
    }

    async fn head(&self, key: &str) -> StorageResult<ObjectMeta> {
        validate_key(key)?;
        let r = self.request(Method::HEAD, Some(key));
        let resp = self.send(&format!("HEAD objects/{key}"), r, None).await?;
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
        wire::parse_head(
            key,
            header(wire::SIZE_HEADER),
            header(wire::MODIFIED_HEADER),
        )
        .ok_or_else(|| StorageError::Io {
            key: key.into(),
            detail: format!(
                "{} answered HEAD without a valid {}",
                self.base,
                wire::SIZE_HEADER
            ),
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
