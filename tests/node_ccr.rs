//! Cross-cluster replication between two real node processes on
//! 127.0.0.1: a follower index follows a leader index over the leader's
//! HTTP API with the remote's credentials and converges byte-identical
//! through adds, rewrites, deletes and renames; it survives a restart of
//! the follower node; pause and resume; a local write into the follower
//! folder pauses it with the reason in `_ccr/stats`; unfollow leaves a
//! normal folder; wrong credentials and bad requests are refused with
//! their reasons.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::ccr::{stage_is_linked, stage_is_linked_or_absent, tree};
use common::node::{start, start_with, Dirs, Node};
use common::{noise, write};
use serde_json::{json, Value};

const TOKEN: &str = "leader-token-c41e";

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn converges(node: &Node, leader: &Dirs, follower: &Dirs, index: &str) {
    same_in_time(
        node,
        &leader.data().join("logs"),
        &follower.data().join(index),
    );
}

/// Waits until folders `l` and `f` hold the same tree; `node`'s stats
/// explain a failure.
fn same_in_time(node: &Node, l: &Path, f: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tree(l) != tree(f) {
        if Instant::now() > deadline {
            let (a, b) = (tree(l), tree(f));
            let names =
                |t: &BTreeMap<String, Option<Vec<u8>>>| t.keys().cloned().collect::<Vec<_>>();
            panic!(
                "no convergence: leader {:?} follower {:?}; {}",
                names(&a),
                names(&b),
                node.get("/_ccr/stats").text()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stats(node: &Node, index: &str) -> Value {
    let r = node.get(&format!("/{index}/_ccr/stats"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["indices"][0]["shards"][0].clone()
}

fn post(node: &Node, path: &str) -> (u16, Value) {
    let r = node.send("POST", path, "");
    (r.status, r.json())
}

fn add_remotes(follower: &Node, leader: &Node) {
    let addr = format!("127.0.0.1:{}", leader.port);
    let r = follower.send(
        "PUT",
        "/_cluster/settings",
        &json!({"persistent": {"cluster": {"remote": {
            "leader": {"mode": "proxy", "proxy_address": addr, "credentials": TOKEN},
            "wrong": {"mode": "proxy", "proxy_address": addr, "credentials": "not-it"},
        }}}})
        .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn follow(node: &Node, index: &str, body: Value) -> (u16, Value) {
    let r = node.send("PUT", &format!("/{index}/_ccr/follow"), &body.to_string());
    (r.status, r.json())
}

#[test]
fn a_follower_index_keeps_in_step_pauses_and_unfollows() {
    let (ld, fd) = (Dirs::new(), Dirs::new());
    let logs = ld.data().join("logs");
    write(&logs.join("small"), b"one");
    write(&logs.join("big"), &noise(3 << 20, 1));
    write(&logs.join("sub/deep/rotated.1"), &noise(70_000, 2));
    let leader = start_with(&ld, &[], &[("SNAPKEEP_NODE_TOKEN", TOKEN)]);
    let mut follower = start(&fd, &[]);
    add_remotes(&follower, &leader);

    let (status, body) = follow(
        &follower,
        "copy",
        json!({"remote_cluster": "leader", "leader_index": "logs", "read_poll_timeout": "1s",
               "max_read_request_size": "32mb", "max_outstanding_read_requests": 12}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["index_following_started"], true);
    converges(&follower, &ld, &fd, "copy");
    // One small change shows on the follower within a read's wait.
    let t0 = Instant::now();
    write(&logs.join("tick"), b"tick");
    wait_for("one change", || fd.data().join("copy/tick").exists());
    let lag = t0.elapsed();
    eprintln!("one change reached the follower in {lag:?}");
    assert!(lag < Duration::from_secs(5), "{lag:?}");

    // Adds, rewrites (the big file only in its middle), deletes, renames.
    let mut big = noise(3 << 20, 1);
    big[1 << 20..(1 << 20) + 5000].copy_from_slice(&noise(5000, 3));
    write(&logs.join("big"), &big);
    write(&logs.join("small"), b"one, then two");
    write(&logs.join("sub/new"), b"added");
    fs::rename(logs.join("sub/deep/rotated.1"), logs.join("sub/rotated.2")).unwrap();
    write(&logs.join("gone"), b"soon deleted");
    converges(&follower, &ld, &fd, "copy");
    fs::remove_file(logs.join("gone")).unwrap();
    converges(&follower, &ld, &fd, "copy");

    // The switch comes before its record: the stats catch up at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = stats(&follower, "copy");
    while s["leader_checkpoint"] != s["follower_checkpoint"] && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        s = stats(&follower, "copy");
    }
    assert_eq!(s["leader_checkpoint"], s["follower_checkpoint"], "{s}");
    assert_eq!(s["remote_cluster"], "leader");
    assert!(s["checkpoints_applied"].as_u64().unwrap() >= 3, "{s}");
    assert!(
        s["time_since_last_read_millis"].as_i64().unwrap() >= 0,
        "{s}"
    );
    assert!(s.get("fatal_exception").is_none(), "{s}");
    // Only the changed chunks travelled after the first checkpoint.
    assert!(s["bytes_read"].as_u64().unwrap() < (3 << 20) * 2, "{s}");
    let info = follower.get("/copy/_ccr/info").json();
    let entry = &info["follower_indices"][0];
    assert_eq!(entry["status"], "active", "{info}");
    assert_eq!(entry["parameters"]["read_poll_timeout"], "1s", "{info}");
    assert_eq!(entry["leader_index"], "logs");

    // The follow survives a restart of the follower node.
    follower.signal("TERM");
    write(
        &logs.join("while-down"),
        b"written while the follower was down",
    );
    let follower = start(&fd, &[]);
    converges(&follower, &ld, &fd, "copy");

    // Paused, the follower stays where it was; resumed, it catches up
    // (taking the stage it linked ahead after its last apply).
    stage_is_linked(&fd.data(), "copy");
    assert_eq!(post(&follower, "/copy/_ccr/pause_follow").0, 200);
    assert_eq!(
        follower.get("/copy/_ccr/info").json()["follower_indices"][0]["status"],
        "paused"
    );
    let before = tree(&fd.data().join("copy"));
    write(&logs.join("during-pause"), b"x");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(tree(&fd.data().join("copy")), before);
    let r = follower.send(
        "POST",
        "/copy/_ccr/resume_follow",
        &json!({"read_poll_timeout": "2s"}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    converges(&follower, &ld, &fd, "copy");
    let info = follower.get("/copy/_ccr/info").json();
    assert_eq!(
        info["follower_indices"][0]["parameters"]["read_poll_timeout"], "2s",
        "{info}"
    );
    let (status, reply) = post(&follower, "/copy/_ccr/resume_follow");
    assert_eq!(status, 400, "resuming an active follower: {reply}");

    // A local write pauses the follower, with the path named.
    write(
        &fd.data().join("copy/local-note"),
        b"written on the follower",
    );
    wait_for("the pause for a local write", || {
        stats(&follower, "copy").get("fatal_exception").is_some()
    });
    let s = stats(&follower, "copy");
    let reason = s["fatal_exception"]["reason"].as_str().unwrap();
    assert!(reason.contains("local-note"), "{reason}");
    assert_eq!(
        follower.get("/copy/_ccr/info").json()["follower_indices"][0]["status"],
        "paused"
    );
    write(&logs.join("after-local-write"), b"not followed");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!fd.data().join("copy/after-local-write").exists());

    // Unfollow: the folder stays, as a normal index that follows nothing.
    let (status, body) = post(&follower, "/copy/_ccr/unfollow");
    assert_eq!(status, 200, "{body}");
    assert_eq!(follower.get("/copy/_ccr/stats").status, 404);
    assert_eq!(
        follower.get("/copy/_ccr/info").json(),
        json!({"follower_indices": []})
    );
    assert_eq!(
        follower.get("/_ccr/stats").json()["follow_stats"]["indices"],
        json!([])
    );
    write(&logs.join("after-unfollow"), b"not followed either");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(fd.data().join("copy/local-note").exists());
    assert!(!fd.data().join("copy/after-unfollow").exists());
    assert!(!fd.data().join(".ccr-next-copy").exists());
    let r = follower.get("/copy");
    assert_eq!(r.status, 200, "{}", r.text());

    // The leader forgets the follower's leases when told to.
    let leases = || -> usize {
        let text = fs::read(ld.state().join("ccr_leader.json")).unwrap();
        let v: Value = serde_json::from_slice(&text).unwrap();
        v["logs"]["leases"].as_array().unwrap().len()
    };
    // One on the head, one on the held checkpoint, and one on the
    // checkpoint being applied when the last read was made during an apply.
    assert!((2..=3).contains(&leases()), "{}", leases());
    let follower_id = follower.get("/").json()["cluster_uuid"].clone();
    let r = leader.call(
        "POST",
        "/logs/_ccr/forget_follower",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &format!("Bearer {TOKEN}")),
        ],
        Some(
            json!({"follower_cluster": follower_id, "follower_index": "copy",
                    "leader_remote_cluster": "leader"})
            .to_string()
            .as_bytes(),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(leases(), 0);

    // Of the ten or so checkpoints taken, the leader kept only the newest
    // and the leased ones.
    let kept = common::json(&[
        "snapshot",
        "list",
        common::s(&ld.state().join("ccr-checkpoints")),
    ]);
    let total = kept["total"].as_u64().unwrap();
    assert!((1..=4).contains(&total), "{kept}");
}

#[test]
fn wrong_credentials_and_bad_requests_are_refused_with_reasons() {
    let (ld, fd) = (Dirs::new(), Dirs::new());
    write(&ld.data().join("logs/a"), b"a");
    fs::create_dir_all(fd.data().join("taken")).unwrap();
    let leader = start_with(&ld, &[], &[("SNAPKEEP_NODE_TOKEN", TOKEN)]);
    let follower = start(&fd, &[]);
    add_remotes(&follower, &leader);

    let refused = |index: &str, body: Value, status: u16, kind: &str, says: &str| {
        let (got, reply) = follow(&follower, index, body.clone());
        assert_eq!(got, status, "{body}: {reply}");
        assert_eq!(reply["error"]["type"], kind, "{reply}");
        let reason = reply["error"]["reason"].as_str().unwrap();
        assert!(reason.contains(says), "{body}: {reason}");
    };
    refused(
        "copy",
        json!({"remote_cluster": "nope", "leader_index": "logs"}),
        404,
        "no_such_remote_cluster_exception",
        "[nope]",
    );
    refused(
        "copy",
        json!({"remote_cluster": "leader", "leader_index": "missing"}),
        404,
        "index_not_found_exception",
        "[missing]",
    );
    refused(
        "copy",
        json!({"leader_index": "logs"}),
        400,
        "action_request_validation_exception",
        "remote_cluster is missing",
    );
    refused(
        "copy",
        json!({"remote_cluster": "leader", "leader_index": "logs", "colour": "red"}),
        400,
        "x_content_parse_exception",
        "[colour]",
    );
    refused(
        "taken",
        json!({"remote_cluster": "leader", "leader_index": "logs"}),
        400,
        "resource_already_exists_exception",
        "reuse_existing",
    );
    let (status, reply) = post(&follower, "/taken/_ccr/pause_follow");
    assert_eq!(status, 400, "{reply}");
    assert!(reply["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("ccr metadata"));
    let (status, reply) = post(&follower, "/nothing/_ccr/unfollow");
    assert_eq!(status, 400, "{reply}");

    // The leader refuses wrong credentials; the follower says so and
    // keeps retrying, holding nothing.
    let (status, body) = follow(
        &follower,
        "copy",
        json!({"remote_cluster": "wrong", "leader_index": "logs", "read_poll_timeout": "1s"}),
    );
    assert_eq!(status, 200, "{body}");
    wait_for("failed reads", || {
        stats(&follower, "copy")["failed_read_requests"]
            .as_u64()
            .unwrap()
            >= 2
    });
    let s = stats(&follower, "copy");
    let reason = s["read_exceptions"][0]["exception"]["reason"]
        .as_str()
        .unwrap();
    assert!(
        reason.contains("refused the credentials of cluster.remote.wrong"),
        "{s}"
    );
    assert_eq!(s["follower_checkpoint"], Value::Null, "{s}");
    assert!(!fd.data().join("copy").exists());
    // Following twice is refused.
    refused(
        "copy",
        json!({"remote_cluster": "leader", "leader_index": "logs"}),
        400,
        "illegal_argument_exception",
        "already follows",
    );
    // Unfollowing an active follower needs a pause first.
    let (status, reply) = post(&follower, "/copy/_ccr/unfollow");
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["type"], "illegal_state_exception");
}

#[test]
fn reuse_existing_follows_into_a_folder_fetching_only_what_differs() {
    let (ld, fd) = (Dirs::new(), Dirs::new());
    let (logs, copy) = (ld.data().join("logs"), fd.data().join("copy"));
    let big = noise(4 << 20, 7);
    write(&logs.join("big"), &big);
    write(&logs.join("small"), b"leader's");
    // The follower folder already holds most of it (copied, so other
    // mtimes), one file that differs and one the leader lacks.
    let mut near = big.clone();
    near[..4096].copy_from_slice(&noise(4096, 8));
    write(&copy.join("big"), &near);
    write(&copy.join("small"), b"follower's");
    write(&copy.join("stale"), b"only here");
    let leader = start_with(&ld, &[], &[("SNAPKEEP_NODE_TOKEN", TOKEN)]);
    let follower = start(&fd, &[]);
    add_remotes(&follower, &leader);

    let (status, body) = follow(
        &follower,
        "copy",
        json!({"remote_cluster": "leader", "leader_index": "logs", "read_poll_timeout": "1s",
               "reuse_existing": true}),
    );
    assert_eq!(status, 200, "{body}");
    converges(&follower, &ld, &fd, "copy");
    let s = stats(&follower, "copy");
    let read = s["bytes_read"].as_u64().unwrap();
    eprintln!(
        "reuse_existing fetched {read} bytes of a {} byte index",
        big.len() + 8
    );
    assert!(read < (big.len() / 4) as u64, "{s}");
    assert_eq!(s["checkpoints_applied"], 1, "{s}");
}

/// kill -9 of the follower node while it applies, and of the leader node
/// while it takes a checkpoint: after restarts the follower converges,
/// and nothing is reported as a local write.
#[test]
fn kills_during_apply_and_checkpoint_lose_nothing() {
    let (ld, fd) = (Dirs::new(), Dirs::new());
    let logs = ld.data().join("logs");
    for i in 0..8u64 {
        write(&logs.join(format!("part-{i}")), &noise(2 << 20, 20 + i));
    }
    let mut leader = start_with(&ld, &[], &[("SNAPKEEP_NODE_TOKEN", TOKEN)]);
    let mut follower = start(&fd, &[]);
    add_remotes(&follower, &leader);
    let (status, body) = follow(
        &follower,
        "copy",
        json!({"remote_cluster": "leader", "leader_index": "logs", "read_poll_timeout": "1s"}),
    );
    assert_eq!(status, 200, "{body}");
    converges(&follower, &ld, &fd, "copy");

    for round in 0..3u64 {
        // Every file rewritten: the apply fetches and writes 16 MB.
        for i in 0..8u64 {
            write(
                &logs.join(format!("part-{i}")),
                &noise(2 << 20, 100 * round + i),
            );
        }
        // Killed as soon as the apply's restore starts in its stage (a
        // stage linked ahead is there before), then a little later.
        let stage = fd.data().join(".ccr-next-copy");
        let restoring = || {
            fs::read_dir(&stage).is_ok_and(|d| {
                d.flatten().any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".snapkeep-restore-")
                })
            })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !restoring() {
            assert!(Instant::now() < deadline, "no apply started");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(15 * round));
        follower.signal("KILL");
        follower = start(&fd, &[]);
        converges(&follower, &ld, &fd, "copy");
        let s = stats(&follower, "copy");
        assert!(s.get("fatal_exception").is_none(), "{s}");
    }

    // The leader killed while it takes a checkpoint of a large change.
    for i in 0..8u64 {
        write(&logs.join(format!("part-{i}")), &noise(2 << 20, 900 + i));
    }
    std::thread::sleep(Duration::from_millis(200));
    leader.signal("KILL");
    let leader = start_with(&ld, &[], &[("SNAPKEEP_NODE_TOKEN", TOKEN)]);
    add_remotes(&follower, &leader);
    converges(&follower, &ld, &fd, "copy");
    let s = stats(&follower, "copy");
    assert!(s.get("fatal_exception").is_none(), "{s}");
    stage_is_linked_or_absent(&fd.data(), "copy");
}

/// `max_bytes_per_sec` throttles what the follower reads from the leader.
#[test]
fn reads_keep_to_max_bytes_per_sec() {
    let (ld, fd) = (Dirs::new(), Dirs::new());
    write(&ld.data().join("logs/noise"), &noise(2 << 20, 5));
    let leader = start_with(&ld, &[], &[("SNAPKEEP_NODE_TOKEN", TOKEN)]);
    let follower = start(&fd, &[]);
    add_remotes(&follower, &leader);
    let t0 = Instant::now();
    let (status, body) = follow(
        &follower,
        "copy",
        json!({"remote_cluster": "leader", "leader_index": "logs", "read_poll_timeout": "1s",
               "max_bytes_per_sec": "1mb"}),
    );
    assert_eq!(status, 200, "{body}");
    converges(&follower, &ld, &fd, "copy");
    let took = t0.elapsed();
    eprintln!("2 MiB at 1mb/s took {took:?}");
    assert!(took >= Duration::from_millis(1500), "{took:?}");

    // A rewrite comes whole in the leader's answer to the follower's delta
    // asks, not through the repository: the same budget holds it.
    let read_before = stats(&follower, "copy")["bytes_read"].as_u64().unwrap();
    let t1 = Instant::now();
    write(&ld.data().join("logs/noise"), &noise(2 << 20, 6));
    converges(&follower, &ld, &fd, "copy");
    let took = t1.elapsed();
    let read = stats(&follower, "copy")["bytes_read"].as_u64().unwrap() - read_before;
    eprintln!("a 2 MiB rewrite at 1mb/s took {took:?}, {read} bytes read");
    assert!(read >= 2 << 20, "{read}");
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    let info = follower.get("/copy/_ccr/info").json();
    assert_eq!(
        info["follower_indices"][0]["parameters"]["max_bytes_per_sec"],
        "1mb"
    );
}

/// Failover and failback: the follower is promoted and written to; the
/// old leader then follows it with `reuse_existing`. Had the old leader
/// written nothing since, it fast-forwards; had it kept writing, the
/// split brain is reported in its stats. Either way only what differs
/// travels.
#[test]
fn promote_then_failback_fast_forwards_or_reports_split_brain() {
    for old_leader_kept_writing in [false, true] {
        let (ad, bd) = (Dirs::new(), Dirs::new());
        let logs = ad.data().join("logs");
        for i in 0..4u64 {
            write(&logs.join(format!("f{i}")), &noise(1 << 20, 40 + i));
        }
        let a = start_with(&ad, &[], &[("SNAPKEEP_NODE_TOKEN", TOKEN)]);
        let b = start(&bd, &[]);
        add_remotes(&b, &a);
        let (status, body) = follow(
            &b,
            "copy",
            json!({"remote_cluster": "leader", "leader_index": "logs", "read_poll_timeout": "1s"}),
        );
        assert_eq!(status, 200, "{body}");
        converges(&b, &ad, &bd, "copy");

        let (status, promoted) = post(&b, "/copy/_ccr/promote");
        assert_eq!(status, 200, "{promoted}");
        let forked_from = promoted["forked_from"].as_str().unwrap().to_string();
        assert_eq!(
            b.get("/copy/_ccr/info").json(),
            json!({"follower_indices": []})
        );
        // The promoted index is written to: a new file and a changed one.
        let copy = bd.data().join("copy");
        write(&copy.join("after-promote"), b"written on the new leader");
        let mut f1 = noise(1 << 20, 41);
        f1[..1000].copy_from_slice(&noise(1000, 99));
        write(&copy.join("f1"), &f1);
        if old_leader_kept_writing {
            write(
                &logs.join("split"),
                b"written on the old leader after the failover",
            );
        }

        // Failback: the old leader follows the promoted index.
        let r = a.call(
            "PUT",
            "/_cluster/settings",
            &[("Content-Type", "application/json"), ("Authorization", &format!("Bearer {TOKEN}"))],
            Some(
                json!({"persistent": {"cluster.remote.b.proxy_address": format!("127.0.0.1:{}", b.port)}})
                    .to_string()
                    .as_bytes(),
            ),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let r = a.call(
            "PUT",
            "/logs/_ccr/follow",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &format!("Bearer {TOKEN}")),
            ],
            Some(
                json!({"remote_cluster": "b", "leader_index": "copy", "read_poll_timeout": "1s",
                       "reuse_existing": true})
                .to_string()
                .as_bytes(),
            ),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        same_in_time(&a, &copy, &logs);
        let stats = a.call(
            "GET",
            "/logs/_ccr/stats",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
            None,
        );
        let s = stats.json()["indices"][0]["shards"][0].clone();
        let read = s["bytes_read"].as_u64().unwrap();
        eprintln!(
            "failback (old leader kept writing: {old_leader_kept_writing}) fetched {read} bytes"
        );
        assert!(read < 1 << 20, "only what diverged travels: {s}");
        let note = s.get("split_brain_resync").and_then(Value::as_str);
        if old_leader_kept_writing {
            let note = note.unwrap_or_else(|| panic!("split brain must be reported: {s}"));
            assert!(
                note.contains(&format!("1 checkpoint(s) after {forked_from}")),
                "{note}"
            );
        } else {
            assert_eq!(note, None, "{s}");
        }
    }
}

/// An auto-follow pattern follows the leader indices that appear after
/// it, within seconds, under its follower names; exclusions, pause,
/// resume and delete work as Elasticsearch's.
#[test]
fn auto_follow_patterns_follow_new_leader_indices() {
    let (ld, fd) = (Dirs::new(), Dirs::new());
    write(&ld.data().join("logs-old/a"), b"there before the pattern");
    let leader = start_with(&ld, &[], &[("SNAPKEEP_NODE_TOKEN", TOKEN)]);
    let follower = start(&fd, &[]);
    add_remotes(&follower, &leader);
    let pattern = json!({"remote_cluster": "leader", "leader_index_patterns": ["logs-*"],
                         "leader_index_exclusion_patterns": ["logs-tmp*"],
                         "follow_index_pattern": "{{leader_index}}-copy",
                         "read_poll_timeout": "1s"});
    let r = follower.send("PUT", "/_ccr/auto_follow/logs", &pattern.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let shown = follower.get("/_ccr/auto_follow/logs").json();
    assert_eq!(shown["patterns"][0]["pattern"]["active"], true, "{shown}");
    assert_eq!(
        shown["patterns"][0]["pattern"]["read_poll_timeout"], "1s",
        "{shown}"
    );

    write(&ld.data().join("logs-new/b"), b"made after the pattern");
    write(&ld.data().join("logs-tmp1/c"), b"excluded");
    same_in_time(
        &follower,
        &ld.data().join("logs-new"),
        &fd.data().join("logs-new-copy"),
    );
    let info = follower.get("/logs-new-copy/_ccr/info").json();
    assert_eq!(
        info["follower_indices"][0]["leader_index"], "logs-new",
        "{info}"
    );

    // Paused, a new index waits; resumed, it is followed.
    assert_eq!(post(&follower, "/_ccr/auto_follow/logs/pause").0, 200);
    write(&ld.data().join("logs-later/d"), b"made during the pause");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!fd.data().join("logs-later-copy").exists());
    assert_eq!(post(&follower, "/_ccr/auto_follow/logs/resume").0, 200);
    same_in_time(
        &follower,
        &ld.data().join("logs-later"),
        &fd.data().join("logs-later-copy"),
    );
    assert!(!fd.data().join("logs-old-copy").exists());
    assert!(!fd.data().join("logs-tmp1-copy").exists());
    let stats = follower.get("/_ccr/stats").json();
    let auto = &stats["auto_follow_stats"];
    assert_eq!(auto["number_of_successful_follow_indices"], 2, "{stats}");
    assert_eq!(
        stats["follow_stats"]["indices"].as_array().unwrap().len(),
        2
    );

    let r = follower.send("DELETE", "/_ccr/auto_follow/logs", "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(follower.get("/_ccr/auto_follow/logs").status, 404);
    assert_eq!(
        follower.get("/_ccr/auto_follow").json(),
        json!({"patterns": []})
    );
    let r = follower.send(
        "PUT",
        "/_ccr/auto_follow/x",
        &json!({"remote_cluster": "nope", "leader_index_patterns": ["*"]}).to_string(),
    );
    assert_eq!(r.status, 404, "{}", r.text());
}

/// Bi-directional replication as Elasticsearch documents it: each node
/// follows the other's indices through an auto-follow pattern, and the
/// exclusion pattern keeps a follower index from being followed back.
#[test]
fn two_nodes_follow_each_others_indices() {
    let (ed, wd) = (Dirs::new(), Dirs::new());
    // Both nodes lead, so both want the token, from each other and here.
    let env = [("SNAPKEEP_NODE_TOKEN", TOKEN)];
    let (east, west) = (start_with(&ed, &[], &env), start_with(&wd, &[], &env));
    let bearer = format!("Bearer {TOKEN}");
    let authed = |node: &Node, method: &str, path: &str, body: Value| {
        let headers = [
            ("Content-Type", "application/json"),
            ("Authorization", bearer.as_str()),
        ];
        let r = node.call(method, path, &headers, Some(body.to_string().as_bytes()));
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()
    };
    let pattern = json!({"remote_cluster": "other", "leader_index_patterns": ["*"],
                         "leader_index_exclusion_patterns": ["*-replica"],
                         "follow_index_pattern": "{{leader_index}}-replica",
                         "read_poll_timeout": "1s"});
    for (node, other) in [(&east, &west), (&west, &east)] {
        let remote = json!({"persistent": {"cluster": {"remote": {"other": {
            "mode": "proxy", "proxy_address": format!("127.0.0.1:{}", other.port),
            "credentials": TOKEN}}}}});
        authed(node, "PUT", "/_cluster/settings", remote);
        authed(node, "PUT", "/_ccr/auto_follow/other", pattern.clone());
    }
    // Indices made after the patterns (as in Elasticsearch, those already
    // there are not followed).
    let (east_logs, west_logs) = (ed.data().join("east-logs"), wd.data().join("west-logs"));
    write(&east_logs.join("a"), b"written in the east");
    write(&west_logs.join("b"), b"written in the west");
    let (east_copy, west_copy) = (
        wd.data().join("east-logs-replica"),
        ed.data().join("west-logs-replica"),
    );
    same_in_time(&west, &east_logs, &east_copy);
    same_in_time(&east, &west_logs, &west_copy);

    // Writes on either side reach the other.
    write(&east_logs.join("a2"), b"later in the east");
    write(&west_logs.join("b2"), b"later in the west");
    same_in_time(&west, &east_logs, &east_copy);
    same_in_time(&east, &west_logs, &west_copy);

    // Neither follower index is followed back: each node follows one.
    std::thread::sleep(Duration::from_millis(2500));
    for (node, data) in [(&east, &ed), (&west, &wd)] {
        let names: Vec<String> = std::fs::read_dir(data.data())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with("-replica-replica"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
        let stats = authed(node, "GET", "/_ccr/stats", json!({}));
        let followed = stats["follow_stats"]["indices"].as_array().unwrap().len();
        assert_eq!(followed, 1, "{stats}");
    }
}

/// A leader answers a read of a watched index whose watch saw no change
/// since its last comparison from that comparison (no stat walk of the
/// index); any change event (even one that changes nothing a checkpoint
/// sees) makes the next read compare again, and a real change still
/// makes a checkpoint.
/// A leader node's `_ccr/changes` as a follower `t` reads it, at once
/// (`query` appended), and the head point of an answer as `lineage:seq`.
fn changes(leader: &Node, query: &str) -> Value {
    let path = format!("/logs/_ccr/changes?follower=t&timeout=0ms{query}");
    let bearer = format!("Bearer {TOKEN}");
    let r = leader.call("GET", &path, &[("Authorization", &bearer)], None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The sequence numbers of the leader's checkpoints, in order.
fn checkpoint_seqs(ld: &Dirs) -> Vec<u64> {
    let listed = common::json(&[
        "snapshot",
        "list",
        common::s(&ld.state().join("ccr-checkpoints")),
    ]);
    let mut n: Vec<u64> = listed["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshot"].as_str().unwrap())
        .map(|n| n.rsplit('-').next().unwrap().parse().unwrap())
        .collect();
    n.sort();
    n
}

fn head_point(v: &Value) -> String {
    let p = &v["head"]["point"];
    format!("{}:{}", p["lineage"].as_str().unwrap(), p["seq"])
}

#[test]
fn an_unchanged_watched_index_is_not_compared_again() {
    let ld = Dirs::new();
    for i in 0..20u64 {
        write(&ld.data().join(format!("logs/f{i}")), &noise(1000, i));
    }
    let leader = start_with(&ld, &[], &[("SNAPKEEP_NODE_TOKEN", TOKEN)]);
    let read = |after: Option<&str>| -> Value {
        changes(
            &leader,
            &after.map(|a| format!("&after={a}")).unwrap_or_default(),
        )
    };
    let point = head_point;
    let first = read(None);
    assert_eq!(first["compared"], true, "{first}");
    let head = point(&first);
    for _ in 0..3 {
        let again = read(Some(&head));
        assert!(again.get("compared").is_none(), "{again}");
        assert_eq!(point(&again), head);
    }

    // The same mtime set again: an event, and nothing a checkpoint sees.
    // The index is compared once, by the read or by its keeper, whichever
    // comes first; the reads after it stand on that comparison.
    let f3 = ld.data().join("logs/f3");
    let mtime = fs::metadata(&f3).unwrap().modified().unwrap();
    let file = fs::File::options().write(true).open(&f3).unwrap();
    file.set_modified(mtime).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let after_event = read(Some(&head));
    assert_eq!(point(&after_event), head, "nothing changed: {after_event}");
    assert!(read(Some(&head)).get("compared").is_none());

    // A real change: a new checkpoint.
    write(&ld.data().join("logs/new"), b"a change");
    wait_for("a new checkpoint", || point(&read(Some(&head))) != head);
}

/// A followed index is checkpointed when it changes, with no read
/// waiting (its keeper): a follower that comes back finds the checkpoint
/// taken, and its read answers without comparing. Checkpoints taken
/// meanwhile are pruned down to the leased and the newest two.
#[test]
fn a_followed_index_is_checkpointed_when_it_changes_without_a_read() {
    let ld = Dirs::new();
    write(&ld.data().join("logs/a"), b"first");
    let leader = start_with(&ld, &[], &[("SNAPKEEP_NODE_TOKEN", TOKEN)]);
    let point = head_point;
    let held = point(&changes(&leader, ""));
    let seqs = || checkpoint_seqs(&ld);
    assert_eq!(seqs(), [1]);
    for i in 2..=5u64 {
        write(&ld.data().join("logs/a"), format!("version {i}").as_bytes());
        // (A write seen as two changes may take two checkpoints.)
        wait_for("a checkpoint taken with no read", || {
            seqs().last().is_some_and(|&n| n >= i)
        });
    }
    let n = *seqs().last().unwrap();
    wait_for("the prune", || seqs() == [1, n - 1, n]);
    let back = changes(&leader, &format!("&after={held}&held={held}"));
    assert!(point(&back).ends_with(&format!(":{n}")), "{back}");
    assert!(back.get("compared").is_none(), "{back}");
}

/// A follower reads the leader again while it applies the checkpoint it
/// was given (`after` the one it applies, `held` the one its folder still
/// holds), so the leader's next checkpoint is taken during the apply. The
/// held checkpoint keeps its lease and is not pruned; the one being
/// applied is not pruned either; the rest are, after the reads answered.
#[test]
fn a_read_made_during_an_apply_keeps_what_the_folder_holds() {
    let ld = Dirs::new();
    write(&ld.data().join("logs/a"), b"first");
    let leader = start_with(&ld, &[], &[("SNAPKEEP_NODE_TOKEN", TOKEN)]);
    let read = |query: &str| changes(&leader, query);
    let point = head_point;
    // Checkpoints 1 to 4, each read made "during the apply" of the last.
    let held = point(&read(""));
    let mut applying = held.clone();
    let mut previous = held.clone();
    for i in 2..=4 {
        previous = applying.clone();
        write(&ld.data().join("logs/a"), format!("version {i}").as_bytes());
        let mut answer = Value::Null;
        wait_for("the next checkpoint", || {
            answer = read(&format!("&after={applying}&held={held}"));
            point(&answer) != applying
        });
        applying = point(&answer);
    }
    let leases: Value = {
        let text = fs::read(ld.state().join("ccr_leader.json")).unwrap();
        serde_json::from_slice::<Value>(&text).unwrap()["logs"]["leases"].clone()
    };
    let leased = |who: &str| -> String {
        let all = leases.as_array().unwrap();
        let l = all.iter().find(|l| l["follower"] == who);
        let p = &l.unwrap_or_else(|| panic!("{leases}"))["point"];
        format!("{}:{}", p["lineage"].as_str().unwrap(), p["seq"])
    };
    assert_eq!(leased("t#held"), held, "{leases}");
    assert_eq!(leased("t"), applying, "{leases}");
    assert_eq!(leased("t#next"), previous, "{leases}");
    // Pruning runs after the answer: wait for it, then the first (held),
    // third and fourth are there, the second (neither newest nor leased)
    // is not.
    wait_for("the prune", || checkpoint_seqs(&ld).len() == 3);
    assert_eq!(checkpoint_seqs(&ld), [1, 3, 4]);

    // A malformed `held` is named.
    let bearer = format!("Bearer {TOKEN}");
    let r = leader.call(
        "GET",
        "/logs/_ccr/changes?follower=t&timeout=0ms&held=nope",
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("[held]"), "{}", r.text());
}
