//! The thin HTTP client of the commands that drive a running node
//! (`snapkeep slm`, `snapkeep ccr`): the node decides everything; a
//! command sends one request and gets the node's JSON answer, or the
//! node's error object as [`Error::NodeRequest`] (one line and an exit
//! status by its HTTP status), or [`Error::NodeUnreachable`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::native::error::{Error, Result};

/// How a command reaches a node: `--node`, `--node-token` or `--user`,
/// `--cacert`.
#[derive(Debug, Args)]
pub struct NodeConnection {
    /// The node's URL.
    #[arg(
        long,
        value_name = "URL",
        env = "SNAPKEEP_NODE",
        default_value = "http://127.0.0.1:9200",
        global = true
    )]
    pub node: String,
    /// Bearer token for the node (a `manage` role for changes).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SNAPKEEP_NODE_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub node_token: Option<String>,
    /// HTTP Basic user for the node, as NAME:PASSWORD.
    #[arg(long, value_name = "NAME:PASSWORD", global = true)]
    pub user: Option<String>,
    /// PEM certificate to trust for an https:// node (e.g. a self-signed one).
    #[arg(long, value_name = "FILE", global = true)]
    pub cacert: Option<PathBuf>,
}

/// The node a command talks to, and how it authenticates.
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    user: Option<(String, String)>,
}

/// A path segment: everything but unreserved characters escaped, so an id
/// can never reach another path.
pub fn segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl Client {
    pub fn new(
        node: &str,
        token: Option<&str>,
        user: Option<&str>,
        cacert: Option<&Path>,
    ) -> Result<Client> {
        let base = node.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Usage(format!(
                "--node {base}: give the node's URL, e.g. http://127.0.0.1:9200"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120));
        if let Some(path) = cacert {
            let pem = std::fs::read(path).map_err(|e| {
                Error::Usage(format!("cannot read --cacert {}: {e}", path.display()))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                Error::Usage(format!(
                    "--cacert {}: not a PEM certificate: {e}",
                    path.display()
                ))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let user = match user {
            Some(u) => Some(
                u.split_once(':')
                    .map(|(n, p)| (n.to_string(), p.to_string()))
                    .ok_or_else(|| Error::Usage("--user takes NAME:PASSWORD".into()))?,
            ),
            None => None,
        };
        Ok(Client {
            base,
            http: builder
                .build()
                .map_err(|e| Error::Usage(format!("cannot make an HTTP client: {e}")))?,
            token: token.map(str::to_string),
            user,
        })
    }

    pub fn connect(c: &NodeConnection) -> Result<Client> {
        Client::new(
            &c.node,
            c.node_token.as_deref(),
            c.user.as_deref(),
            c.cacert.as_deref(),
        )
    }

    /// Sends one request; the answer's JSON, or the node's error as
    /// [`Error::NodeRequest`].
    pub async fn send(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut r = self.http.request(method.clone(), &url);
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        } else if let Some((name, password)) = &self.user {
            r = r.basic_auth(name, Some(password));
        }
        if let Some(b) = body {
            r = r
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        let unreachable = |e: reqwest::Error| Error::NodeUnreachable {
            url: self.base.clone(),
            reason: innermost(&e),
        };
        let reply = r.send().await.map_err(unreachable)?;
        let status = reply.status();
        let bytes = reply.bytes().await.map_err(unreachable)?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|_| Error::NodeRequest {
                status: status.as_u16(),
                kind: "invalid_response".into(),
                reason: format!(
                    "{method} {path}: the answer is not JSON: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                ),
                body: Value::Null,
            })?
        };
        if status.is_success() {
            return Ok(value);
        }
        Err(node_error(status, value))
    }
}

/// The node's error object as an error: its type and reason, and the
/// whole object for `--json`.
pub fn node_error(status: StatusCode, body: Value) -> Error {
    let error = &body["error"];
    let (kind, reason) = match error {
        Value::Object(_) => (
            error["type"].as_str().unwrap_or("error").to_string(),
            error["reason"].as_str().unwrap_or("").to_string(),
        ),
        Value::String(s) => ("error".to_string(), s.clone()),
        _ => ("error".to_string(), body.to_string()),
    };
    Error::NodeRequest {
        status: status.as_u16(),
        kind,
        reason,
        body,
    }
}

/// The innermost cause of a transport error (reqwest's own message only
/// says that sending failed).
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_stay_one_path_segment() {
        assert_eq!(segment("nightly"), "nightly");
        assert_eq!(segment("../_slm/stop"), "..%2F_slm%2Fstop");
        assert_eq!(segment("a b?c"), "a%20b%3Fc");
    }

    #[test]
    fn an_error_object_becomes_its_type_and_reason() {
        let body = serde_json::json!({"error": {"root_cause": [], "type": "resource_not_found_exception",
            "reason": "snapshot lifecycle policy or policies [x] not found"}, "status": 404});
        let e = node_error(StatusCode::NOT_FOUND, body.clone());
        assert_eq!(
            e.to_string(),
            "node answered 404 resource_not_found_exception: snapshot lifecycle policy or policies [x] not found"
        );
        match e {
            Error::NodeRequest { body: b, .. } => assert_eq!(b, body),
            other => panic!("{other:?}"),
        }
    }
}
