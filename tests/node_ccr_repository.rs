//! Cross-cluster replication through shared object storage: two real
//! node processes on 127.0.0.1 that are no remote of each other, and one
//! S3 bucket (moto) registered as a repository on both. The leader
//! publishes an index into it (`_ccr/publish`); the follower's remote in
//! `repository` mode reads the feed and the checkpoints there, and
//! converges byte-identical through adds, rewrites, deletes and renames
//! and over a kill -9 of the leader while it publishes; the follower's
//! lease object keeps what it reads while older checkpoints are pruned.
//! A remote whose repository is not registered is refused; one that
//! cannot be read is reported by `_remote/info` and in the stats of a
//! follow through it, with the reason; a follow of an index that is not
//! published is refused with what to do; another node's index of the
//! same name does not overwrite the feed; auto-follow picks up an index
//! published later. Through an encrypted repository the feed and lease
//! objects are sealed.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::node::{start_with, Dirs, Node};
use common::servers::{create_bucket, moto, s3_env};
use common::{noise, write};
use serde_json::{json, Value};

/// Waits until the follower folder holds the leader's tree.
fn converges(follower: &Node, l: &Path, f: &Path) {
    common::ccr::same_in_time(follower, &[], l, f);
}

fn stats(node: &Node, index: &str) -> Value {
    let r = node.get(&format!("/{index}/_ccr/stats"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["indices"][0]["shards"][0].clone()
}

fn send(node: &Node, method: &str, path: &str, body: Value) -> (u16, Value) {
    let r = node.send(method, path, &body.to_string());
    (r.status, r.json())
}

#[test]
fn a_follower_reads_a_leader_it_cannot_reach_through_one_bucket() {
    let s3 = moto();
    create_bucket(s3.port, "ccr");
    let env: Vec<(String, String)> = s3_env(s3.port);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let shared = json!({"type": "s3", "settings": {"bucket": "ccr", "base_path": "shared",
        "endpoint": format!("http://127.0.0.1:{}", s3.port)}});

    let (ld, fd) = (Dirs::new(), Dirs::new());
    let logs = ld.data().join("logs");
    write(&logs.join("small"), b"one");
    write(&logs.join("big"), &noise(3 << 20, 1));
    write(&logs.join("sub/deep/rotated.1"), &noise(70_000, 2));
    let mut leader = start_with(&ld, &[], &env);
    let follower = start_with(&fd, &[], &env);
    for node in [&leader, &follower] {
        let (status, body) = send(node, "PUT", "/_snapshot/shared", shared.clone());
        assert_eq!(status, 200, "{body}");
    }

    // A repository remote must name a repository registered here.
    let (status, body) = send(
        &follower,
        "PUT",
        "/_cluster/settings",
        json!({"persistent": {"cluster.remote.nowhere.mode": "repository",
                              "cluster.remote.nowhere.repository": "unregistered"}}),
    );
    assert_eq!(status, 400, "{body}");
    let reason = body["error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("[unregistered]") && reason.contains("not registered"),
        "{reason}"
    );
    // One that cannot be read (its folder went away) is reported so.
    let lost = fd.backups().join("lost");
    let (status, body) = send(
        &follower,
        "PUT",
        "/_snapshot/lost",
        json!({"type": "fs", "settings": {"location": lost}}),
    );
    assert_eq!(status, 200, "{body}");
    fs::remove_dir_all(&lost).unwrap();
    let (status, body) = send(
        &follower,
        "PUT",
        "/_cluster/settings",
        json!({"persistent": {"cluster": {"remote": {
            "far": {"mode": "repository", "repository": "shared"},
            "lost": {"mode": "repository", "repository": "lost"},
        }}}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["persistent"]["cluster"]["remote"]["far"],
        json!({"mode": "repository", "repository": "shared", "skip_unavailable": "false"})
    );
    let info = follower.get("/_remote/info").json();
    assert_eq!(info["far"]["connected"], true, "{info}");
    assert_eq!(info["far"]["mode"], "repository", "{info}");
    assert_eq!(info["lost"]["connected"], false, "{info}");
    let reason = info["lost"]["reason"].as_str().unwrap();
    assert!(reason.contains("cannot read repository [lost]"), "{reason}");

    // A follow through the unreadable one is taken (as one of an
    // unreachable leader node is) and its reads fail with the reason.
    let (status, body) = send(
        &follower,
        "PUT",
        "/lost-copy/_ccr/follow",
        json!({"remote_cluster": "lost", "leader_index": "logs"}),
    );
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = stats(&follower, "lost-copy");
        if let Some(e) = s["last_error"].as_str() {
            assert!(
                e.contains("cannot open repository [lost]") && e.contains("no snapkeep repository"),
                "{s}"
            );
            assert!(s["failed_read_requests"].as_u64().unwrap() >= 1, "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "{s}");
        std::thread::sleep(Duration::from_millis(50));
    }
    for action in ["pause_follow", "unfollow"] {
        let r = follower.send("POST", &format!("/lost-copy/_ccr/{action}"), "");
        assert_eq!(r.status, 200, "{}", r.text());
    }

    // Not published yet: the follow is refused with what to do.
    let follow =
        json!({"remote_cluster": "far", "leader_index": "logs", "read_poll_timeout": "1s"});
    let (status, body) = send(&follower, "PUT", "/copy/_ccr/follow", follow.clone());
    assert_eq!(status, 404, "{body}");
    let reason = body["error"]["reason"].as_str().unwrap();
    assert!(reason.contains("PUT /logs/_ccr/publish"), "{reason}");
    // Publishing needs a registered, writable repository and an index.
    let (status, body) = send(
        &leader,
        "PUT",
        "/logs/_ccr/publish",
        json!({"repository": "nope"}),
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["type"], "repository_missing_exception");
    let (status, _) = send(
        &leader,
        "PUT",
        "/absent/_ccr/publish",
        json!({"repository": "shared"}),
    );
    assert_eq!(status, 404);

    let t0 = Instant::now();
    let (status, body) = send(
        &leader,
        "PUT",
        "/logs/_ccr/publish",
        json!({"repository": "shared"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["published"], true, "{body}");
    let (status, body) = send(&follower, "PUT", "/copy/_ccr/follow", follow);
    assert_eq!(status, 200, "{body}");
    let copy = fd.data().join("copy");
    converges(&follower, &logs, &copy);
    eprintln!("first checkpoint (3.1 MB) followed in {:?}", t0.elapsed());

    // One small change reaches the follower within about a second.
    let t0 = Instant::now();
    write(&logs.join("tick"), b"tick");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !copy.join("tick").exists() {
        assert!(
            Instant::now() < deadline,
            "{}",
            follower.get("/_ccr/stats").text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let lag = t0.elapsed();
    eprintln!("one change reached the follower through the bucket in {lag:?}");
    assert!(lag < Duration::from_secs(5), "{lag:?}");

    // Adds, rewrites (the big file in its middle only), deletes, renames.
    let mut big = noise(3 << 20, 1);
    big[1 << 20..(1 << 20) + 5000].copy_from_slice(&noise(5000, 3));
    write(&logs.join("big"), &big);
    write(&logs.join("small"), b"one, then two");
    write(&logs.join("sub/new"), b"added");
    fs::rename(logs.join("sub/deep/rotated.1"), logs.join("sub/rotated.2")).unwrap();
    write(&logs.join("gone"), b"soon deleted");
    converges(&follower, &logs, &copy);
    fs::remove_file(logs.join("gone")).unwrap();
    converges(&follower, &logs, &copy);

    // The switch comes before its record: the stats catch up at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = stats(&follower, "copy");
    while s["leader_checkpoint"] != s["follower_checkpoint"] && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        s = stats(&follower, "copy");
    }
    assert_eq!(s["leader_checkpoint"], s["follower_checkpoint"], "{s}");
    assert_eq!(s["remote_cluster"], "far");
    assert!(s["checkpoints_applied"].as_u64().unwrap() >= 3, "{s}");
    assert!(s.get("fatal_exception").is_none(), "{s}");
    // Only the changed chunks travelled after the first checkpoint.
    let read = s["bytes_read"].as_u64().unwrap();
    eprintln!("bytes read by the follower: {read}");
    assert!(read < (3 << 20) * 2, "{s}");

    // The publisher sees the follower's lease and prunes the checkpoints
    // nobody reads (it prunes as the head moves: a few more changes).
    let mut p = Value::Null;
    for n in 0..10 {
        p = leader.get("/logs/_ccr/publish").json();
        if p["checkpoints_pruned"].as_u64().unwrap() >= 1 {
            break;
        }
        write(&logs.join(format!("more-{n}")), b"another checkpoint");
        converges(&follower, &logs, &copy);
    }
    eprintln!("publisher: {p}");
    assert_eq!(p["repository"], "shared", "{p}");
    assert!(p["lease_objects"].as_u64().unwrap() >= 1, "{p}");
    let published = p["checkpoints_published"].as_u64().unwrap();
    let pruned = p["checkpoints_pruned"].as_u64().unwrap();
    assert!(published >= 4 && pruned >= 1, "{p}");
    assert!(p.get("last_error").is_none(), "{p}");
    let listed = leader.get("/_snapshot/shared/_all").json();
    let kept = listed["snapshots"].as_array().unwrap().len() as u64;
    assert!(kept <= published - pruned, "{listed}");

    // Another node's index of the same name is not published over the
    // leader's feed: refused with the reason, the feed left alone.
    write(
        &fd.data().join("logs/other"),
        b"the follower node's own logs",
    );
    let (status, body) = send(
        &follower,
        "PUT",
        "/logs/_ccr/publish",
        json!({"repository": "shared"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["published"], false, "{body}");
    let reason = body["last_error"].as_str().unwrap();
    assert!(reason.contains("from another leader"), "{reason}");
    assert_eq!(
        follower.send("DELETE", "/logs/_ccr/publish", "").status,
        200
    );

    // Auto-follow through the repository: an index published after the
    // pattern was put is followed.
    let (status, body) = send(
        &follower,
        "PUT",
        "/_ccr/auto_follow/metrics",
        json!({"remote_cluster": "far", "leader_index_patterns": ["metrics-*"],
               "follow_index_pattern": "{{leader_index}}-copy", "read_poll_timeout": "1s"}),
    );
    assert_eq!(status, 200, "{body}");
    let metrics = ld.data().join("metrics-1");
    write(&metrics.join("cpu"), &noise(100_000, 4));
    let (status, body) = send(
        &leader,
        "PUT",
        "/metrics-1/_ccr/publish",
        json!({"repository": "shared"}),
    );
    assert_eq!(status, 200, "{body}");
    converges(&follower, &metrics, &fd.data().join("metrics-1-copy"));
    let all = leader.get("/_ccr/publish").json();
    let names: Vec<&str> = all["publishers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["index"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["logs", "metrics-1"], "{all}");

    // forget_follower on the publisher deletes a paused follower's lease
    // object; resumed, the follower leases again and catches up.
    let publish_leases = || leader.get("/logs/_ccr/publish").json()["lease_objects"].clone();
    let r = follower.send("POST", "/copy/_ccr/pause_follow", "");
    assert_eq!(r.status, 200, "{}", r.text());
    std::thread::sleep(Duration::from_millis(1500));
    let follower_id = follower.get("/").json()["cluster_uuid"].clone();
    let (status, body) = send(
        &leader,
        "POST",
        "/logs/_ccr/forget_follower",
        json!({"follower_cluster": follower_id, "follower_index": "copy",
               "leader_remote_cluster": "far"}),
    );
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    for n in 0.. {
        // Each change makes the publisher take a checkpoint and count the
        // lease objects again.
        write(&logs.join(format!("forgotten-{n}")), b"while paused");
        std::thread::sleep(Duration::from_millis(500));
        if publish_leases() == json!(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            leader.get("/logs/_ccr/publish").text()
        );
    }
    let r = follower.send("POST", "/copy/_ccr/resume_follow", "");
    assert_eq!(r.status, 200, "{}", r.text());
    converges(&follower, &logs, &copy);
    let deadline = Instant::now() + Duration::from_secs(20);
    while publish_leases() == json!(0) {
        assert!(
            Instant::now() < deadline,
            "the resumed follower took no lease"
        );
        write(&logs.join("after-resume"), &noise(1000, 7));
        std::thread::sleep(Duration::from_millis(500));
    }

    // The leader killed (-9) while it publishes a large change: the
    // publisher restarts with the node and nothing is lost.
    for i in 0..4u64 {
        write(&logs.join(format!("part-{i}")), &noise(2 << 20, 900 + i));
    }
    std::thread::sleep(Duration::from_millis(200));
    leader.signal("KILL");
    write(
        &logs.join("while-down"),
        b"written while the leader was down",
    );
    let leader = start_with(&ld, &[], &env);
    converges(&follower, &logs, &copy);
    let s = stats(&follower, "copy");
    assert!(s.get("fatal_exception").is_none(), "{s}");
    common::ccr::stage_is_linked_or_absent(&fd.data(), "copy");

    // Stopped, the publisher takes no more checkpoints.
    let r = leader.send("DELETE", "/logs/_ccr/publish", "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(leader.get("/logs/_ccr/publish").status, 404);
    write(&logs.join("after-unpublish"), b"not followed");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!copy.join("after-unpublish").exists());
}

/// Through an encrypted repository (one folder both nodes reach): the
/// follower converges, and the feed and lease objects are sealed like the
/// repository's other control records, so the storage sees neither index
/// names nor checkpoints.
#[test]
fn a_follow_through_an_encrypted_repository_keeps_its_feed_and_leases_sealed() {
    let password = [("SNAPKEEP_PASSWORD", "ccr through a sealed bucket")];
    let (ld, fd) = (Dirs::new(), Dirs::new());
    let shared_dir = ld.backups().join("sealed");
    let init = common::run_env(
        &[(password[0].0.to_string(), password[0].1.to_string())],
        &["repo", "init", shared_dir.to_str().unwrap(), "--encryption"],
    );
    assert!(init.status.success(), "{init:?}");
    let logs = ld.data().join("logs");
    write(&logs.join("small"), b"one");
    write(&logs.join("big"), &noise(1 << 20, 4));
    let leader = start_with(&ld, &[], &password);
    // The follower's path.repo also allows the leader's folder (a shared
    // file system both mount).
    let also = ld.backups();
    let follower = start_with(&fd, &["--path-repo", also.to_str().unwrap()], &password);
    let shared = json!({"type": "fs", "settings": {"location": shared_dir}});
    for node in [&leader, &follower] {
        let (status, body) = send(node, "PUT", "/_snapshot/shared", shared.clone());
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = send(
        &follower,
        "PUT",
        "/_cluster/settings",
        json!({"persistent": {"cluster.remote.far.mode": "repository",
                              "cluster.remote.far.repository": "shared"}}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(
        &leader,
        "PUT",
        "/logs/_ccr/publish",
        json!({"repository": "shared"}),
    );
    assert_eq!(status, 200, "{body}");
    let follow =
        json!({"remote_cluster": "far", "leader_index": "logs", "read_poll_timeout": "1s"});
    let (status, body) = send(&follower, "PUT", "/copy/_ccr/follow", follow);
    assert_eq!(status, 200, "{body}");
    let copy = fd.data().join("copy");
    converges(&follower, &logs, &copy);
    write(&logs.join("small"), b"one, then two");
    converges(&follower, &logs, &copy);

    let ccr = shared_dir.join("ccr").join("logs");
    let feed = fs::read(ccr.join("feed.json")).unwrap();
    let leases: Vec<_> = fs::read_dir(ccr.join("leases"))
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(!leases.is_empty());
    for (what, bytes) in std::iter::once(("feed", &feed)).chain(leases.iter().map(|l| ("lease", l)))
    {
        assert!(
            serde_json::from_slice::<Value>(bytes).is_err()
                && !bytes.windows(4).any(|w| w == b"logs"),
            "the {what} object is readable in the storage: {}",
            String::from_utf8_lossy(bytes)
        );
    }
}
