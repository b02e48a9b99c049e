//! `snapkeep ccr ...` against two real node processes on 127.0.0.1: the
//! leader node is named as a remote, an index followed, paused, resumed
//! and promoted, and auto-follow patterns managed, all through the CLI;
//! stats show convergence in text and JSON; a bad remote, an unreachable
//! node, a refused token and a wrong request are one-line errors with
//! their exit statuses.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::ccr::tree;
use common::node::{start, start_with, Dirs, Node};
use common::{noise, run, run_env, write};
use serde_json::Value;

const TOKEN: &str = "leader-token-77a0";

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn url(node: &Node) -> String {
    format!("http://127.0.0.1:{}", node.port)
}

/// `snapkeep ccr ARGS --node NODE`: its stdout; it must succeed.
fn ccr(node: &Node, args: &[&str]) -> String {
    let mut all = vec!["ccr"];
    all.extend(args);
    let u = url(node);
    all.extend(["--node", u.as_str()]);
    common::ok(&all)
}

fn ccr_json(node: &Node, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ccr(node, &all)).expect("JSON on stdout")
}

/// A failing `snapkeep ccr`: its exit status, its one stderr line, stdout.
fn ccr_fails(node_url: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["ccr"];
    all.extend(args);
    all.extend(["--node", node_url]);
    let out = run(&all);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: "), "{all:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    (
        out.status.code().unwrap(),
        err,
        String::from_utf8(out.stdout).unwrap(),
    )
}

/// A leader node (token required) with index `logs`, and a follower node
/// that names it as remote `site-a` through the CLI.
fn two_nodes() -> (Dirs, Node, Dirs, Node) {
    let (ld, fd) = (Dirs::new(), Dirs::new());
    let logs = ld.data().join("logs");
    write(&logs.join("small"), b"one");
    write(&logs.join("big"), &noise(1 << 20, 7));
    write(&logs.join("sub/deep/part"), &noise(50_000, 8));
    let leader = start_with(&ld, &[], &[("SNAPKEEP_NODE_TOKEN", TOKEN)]);
    let follower = start(&fd, &[]);
    let token_file = fd.root.path().join("leader.token");
    fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let addr = format!("127.0.0.1:{}", leader.port);
    let said = ccr(
        &follower,
        &[
            "remote",
            "put",
            "site-a",
            "--proxy-address",
            &addr,
            "--credentials-file",
            token_file.to_str().unwrap(),
        ],
    );
    assert_eq!(said.trim(), format!("remote [site-a] is {addr}"));
    (ld, leader, fd, follower)
}

#[test]
fn the_cli_follows_pauses_resumes_and_promotes() {
    let (ld, _leader, fd, follower) = two_nodes();
    let (logs, copy) = (ld.data().join("logs"), fd.data().join("copy"));
    let info = ccr_json(&follower, &["remote", "info"]);
    assert_eq!(info["site-a"]["connected"], true, "{info}");
    assert!(info.to_string().find(TOKEN).is_none(), "never echoed");
    let table = ccr(&follower, &["remote", "info"]);
    assert!(table.lines().nth(1).unwrap().contains("true"), "{table}");

    let said = ccr(
        &follower,
        &[
            "follow",
            "copy",
            "--remote",
            "site-a",
            "--leader-index",
            "logs",
            "--read-poll-timeout",
            "1s",
        ],
    );
    assert_eq!(said.trim(), "[copy] follows [site-a:logs]");
    wait_for("convergence", || tree(&logs) == tree(&copy));
    // Stats converge: the follower holds the leader's checkpoint.
    wait_for("stats to converge", || {
        let s = &ccr_json(&follower, &["stats", "copy"])["indices"][0]["shards"][0];
        s["follower_checkpoint"].is_string() && s["leader_checkpoint"] == s["follower_checkpoint"]
    });
    let s = ccr_json(&follower, &["stats", "copy"])["indices"][0]["shards"][0].clone();
    assert!(s["checkpoints_applied"].as_u64().unwrap() >= 1, "{s}");
    let text = ccr(&follower, &["stats"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("follower  leader"), "{text}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..4], ["copy", "site-a:logs", "active", "0"], "{text}");
    assert_eq!(row[4], s["follower_checkpoint"].as_str().unwrap(), "{text}");
    assert!(lines[1].ends_with(" -"), "no last error: {text}");
    assert!(lines[2].starts_with("auto-follow: 0 followed"), "{text}");
    let all = ccr_json(&follower, &["stats"]);
    assert_eq!(all["follow_stats"]["indices"][0]["index"], "copy", "{all}");
    let info = ccr(&follower, &["info", "copy"]);
    assert!(
        info.starts_with("[copy] follows [site-a:logs], active; read_poll_timeout 1s"),
        "{info}"
    );

    // Paused, the follower stays; resumed, it catches up.
    assert_eq!(ccr(&follower, &["pause", "copy"]).trim(), "[copy] paused");
    let row = ccr(&follower, &["stats", "copy"]);
    assert!(row.lines().nth(1).unwrap().contains(" paused "), "{row}");
    let before = tree(&copy);
    write(&logs.join("during-pause"), b"written while paused");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(tree(&copy), before);
    let said = ccr(&follower, &["resume", "copy", "--read-poll-timeout", "2s"]);
    assert_eq!(said.trim(), "[copy] resumed");
    wait_for("catching up", || tree(&logs) == tree(&copy));
    let info = ccr_json(&follower, &["info", "copy"]);
    assert_eq!(
        info["follower_indices"][0]["parameters"]["read_poll_timeout"], "2s",
        "{info}"
    );

    // Failover: promoted, the index follows nothing and takes writes.
    let said = ccr(&follower, &["promote", "copy"]);
    assert!(
        said.starts_with("[copy] promoted: it leads lineage "),
        "{said}"
    );
    assert_eq!(
        ccr(&follower, &["info", "copy"]).trim(),
        "[copy] follows nothing"
    );
    let (code, err, _) = ccr_fails(&url(&follower), &["stats", "copy"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("No shard follow tasks"), "{err}");
    write(&copy.join("after-promote"), b"the new leader's own");
    assert_eq!(
        ccr(&follower, &["stats"]).lines().next(),
        Some("no follower indices")
    );
}

#[test]
fn failures_are_one_line_with_their_exit_status() {
    let (_ld, leader, _fd, follower) = two_nodes();
    let f = url(&follower);
    // An unknown remote: not found (4), the node's reason; with --json
    // the node's error object on stdout.
    let args = [
        "follow",
        "copy",
        "--remote",
        "nowhere",
        "--leader-index",
        "logs",
    ];
    let (code, err, _) = ccr_fails(&f, &args);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("no such remote cluster: [nowhere]"), "{err}");
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let (_, _, out) = ccr_fails(&f, &with_json);
    let body: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(body["error"]["type"], "no_such_remote_cluster_exception");
    assert_eq!(body["status"], 404);
    // A leader index the remote does not have: not found too.
    let (code, err, _) = ccr_fails(
        &f,
        &[
            "follow",
            "copy",
            "--remote",
            "site-a",
            "--leader-index",
            "nope",
        ],
    );
    assert_eq!(code, 4, "{err}");
    // Resuming an index that follows nothing: a usage error (400).
    let (code, err, _) = ccr_fails(&f, &["resume", "copy"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not have ccr metadata"), "{err}");
    // A credentials file that is not there: usage, nothing sent.
    let (code, err, _) = ccr_fails(
        &f,
        &[
            "remote",
            "put",
            "x",
            "--proxy-address",
            "127.0.0.1:1",
            "--credentials-file",
            "/nonexistent/token",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--credentials-file /nonexistent/token"),
        "{err}"
    );
    // No node there: unreachable (6).
    let closed = format!("http://127.0.0.1:{}", common::servers::free_port());
    let (code, err, _) = ccr_fails(&closed, &["stats"]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("cannot reach the node"), "{err}");
    // The leader node refuses a missing token (5) and takes the right one,
    // from the flag or SNAPKEEP_NODE_TOKEN.
    let l = url(&leader);
    let (code, err, _) = ccr_fails(&l, &["stats"]);
    assert_eq!(code, 5, "{err}");
    let out = run(&["ccr", "stats", "--node", &l, "--node-token", TOKEN]);
    assert!(out.status.success());
    let env = [("SNAPKEEP_NODE_TOKEN".to_string(), TOKEN.to_string())];
    let out = run_env(&env, &["ccr", "stats", "--node", &l]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().next(),
        Some("no follower indices")
    );
    // A remote removed is gone from the list.
    assert_eq!(
        ccr(&follower, &["remote", "delete", "site-a"]).trim(),
        "remote [site-a] removed"
    );
    assert_eq!(
        ccr(&follower, &["remote", "info"]).trim(),
        "no remote clusters"
    );
}

#[test]
fn auto_follow_patterns_are_managed_from_the_cli() {
    let (ld, _leader, fd, follower) = two_nodes();
    let said = ccr(
        &follower,
        &[
            "auto-follow",
            "put",
            "logs",
            "--remote",
            "site-a",
            "--leader-pattern",
            "logs-*",
            "--exclude",
            "logs-tmp*",
            "--follow-pattern",
            "{{leader_index}}-copy",
            "--read-poll-timeout",
            "1s",
        ],
    );
    assert_eq!(said.trim(), "auto-follow pattern [logs] stored");
    let table = ccr(&follower, &["auto-follow", "get"]);
    assert_eq!(
        table
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        [
            "logs",
            "active",
            "site-a",
            "logs-*",
            "logs-tmp*",
            "{{leader_index}}-copy"
        ],
        "{table}"
    );
    write(&ld.data().join("logs-new/a"), b"made after the pattern");
    wait_for("the new index to be followed", || {
        tree(&ld.data().join("logs-new")) == tree(&fd.data().join("logs-new-copy"))
    });

    assert_eq!(
        ccr(&follower, &["auto-follow", "pause", "logs"]).trim(),
        "auto-follow pattern [logs] paused"
    );
    let shown = ccr_json(&follower, &["auto-follow", "get", "logs"]);
    assert_eq!(shown["patterns"][0]["pattern"]["active"], false, "{shown}");
    write(&ld.data().join("logs-later/b"), b"made during the pause");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!fd.data().join("logs-later-copy").exists());
    ccr(&follower, &["auto-follow", "resume", "logs"]);
    wait_for("the index made during the pause", || {
        fd.data().join("logs-later-copy/b").exists()
    });
    let text = ccr(&follower, &["stats"]);
    assert!(text.contains("auto-follow: 2 followed, 0 failed"), "{text}");

    assert_eq!(
        ccr(&follower, &["auto-follow", "delete", "logs"]).trim(),
        "auto-follow pattern [logs] deleted"
    );
    assert_eq!(
        ccr(&follower, &["auto-follow", "get"]).trim(),
        "no auto-follow patterns"
    );
    let (code, err, _) = ccr_fails(&url(&follower), &["auto-follow", "delete", "logs"]);
    assert_eq!(code, 4, "{err}");
}
