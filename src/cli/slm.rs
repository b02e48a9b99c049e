//! `snapkeep slm ...`: Elasticsearch's `_slm` API of a running node from
//! the command line (policies, runs, retention, stats, start/stop). A thin
//! HTTP client: the node decides everything; this prints its answers (as
//! they are with `--json`, summarised otherwise) and turns its error
//! objects into one line and a non-zero exit.

use reqwest::Method;
use serde_json::Value;

use crate::cli::args::{SlmArgs, SlmCommand};
use crate::cli::context::Ctx;
use crate::cli::node_client::{segment, Client};
use crate::cli::render::print_json;
use crate::native::error::{Error, Result};
use crate::native::runtime::block_on;

pub fn run(ctx: &Ctx, a: SlmArgs) -> Result<()> {
    let client = Client::new(
        &a.node,
        a.node_token.as_deref(),
        a.user.as_deref(),
        a.cacert.as_deref(),
    )?;
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
    let rows: Vec<Vec<String>> = rows.into_iter().map(Vec::from).collect();
    crate::cli::render::columns(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

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
