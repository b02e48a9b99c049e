//! `snapkeep slm ...`: Elasticsearch's `_slm` API of a running node from
//! the command line (policies, runs, retention, stats, start/stop). A thin
//! HTTP client: the node decides everything; this prints its answers (as
//! they are with `--json`, summarised otherwise) and turns its error
//! objects into one line and a non-zero exit.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::cli::args::{SlmArgs, SlmCommand};
use crate::cli::context::Ctx;
use crate::cli::render::print_json;
use crate::native::error::{Error, Result};
use crate::native::runtime::block_on;

/// The node a command talks to, and how it authenticates.
struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    user: Option<(String, String)>,
}

pub fn run(ctx: &Ctx, a: SlmArgs) -> Result<()> {
    let client = Client::new(&a)?;
    let (method, path, body) = request(&a.command)?;
    let answer = block_on(client.send(method, &path, body))?;
    if a.json {
        print_json(&answer);
    } else {
        ctx.say(summary(&a.command, &answer));
    }
    Ok(())
}

/// The HTTP request a command makes.
fn request(c: &SlmCommand) -> Result<(Method, String, Option<Vec<u8>>)> {
    Ok(match c {
        SlmCommand::Put { id, policy: file } => {
            let body = if file.as_os_str() == "-" {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
                    .map_err(|e| Error::Usage(format!("cannot read the policy from stdin: {e}")))?;
                b
            } else {
                std::fs::read(file).map_err(|e| {
                    Error::Usage(format!("cannot read policy file {}: {e}", file.display()))
                })?
            };
            (
                Method::PUT,
                format!("/_slm/policy/{}", segment(id)),
                Some(body),
            )
        }
        SlmCommand::Get { ids } if ids.is_empty() => (Method::GET, "/_slm/policy".into(), None),
        SlmCommand::Get { ids } => {
            let list: Vec<String> = ids.iter().map(|i| segment(i)).collect();
            (
                Method::GET,
                format!("/_slm/policy/{}", list.join(",")),
                None,
            )
        }
        SlmCommand::Delete { id } => (
            Method::DELETE,
            format!("/_slm/policy/{}", segment(id)),
            None,
        ),
        SlmCommand::Execute { id } => (
            Method::POST,
            format!("/_slm/policy/{}/_execute", segment(id)),
            None,
        ),
        SlmCommand::ExecuteRetention => (Method::POST, "/_slm/_execute_retention".into(), None),
        SlmCommand::Stats => (Method::GET, "/_slm/stats".into(), None),
        SlmCommand::Start => (Method::POST, "/_slm/start".into(), None),
        SlmCommand::Stop => (Method::POST, "/_slm/stop".into(), None),
        SlmCommand::Status => (Method::GET, "/_slm/status".into(), None),
        SlmCommand::History { id } => (
            Method::GET,
            format!("/_slm/policy/{}/_history", segment(id)),
            None,
        ),
    })
}

/// A path segment: everything but unreserved characters escaped, so an id
/// can never reach another path.
fn segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl Client {
    fn new(a: &SlmArgs) -> Result<Client> {
        let base = a.node.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Usage(format!(
                "--node {base}: give the node's URL, e.g. http://127.0.0.1:9200"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120));
        if let Some(path) = &a.cacert {
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
        let user = match &a.user {
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
            token: a.node_token.clone(),
            user,
        })
    }

    /// Sends one request; the answer's JSON, or the node's error as
    /// [`Error::NodeRequest`].
    async fn send(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Value> {
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
fn node_error(status: StatusCode, body: Value) -> Error {
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

/// What a command prints without `--json`.
fn summary(c: &SlmCommand, answer: &Value) -> String {
    match c {
        SlmCommand::Put { id, .. } => format!("policy [{id}] stored"),
        SlmCommand::Delete { id } => format!("policy [{id}] deleted"),
        SlmCommand::Execute { id } => format!(
            "policy [{id}] started snapshot {}",
            answer["snapshot_name"].as_str().unwrap_or("?")
        ),
        SlmCommand::ExecuteRetention => "retention started".into(),
        SlmCommand::Start | SlmCommand::Stop | SlmCommand::Status => {
            match answer["operation_mode"].as_str() {
                Some(mode) => format!("operation mode: {mode}"),
                None => "acknowledged".into(),
            }
        }
        SlmCommand::Get { .. } => policy_table(answer),
        SlmCommand::Stats | SlmCommand::History { .. } => {
            serde_json::to_string_pretty(answer).expect("values always serialize")
        }
    }
}

/// One line per policy: id, schedule, repository, next run, last success
/// and failure.
fn policy_table(answer: &Value) -> String {
    let Some(policies) = answer.as_object() else {
        return answer.to_string();
    };
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let mut rows = vec![[
        "id".to_string(),
        "schedule".into(),
        "repository".into(),
        "next run".into(),
        "last success".into(),
        "last failure".into(),
    ]];
    for (id, p) in policies {
        rows.push([
            id.clone(),
            text(&p["policy"]["schedule"]),
            text(&p["policy"]["repository"]),
            text(&p["next_execution"]),
            text(&p["last_success"]["snapshot_name"]),
            text(&p["last_failure"]["snapshot_name"]),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
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

    #[test]
    fn the_policy_table_shows_one_line_per_policy() {
        let answer = serde_json::json!({"nightly": {"policy": {"schedule": "0 30 1 * * ?",
            "repository": "backups"}, "next_execution": "2026-12-04T01:30:00.000Z",
            "last_success": {"snapshot_name": "nightly-2026.12.03-abc"}}});
        let t = policy_table(&answer);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2, "{t}");
        assert!(
            lines[1].starts_with("nightly  0 30 1 * * ?  backups"),
            "{t}"
        );
        assert!(lines[1].ends_with("nightly-2026.12.03-abc  -"), "{t}");
    }
}
