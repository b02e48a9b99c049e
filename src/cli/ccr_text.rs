//! What `snapkeep ccr ...` prints without `--json`: one line for a change,
//! a table for stats, info, auto-follow patterns and remotes.

use serde_json::Value;

use crate::cli::ccr::{AutoFollowCommand, CcrCommand, RemoteCommand};
use crate::cli::render::bytes;

/// The summary of the node's `answer` to command `c`.
pub fn summary(c: &CcrCommand, answer: &Value) -> String {
    match c {
        CcrCommand::Follow {
            follower,
            remote,
            leader_index,
            ..
        } => format!("[{follower}] follows [{remote}:{leader_index}]"),
        CcrCommand::Pause { follower } => format!("[{follower}] paused"),
        CcrCommand::Resume { follower, .. } => format!("[{follower}] resumed"),
        CcrCommand::Unfollow { follower } => {
            format!("[{follower}] follows nothing now: it is a normal index")
        }
        CcrCommand::Promote { follower } => format!(
            "[{follower}] promoted: it leads lineage {}, forked from checkpoint {}",
            text(&answer["lineage"]),
            text(&answer["forked_from"])
        ),
        CcrCommand::Stats { .. } => stats_text(answer),
        CcrCommand::Info { index } => info_text(index, answer),
        CcrCommand::ForgetFollower {
            leader,
            follower_cluster,
            follower_index,
        } => format!("[{leader}] forgot follower [{follower_cluster}:{follower_index}]"),
        CcrCommand::Publish {
            index,
            repository: Some(r),
        } => format!("[{index}] is published into repository [{r}]"),
        CcrCommand::Publish { index, .. } => publish_text(index, answer),
        CcrCommand::Unpublish { index } => format!("[{index}] is no longer published"),
        CcrCommand::AutoFollow(a) => auto_follow_text(a, answer),
        CcrCommand::Remote(r) => remote_text(r, answer),
    }
}

/// A publisher's figures on one line, with its last error.
fn publish_text(index: &str, a: &Value) -> String {
    let mut line = format!(
        "[{index}] into [{}]: head {}, {} checkpoint(s) published, {} pruned, {} lease object(s)",
        text(&a["repository"]),
        text(&a["head"]["checkpoint"]),
        text(&a["checkpoints_published"]),
        text(&a["checkpoints_pruned"]),
        text(&a["lease_objects"]),
    );
    if let Some(e) = a["last_error"].as_str() {
        line.push_str(&format!("; failing: {e}"));
    }
    line
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A shard's status: paused with its reason, paused on request, active.
fn status(shard: &Value) -> String {
    if let Some(reason) = shard["fatal_exception"]["reason"].as_str() {
        return format!("paused: {reason}");
    }
    if shard["outstanding_read_requests"] == 0 {
        return "paused".into();
    }
    "active".into()
}

/// One line per follower index: follower, leader, status, lag,
/// checkpoints applied, bytes read, last error; then the auto-follow
/// figures when the answer has them.
fn stats_text(answer: &Value) -> String {
    let indices = answer["indices"]
        .as_array()
        .or_else(|| answer["follow_stats"]["indices"].as_array())
        .cloned()
        .unwrap_or_default();
    let mut out = if indices.is_empty() {
        "no follower indices".to_string()
    } else {
        let mut rows = vec![[
            "follower",
            "leader",
            "status",
            "lag",
            "checkpoint",
            "applied",
            "read",
            "last error",
        ]
        .map(String::from)
        .to_vec()];
        for i in &indices {
            let s = &i["shards"][0];
            let lag = match (s["lag_checkpoints"].as_u64(), s["lag_millis"].as_i64()) {
                (Some(0), _) => "0".to_string(),
                (Some(n), Some(ms)) => format!("{n} ({:.1} s)", ms as f64 / 1000.0),
                _ => "-".into(),
            };
            rows.push(vec![
                text(&s["follower_index"]),
                format!(
                    "{}:{}",
                    text(&s["remote_cluster"]),
                    text(&s["leader_index"])
                ),
                status(s),
                lag,
                text(&s["follower_checkpoint"]),
                text(&s["checkpoints_applied"]),
                bytes(s["bytes_read"].as_u64().unwrap_or(0)),
                text(&s["last_error"]),
            ]);
        }
        crate::cli::render::columns(&rows)
    };
    let auto = &answer["auto_follow_stats"];
    if auto.is_object() {
        out.push_str(&format!(
            "\nauto-follow: {} followed, {} failed, {} failed remote listings",
            auto["number_of_successful_follow_indices"],
            auto["number_of_failed_follow_indices"],
            auto["number_of_failed_remote_cluster_state_requests"]
        ));
        if let Some(e) = auto["recent_auto_follow_errors"]
            .as_array()
            .and_then(|a| a.last())
        {
            out.push_str(&format!(
                "; last error [{}]: {}",
                text(&e["auto_follow_pattern"]),
                text(&e["auto_follow_exception"]["reason"])
            ));
        }
    }
    out
}

fn info_text(index: &str, answer: &Value) -> String {
    let Some(entry) = answer["follower_indices"]
        .as_array()
        .and_then(|a| a.first())
    else {
        return format!("[{index}] follows nothing");
    };
    let p = &entry["parameters"];
    format!(
        "[{index}] follows [{}:{}], {}; read_poll_timeout {}, max_retry_delay {}, \
         max_bytes_per_sec {}, reuse_existing {}",
        text(&entry["remote_cluster"]),
        text(&entry["leader_index"]),
        text(&entry["status"]),
        text(&p["read_poll_timeout"]),
        text(&p["max_retry_delay"]),
        p.get("max_bytes_per_sec")
            .map_or_else(|| "unlimited".into(), text),
        text(&p["reuse_existing"]),
    )
}

fn auto_follow_text(c: &AutoFollowCommand, answer: &Value) -> String {
    match c {
        AutoFollowCommand::Put { name, .. } => format!("auto-follow pattern [{name}] stored"),
        AutoFollowCommand::Delete { name } => format!("auto-follow pattern [{name}] deleted"),
        AutoFollowCommand::Pause { name } => format!("auto-follow pattern [{name}] paused"),
        AutoFollowCommand::Resume { name } => format!("auto-follow pattern [{name}] resumed"),
        AutoFollowCommand::Get { .. } => {
            let patterns = answer["patterns"].as_array().cloned().unwrap_or_default();
            if patterns.is_empty() {
                return "no auto-follow patterns".into();
            }
            let list = |v: &Value| {
                v.as_array()
                    .map(|a| a.iter().map(text).collect::<Vec<_>>().join(","))
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "-".into())
            };
            let mut rows = vec![[
                "name", "status", "remote", "leaders", "excluded", "follower",
            ]
            .map(String::from)
            .to_vec()];
            for p in &patterns {
                let a = &p["pattern"];
                rows.push(vec![
                    text(&p["name"]),
                    if a["active"] == true {
                        "active"
                    } else {
                        "paused"
                    }
                    .into(),
                    text(&a["remote_cluster"]),
                    list(&a["leader_index_patterns"]),
                    list(&a["leader_index_exclusion_patterns"]),
                    text(&a["follow_index_pattern"]),
                ]);
            }
            crate::cli::render::columns(&rows)
        }
    }
}

fn remote_text(c: &RemoteCommand, answer: &Value) -> String {
    match c {
        RemoteCommand::Put {
            alias,
            proxy_address: Some(addr),
            ..
        } => format!("remote [{alias}] is {addr}"),
        RemoteCommand::Put {
            alias, repository, ..
        } => format!(
            "remote [{alias}] is read through repository [{}]",
            repository.as_deref().unwrap_or("")
        ),
        RemoteCommand::Delete { alias } => format!("remote [{alias}] removed"),
        RemoteCommand::Info => {
            let Some(all) = answer.as_object().filter(|m| !m.is_empty()) else {
                return "no remote clusters".into();
            };
            let mut rows = vec![["alias", "address", "connected", "reason"]
                .map(String::from)
                .to_vec()];
            for (alias, r) in all {
                rows.push(vec![
                    alias.clone(),
                    match r["repository"].as_str() {
                        Some(name) => format!("repository:{name}"),
                        None => text(&r["proxy_address"]),
                    },
                    text(&r["connected"]),
                    text(&r["reason"]),
                ]);
            }
            crate::cli::render::columns(&rows)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stats_show_one_line_per_follower_with_its_reason() {
        let answer = json!({"auto_follow_stats": {"number_of_successful_follow_indices": 1,
            "number_of_failed_follow_indices": 0,
            "number_of_failed_remote_cluster_state_requests": 0, "recent_auto_follow_errors": []},
            "follow_stats": {"indices": [{"shards": [{
                "follower_index": "copy", "remote_cluster": "a", "leader_index": "logs",
                "outstanding_read_requests": 0, "lag_checkpoints": 2, "lag_millis": 1500,
                "follower_checkpoint": "0123456789abcdef:3", "checkpoints_applied": 3,
                "bytes_read": 2048, "last_error": null,
                "fatal_exception": {"reason": "local writes in the follower folder: x"}}]}]}});
        let t = stats_text(&answer);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("follower  leader"), "{t}");
        assert!(
            lines[1].starts_with("copy      a:logs  paused: local writes in the follower folder: x  2 (1.5 s)  0123456789abcdef:3  3"),
            "{t}"
        );
        assert!(lines[1].ends_with("2.0 KiB  -"), "{t}");
        assert_eq!(
            lines[2],
            "auto-follow: 1 followed, 0 failed, 0 failed remote listings"
        );
        assert_eq!(stats_text(&json!({"indices": []})), "no follower indices");
    }
}
