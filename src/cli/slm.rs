//! `snapkeep slm ...`: the node's `_slm` API from the command line, a thin
//! HTTP client. Each command is one request; the node's JSON answer is
//! printed as it came, and an error answer ends the command with the
//! node's one-line reason.

use reqwest::Method;
use serde_json::Value;

use crate::cli::args::{SlmArgs, SlmCommand};
use crate::cli::render::print_json;
use crate::error::Error;
use crate::native::error::Result;
use crate::native::runtime::block_on;

/// The method, path and body of the request a command makes.
fn request(c: &SlmCommand) -> Result<(Method, String, Option<Vec<u8>>)> {
    let policy = |id: &str| format!("/_slm/policy/{id}");
    Ok(match c {
        SlmCommand::Put { id, policy: file } => {
            let body = std::fs::read(file).map_err(|e| Error::BadPolicy {
                policy: id.clone(),
                reason: format!("cannot read {}: {e}", file.display()),
            })?;
            (Method::PUT, policy(id), Some(body))
        }
        SlmCommand::Get { id: Some(id) } => (Method::GET, policy(id), None),
        SlmCommand::Get { id: None } => (Method::GET, "/_slm/policy".into(), None),
        SlmCommand::Delete { id } => (Method::DELETE, policy(id), None),
        SlmCommand::Execute { id } => (Method::POST, format!("{}/_execute", policy(id)), None),
        SlmCommand::History { id } => (Method::GET, format!("{}/_history", policy(id)), None),
        SlmCommand::ExecuteRetention => (Method::POST, "/_slm/_execute_retention".into(), None),
        SlmCommand::Stats => (Method::GET, "/_slm/stats".into(), None),
        SlmCommand::Start => (Method::POST, "/_slm/start".into(), None),
        SlmCommand::Stop => (Method::POST, "/_slm/stop".into(), None),
        SlmCommand::Status => (Method::GET, "/_slm/status".into(), None),
    })
}

pub fn run(a: SlmArgs, token: Option<String>) -> Result<()> {
    let (method, path, body) = request(&a.command)?;
    let base = a.node.trim_end_matches('/');
    let url = format!("{base}{path}");
    let token = token.or_else(|| std::env::var("SNAPKEEP_NODE_TOKEN").ok());
    let answer = block_on(send(method, &url, body, token))?;
    print_json(&answer);
    Ok(())
}

async fn send(
    method: Method,
    url: &str,
    body: Option<Vec<u8>>,
    token: Option<String>,
) -> Result<Value> {
    let failed = |reason: String| Error::NodeAnswer {
        url: url.to_string(),
        reason,
    };
    let client = reqwest::Client::new();
    let mut req = client.request(method, url);
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(b);
    }
    let reply = req.send().await.map_err(|e| failed(e.to_string()))?;
    let status = reply.status();
    let bytes = reply.bytes().await.map_err(|e| failed(e.to_string()))?;
    let value: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(&bytes).into_owned()));
    if status.is_success() {
        return Ok(value);
    }
    let reason = value["error"]["reason"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string());
    Err(failed(format!("{status}: {reason}")))
}
