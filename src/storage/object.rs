//! Object storage (S3, Azure Blob, Google Cloud Storage, and S3-compatible
//! services such as Cloudflare R2 and MinIO) through the `object_store`
//! crate.
//!
//! Configuration follows the cloud tools users already have: the standard
//! `AWS_*`, `AZURE_*` and `GOOGLE_*` environment variables, plus
//! `--storage-option key=value` (endpoint, region, allow_http, ...; any key
//! the object_store builders accept).
//!
//! Create-only puts are conditional requests: S3 `If-None-Match: *`, Azure
//! `If-None-Match: *`, GCS `ifGenerationMatch=0`. They are what makes root
//! commits safe; a service without them (an S3 clone that ignores the
//! header) is caught by `repo analyze`.
//!
//! Requests run under the limits of [`super::timeouts`], applied by an
//! HTTP service wrapped around object_store's own client ([`TimedService`]).
//! object_store's total per-request `timeout` (30 s by default, which cuts
//! any download longer than that) is off unless given as a storage option.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpResponseBody, HttpService, ReqwestConnector,
};
use object_store::path::Path;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, PutOptions, PutPayload, RetryConfig,
};

use super::timeouts::{self, Expired, Meter, Timeouts};
use super::{
    validate_key, Capabilities, ObjectMeta, PutMode, Storage, StorageError, StorageResult,
};

/// Objects above this size are uploaded in parts of `MULTIPART_PART` bytes.
const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;
const MULTIPART_PART: usize = 8 * 1024 * 1024;

/// Cloud providers the `scheme://bucket/prefix` URLs name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    S3,
    Azure,
    Gcs,
}

impl Provider {
    pub fn from_scheme(s: &str) -> Option<Provider> {
        match s {
            "s3" | "s3a" => Some(Provider::S3),
            "az" | "azure" | "abfs" | "abfss" => Some(Provider::Azure),
            "gs" => Some(Provider::Gcs),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ObjectStorage {
    inner: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
    bucket: String,
}

/// Retry policy for transient failures (timeouts, 5xx, connection resets):
/// no retry starts after `retry_timeout`, the same deadline the port's
/// retry wrapper keeps, so the two layers together stop at it.
fn retry_config(t: &Timeouts) -> RetryConfig {
    RetryConfig {
        backoff: Default::default(),
        max_retries: 4,
        retry_timeout: t.retry,
    }
}

/// Builds object_store's own HTTP client, then wraps it in [`TimedService`].
#[derive(Debug)]
struct TimedConnector {
    timeouts: Timeouts,
    /// object_store's total per-request `timeout` was given as an option.
    total_timeout: bool,
}

impl HttpConnector for TimedConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let options = if self.total_timeout {
            options.clone()
        } else {
            options.clone().with_timeout_disabled()
        };
        let inner = ReqwestConnector::default().connect(&options)?;
        Ok(HttpClient::new(TimedService {
            inner,
            timeouts: self.timeouts,
        }))
    }
}

/// Applies the response-header limit to each request, and the idle and
/// rate limits to its response body. Expired limits are `Timeout` errors
/// (object_store retries them within its policy) whose source is an
/// [`Expired`] naming the request.
#[derive(Debug)]
struct TimedService {
    inner: HttpClient,
    timeouts: Timeouts,
}

#[async_trait]
impl HttpService for TimedService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        timeouts::count_attempt();
        // The query may hold a signature: it stays out of messages.
        let uri = req.uri();
        let what = format!(
            "{} {}://{}{}",
            req.method(),
            uri.scheme_str().unwrap_or("http"),
            uri.authority().map(|a| a.as_str()).unwrap_or(""),
            uri.path()
        );
        let limit = self
            .timeouts
            .response_limit(req.body().content_length() as u64);
        let resp = match tokio::time::timeout(limit, self.inner.execute(req)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) if is_connect_timeout(&e) => {
                return Err(HttpError::new(
                    HttpErrorKind::Connect,
                    Expired::no_connection(&what, self.timeouts.connect),
                ))
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(HttpError::new(
                    HttpErrorKind::Timeout,
                    Expired::no_response(&what, limit),
                ))
            }
        };
        let (parts, body) = resp.into_parts();
        let body = TimedBody {
            inner: body,
            idle: self.timeouts.idle,
            sleep: Box::pin(tokio::time::sleep(self.timeouts.idle)),
            meter: Meter::new(&self.timeouts),
            what,
        };
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}

fn is_connect_timeout(e: &HttpError) -> bool {
    let mut next = std::error::Error::source(e);
    while let Some(s) = next {
        if let Some(r) = s.downcast_ref::<reqwest::Error>() {
            return r.is_connect() && r.is_timeout();
        }
        next = s.source();
    }
    false
}

/// A response body that fails when no piece arrives for `idle`, or when
/// the rate rule fails.
struct TimedBody {
    inner: HttpResponseBody,
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    meter: Meter,
    what: String,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len());
                if let Err(e) = this.meter.advance(n, &this.what) {
                    return Poll::Ready(Some(Err(HttpError::new(HttpErrorKind::Timeout, e))));
                }
                let next = tokio::time::Instant::now() + this.idle;
                this.sleep.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::new(
                    HttpErrorKind::Timeout,
                    Expired::stalled(&this.what, this.idle),
                )))),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Splits `scheme://bucket/prefix` into its parts.
/// A refusal in the user's terms: the provider's error code says which
/// credential is wrong, while the request line would only name an internal
/// object.
fn auth_reason(text: &str) -> &'static str {
    const REASONS: [(&str, &str); 5] = [
        (
            "InvalidAccessKeyId",
            "the access key id is not known (InvalidAccessKeyId)",
        ),
        (
            "SignatureDoesNotMatch",
            "the secret key does not match the access key id (SignatureDoesNotMatch)",
        ),
        (
            "AuthenticationFailed",
            "the account key or SAS token was refused (AuthenticationFailed)",
        ),
        (
            "AccessDenied",
            "these credentials may not do this here (AccessDenied)",
        ),
        (
            "401 Unauthorized",
            "authentication required (401 Unauthorized)",
        ),
    ];
    REASONS
        .iter()
        .find(|(code, _)| text.contains(code))
        .map_or("access denied (403 Forbidden)", |(_, reason)| reason)
}

/// The instance metadata address object_store falls back to for credentials.
const METADATA_ENDPOINT: &str = "169.254.169.254";

pub fn split_url(url: &str) -> Option<(Provider, String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let provider = Provider::from_scheme(scheme)?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return None;
    }
    Some((
        provider,
        bucket.to_string(),
        prefix.trim_matches('/').to_string(),
    ))
}

impl ObjectStorage {
    /// Builds the backend for `url` from the environment and `options`.
    pub fn open(url: &str, options: &[(String, String)]) -> Result<ObjectStorage, StorageError> {
        let bad = |detail: String| StorageError::Config { detail };
        let (provider, bucket, prefix) =
            split_url(url).ok_or_else(|| bad(format!("{url:?} is not scheme://bucket/prefix")))?;
        let base = format!("{}://{bucket}", url.split_once("://").unwrap().0);
        let (t, rest) = Timeouts::from_options(options)?;
        let total_timeout = rest.iter().any(|(k, _)| {
            let k = k.to_ascii_lowercase();
            ["timeout", "aws_timeout", "azure_timeout", "google_timeout"].contains(&k.as_str())
        });
        let connector = || TimedConnector {
            timeouts: t,
            total_timeout,
        };
        // object_store's connect timeout is set as the option it is, so its
        // own shorter one for cloud metadata endpoints still applies there.
        let mut options = vec![(
            "connect_timeout".to_string(),
            format!("{}ms", t.connect.as_millis()),
        )];
        options.extend(rest);
        let inner: Arc<dyn ObjectStore> = match provider {
            Provider::S3 => {
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_url(&base)
                    .with_retry(retry_config(&t))
                    .with_http_connector(connector());
                for (k, v) in &options {
                    let key = k
                        .to_ascii_lowercase()
                        .parse()
                        .map_err(|e| bad(format!("storage option {k}: {e}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            Provider::Azure => {
                let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(&base)
                    .with_retry(retry_config(&t))
                    .with_http_connector(connector());
                for (k, v) in &options {
                    let key = k
                        .to_ascii_lowercase()
                        .parse()
                        .map_err(|e| bad(format!("storage option {k}: {e}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            Provider::Gcs => {
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(&base)
                    .with_retry(retry_config(&t))
                    .with_http_connector(connector());
                for (k, v) in &options {
                    let key = k
                        .to_ascii_lowercase()
                        .parse()
                        .map_err(|e| bad(format!("storage option {k}: {e}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
        };
        Ok(ObjectStorage {
            inner,
            prefix,
            url: url.trim_end_matches('/').to_string(),
            bucket,
        })
    }

    fn path(&self, key: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.prefix))
        }
    }

    fn key_of(&self, path: &Path) -> String {
        let p = path.as_ref();
        if self.prefix.is_empty() {
            p.to_string()
        } else {
            p.strip_prefix(&self.prefix)
                .map(|k| k.trim_start_matches('/'))
                .unwrap_or(p)
                .to_string()
        }
    }

    /// Maps object_store's errors onto the port's, naming the bucket when
    /// it is the bucket that is missing.
    fn map_err(&self, key: &str, e: object_store::Error) -> StorageError {
        if let Some(x) = Expired::find(&e) {
            return StorageError::TimedOut {
                what: format!("{}: {}", self.url, x.what),
                option: x.option,
                attempts: 1,
                elapsed_ms: 0,
            };
        }
        let text = e.to_string();
        let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
        if text.contains(METADATA_ENDPOINT) {
            // With no credentials configured, object_store asks the cloud's
            // instance metadata service, and its refusal names that address.
            return StorageError::PermissionDenied {
                key: key.into(),
                detail: format!("{}: no credentials were found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile's credentials)", self.url),
            };
        }
        if has(&[
            "NoSuchBucket",
            "ContainerNotFound",
            "The specified container does not exist",
            "bucket does not exist",
        ]) {
            return StorageError::BucketMissing {
                bucket: self.bucket.clone(),
            };
        }
        match e {
            object_store::Error::NotFound { .. } => StorageError::NotFound { key: key.into() },
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => {
                StorageError::AlreadyExists { key: key.into() }
            }
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => StorageError::PermissionDenied {
                key: key.into(),
                detail: format!("{}: {}", self.url, auth_reason(&text)),
            },
            _ if has(&[
                "AccessDenied",
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "AuthenticationFailed",
                "403 Forbidden",
                "401 Unauthorized",
            ]) =>
            {
                StorageError::PermissionDenied {
                    key: key.into(),
                    detail: format!("{}: {}", self.url, auth_reason(&text)),
                }
            }
            _ if has(&[
                "error sending request",
                "Connection refused",
                "connection error",
                "timed out",
                "dns error",
                "tcp connect",
            ]) =>
            {
                StorageError::Unavailable {
                    detail: format!("{}: {}", self.url, first_line(&text)),
                }
            }
            _ => StorageError::Io {
                key: key.into(),
                detail: first_line(&text),
            },
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(300).collect()
}

impl ObjectStorage {
    /// Uploads `data` as a multipart upload, parts in parallel. A failed
    /// upload is aborted, so no invisible, billed parts are left behind.
    async fn put_in_parts(&self, key: &str, data: Bytes) -> StorageResult<()> {
        let mut upload = self
            .inner
            .put_multipart(&self.path(key))
            .await
            .map_err(|e| self.map_err(key, e))?;
        let parts: Vec<_> = (0..data.len())
            .step_by(MULTIPART_PART)
            .map(|start| {
                let end = (start + MULTIPART_PART).min(data.len());
                upload.put_part(PutPayload::from_bytes(data.slice(start..end)))
            })
            .collect();
        let uploaded = futures::future::try_join_all(parts).await;
        let done = match uploaded {
            Ok(_) => upload.complete().await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            let _ = upload.abort().await;
            return Err(self.map_err(key, e));
        }
        Ok(())
    }
}

#[async_trait]
impl Storage for ObjectStorage {
    fn location(&self) -> String {
        self.url.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::remote()
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        validate_key(key)?;
        let path = self.path(key);
        let r = match range {
            None => {
                let res = self
                    .inner
                    .get(&path)
                    .await
                    .map_err(|e| self.map_err(key, e))?;
                return res.bytes().await.map_err(|e| self.map_err(key, e));
            }
            Some(r) => r,
        };
        if r.start > r.end {
            return Err(StorageError::InvalidRange {
                key: key.into(),
                start: r.start,
                end: r.end,
                size: 0,
            });
        }
        // Services refuse empty ranges and ranges that start at the end; the
        // port answers them from the object's size.
        let size_check = |size: u64| -> StorageResult<Bytes> {
            if r.start > size {
                Err(StorageError::InvalidRange {
                    key: key.into(),
                    start: r.start,
                    end: r.end,
                    size,
                })
            } else {
                Ok(Bytes::new())
            }
        };
        if r.start == r.end {
            let size = self.head(key).await?.size;
            return size_check(size);
        }
        let opts = GetOptions {
            range: Some(GetRange::Bounded(r.clone())),
            ..Default::default()
        };
        match self.inner.get_opts(&path, opts).await {
            Ok(res) => res.bytes().await.map_err(|e| self.map_err(key, e)),
            Err(e) => {
                let mapped = self.map_err(key, e);
                if matches!(
                    mapped,
                    StorageError::NotFound { .. } | StorageError::BucketMissing { .. }
                ) {
                    return Err(mapped);
                }
                // Most likely a range past the end: decide from the size.
                let size = self.head(key).await?.size;
                if r.start >= size {
                    size_check(size)
                } else {
                    Err(mapped)
                }
            }
        }
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> StorageResult<()> {
        validate_key(key)?;
        if mode == PutMode::Overwrite && data.len() > MULTIPART_THRESHOLD {
            // Large objects (packs) go up in parts: a failed part is retried
            // alone, and services cap single-request uploads.
            return self.put_in_parts(key, data).await;
        }
        let mode = match mode {
            PutMode::Overwrite => object_store::PutMode::Overwrite,
            PutMode::Create => object_store::PutMode::Create,
        };
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        self.inner
            .put_opts(&self.path(key), PutPayload::from_bytes(data), opts)
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(key, e))
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        // object_store lists whole path segments; list the enclosing
        // "directory" and filter by the exact prefix.
        let dir = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let list_path = if dir.is_empty() && self.prefix.is_empty() {
            None
        } else if dir.is_empty() {
            Some(Path::from(self.prefix.as_str()))
        } else {
            Some(self.path(dir))
        };
        let metas: Vec<object_store::ObjectMeta> = self
            .inner
            .list(list_path.as_ref())
            .try_collect()
            .await
            .map_err(|e| self.map_err(prefix, e))?;
        let mut out: Vec<ObjectMeta> = metas
            .into_iter()
            .map(|m| ObjectMeta {
                key: self.key_of(&m.location),
                size: m.size,
                modified_ms: Some(m.last_modified.timestamp_millis()),
            })
            .filter(|m| m.key.starts_with(prefix))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        validate_key(key)?;
        match self.inner.delete(&self.path(key)).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.map_err(key, e)),
        }
    }

    async fn head(&self, key: &str) -> StorageResult<ObjectMeta> {
        validate_key(key)?;
        let m = self
            .inner
            .head(&self.path(key))
            .await
            .map_err(|e| self.map_err(key, e))?;
        Ok(ObjectMeta {
            key: key.into(),
            size: m.size,
            modified_ms: Some(m.last_modified.timestamp_millis()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_provider_bucket_and_prefix() {
        assert_eq!(
            split_url("s3://b/p/q/"),
            Some((Provider::S3, "b".into(), "p/q".into()))
        );
        assert_eq!(
            split_url("az://c"),
            Some((Provider::Azure, "c".into(), "".into()))
        );
        assert_eq!(
            split_url("gs://g/x"),
            Some((Provider::Gcs, "g".into(), "x".into()))
        );
        assert_eq!(split_url("s3://"), None);
        assert_eq!(split_url("ftp://b/p"), None);
    }

    #[test]
    fn gcs_options_are_checked_without_a_live_service() {
        // No GCS emulator exists here: the configuration path is what can
        // be tested. Unknown keys are named; GCS keys are accepted as such
        // and refused by the other providers.
        let bad = ObjectStorage::open("gs://bucket", &[("no_such_option".into(), "1".into())]);
        assert!(
            matches!(bad, Err(StorageError::Config { detail }) if detail.contains("no_such_option"))
        );
        // A GCS key given for gs:// reaches the GCS builder, which reads
        // the key file it names.
        let missing = "/nonexistent/snapkeep-gcs-key.json";
        let on_gcs = ObjectStorage::open(
            "gs://bucket",
            &[("google_service_account".into(), missing.into())],
        );
        assert!(
            matches!(&on_gcs, Err(StorageError::Config { detail }) if detail.contains(missing)),
            "{on_gcs:?}"
        );
        let on_s3 = ObjectStorage::open(
            "s3://bucket",
            &[("google_service_account".into(), "x".into())],
        );
        assert!(matches!(on_s3, Err(StorageError::Config { .. })));
        assert_eq!(
            split_url("gs://bucket/a/b"),
            Some((Provider::Gcs, "bucket".into(), "a/b".into()))
        );
    }

    #[test]
    fn s3_options_are_applied() {
        let s = ObjectStorage::open(
            "s3://bucket/some/prefix",
            &[
                ("endpoint".into(), "http://127.0.0.1:9".into()),
                ("allow_http".into(), "true".into()),
                ("region".into(), "us-east-1".into()),
            ],
        )
        .unwrap();
        assert_eq!(s.location(), "s3://bucket/some/prefix");
        assert_eq!(s.path("config").as_ref(), "some/prefix/config");
        assert_eq!(
            s.key_of(&Path::from("some/prefix/packs/ab/x")),
            "packs/ab/x"
        );
        let bad = ObjectStorage::open("s3://bucket", &[("endpointt".into(), "x".into())]);
        assert!(matches!(bad, Err(StorageError::Config { .. })));
    }
}
