//! `snapkeep node` restoring into its data folder and managing the
//! folder's indices, through real HTTP: restore with and without renames,
//! ES's refusal over an open index, restoring over a closed one,
//! `_cat/indices`, delete/close/open (closed state over a restart) and
//! `_recovery`.

mod common;

use common::node::{start, Dirs, Node};
use common::{assert_same_tree, write};
use serde_json::json;
use std::time::{Duration, Instant};

/// A node with repository `r` and a snapshot `s1` of indices `logs` and
/// `users`.
fn node_with_snapshot(dirs: &Dirs) -> Node {
    let node = start(dirs, &[]);
    let location = dirs.backups().join("r");
    let reg = json!({"type": "fs", "settings": {"location": location}}).to_string();
    assert_eq!(node.send("PUT", "/_snapshot/r", &reg).status, 200);
    for i in 0..20u8 {
        write(
            &dirs.data().join(format!("logs/part-{i}")),
            &vec![i; 30_000],
        );
    }
    write(&dirs.data().join("logs/nested/deep"), b"deep");
    write(&dirs.data().join("users/u"), &[7u8; 500]);
    let made = node.send("PUT", "/_snapshot/r/s1?wait_for_completion=true", "{}");
    assert_eq!(made.status, 200, "{}", made.text());
    node
}

fn restore(node: &Node, body: &str) -> common::node::Reply {
    node.send(
        "POST",
        "/_snapshot/r/s1/_restore?wait_for_completion=true",
        body,
    )
}

#[test]
fn restores_with_rename_and_refuses_over_an_open_index() {
    let dirs = Dirs::new();
    let node = node_with_snapshot(&dirs);

    let over = restore(&node, r#"{"indices":"logs"}"#);
    assert_eq!(over.status, 500, "{}", over.text());
    let e = over.json()["error"].clone();
    assert_eq!(e["type"], "snapshot_restore_exception");
    let reason = e["reason"].as_str().unwrap();
    assert!(reason.starts_with("[r:s1/"), "{reason}");
    assert!(
        reason.contains(
            "cannot restore index [logs] because an open index with same name already exists"
        ),
        "{reason}"
    );

    let renamed = restore(
        &node,
        r#"{"indices":"logs","rename_pattern":"(.+)","rename_replacement":"copy_$1"}"#,
    );
    assert_eq!(renamed.status, 200, "{}", renamed.text());
    assert_eq!(
        renamed.json(),
        json!({"snapshot": {"snapshot": "s1", "indices": ["copy_logs"],
               "shards": {"total": 1, "failed": 0, "successful": 1}}})
    );
    assert_same_tree(&dirs.data().join("logs"), &dirs.data().join("copy_logs"));

    // Without waiting: accepted, then the index appears.
    std::fs::remove_dir_all(dirs.data().join("users")).unwrap();
    let later = node.send(
        "POST",
        "/_snapshot/r/s1/_restore",
        r#"{"indices":["users"]}"#,
    );
    assert_eq!(later.json(), json!({"accepted": true}));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let rec = node.get("/users/_recovery").json();
        if rec["users"]["shards"][0]["stage"] == "DONE" {
            let shard = &rec["users"]["shards"][0];
            assert_eq!(shard["type"], "SNAPSHOT");
            assert_eq!(shard["source"]["snapshot"], "s1");
            assert_eq!(shard["source"]["repository"], "r");
            assert_eq!(shard["index"]["files"]["total"], 1);
            assert_eq!(shard["index"]["size"]["total_in_bytes"], 500);
            assert_eq!(shard["index"]["files"]["percent"], "100.0%");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no DONE recovery: {rec}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::read(dirs.data().join("users/u")).unwrap(),
        vec![7u8; 500]
    );

    let copy = node.get("/copy_logs/_recovery").json();
    assert_eq!(copy["copy_logs"]["shards"][0]["source"]["index"], "logs");
    let cat = node
        .get("/_cat/recovery?h=index,type,stage,snapshot")
        .text();
    assert!(
        cat.contains("copy_logs snapshot done  s1") || cat.contains("copy_logs snapshot done s1"),
        "{cat}"
    );
    assert_eq!(node.get("/nope/_recovery").status, 404);

    let status = node.get("/_snapshot/r/s1/_status").json();
    let st = &status["snapshots"][0];
    assert_eq!(
        (st["snapshot"].as_str(), st["state"].as_str()),
        (Some("s1"), Some("SUCCESS"))
    );
    assert_eq!(st["stats"]["total"]["file_count"], 22);
    assert_eq!(st["stats"]["total"]["size_in_bytes"], 20 * 30_000 + 4 + 500);
    assert_eq!(st["indices"]["logs"]["shards"]["0"]["stage"], "DONE");
    assert_eq!(st["shards_stats"]["done"], 2);
    assert_eq!(node.get("/_snapshot/r/nope/_status").status, 404);
    assert_eq!(
        node.get("/_snapshot/r/_status").json(),
        json!({"snapshots": []})
    );
    assert_eq!(
        node.get("/_snapshot/_status").json(),
        json!({"snapshots": []})
    );
    assert_eq!(node.get("/_snapshot/zz/_status").status, 404);

    let missing = restore(&node, "{}");
    assert_eq!(missing.status, 500, "every index exists and is open");
    let no_snap = node.send("POST", "/_snapshot/r/zz/_restore", "{}");
    assert_eq!(no_snap.status, 404, "{}", no_snap.text());
    assert_eq!(
        no_snap.json()["error"]["type"],
        "snapshot_missing_exception"
    );
}

#[test]
fn indices_are_listed_closed_opened_and_deleted_and_closed_ones_restored_over() {
    let dirs = Dirs::new();
    let node = node_with_snapshot(&dirs);

    let cat = node.get("/_cat/indices?format=json").json();
    let rows = cat.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{cat}");
    assert_eq!(rows[0]["index"], "logs");
    assert_eq!(rows[0]["status"], "open");
    assert_eq!(rows[0]["docs.count"], "21");
    assert_eq!(rows[1]["index"], "users");
    assert_eq!(rows[1]["docs.count"], "1");
    assert_eq!(rows[1]["store.size"], "500b");

    let closed = node.send("POST", "/logs/_close", "");
    assert_eq!(closed.status, 200, "{}", closed.text());
    assert_eq!(
        closed.json(),
        json!({"acknowledged": true, "shards_acknowledged": true, "indices": {"logs": {"closed": true}}})
    );
    let pristine = restore(
        &node,
        r#"{"indices":"logs","rename_pattern":"logs","rename_replacement":"pristine"}"#,
    );
    assert_eq!(pristine.status, 200, "{}", pristine.text());
    // Damage the closed index; restoring over it repairs it in place.
    write(&dirs.data().join("logs/part-3"), b"changed");
    std::fs::remove_file(dirs.data().join("logs/part-4")).unwrap();
    write(&dirs.data().join("logs/extra"), b"not in the snapshot");
    let over = restore(&node, r#"{"indices":"logs"}"#);
    assert_eq!(over.status, 200, "{}", over.text());
    assert_same_tree(&dirs.data().join("pristine"), &dirs.data().join("logs"));
    let rows = node.get("/_cat/indices?format=json&h=index,status").json();
    std::fs::remove_dir_all(dirs.data().join("pristine")).unwrap();
    assert_eq!(
        rows[0],
        json!({"index": "logs", "status": "open"}),
        "restored = open"
    );

    // Closed survives a restart.
    assert_eq!(node.send("POST", "/users/_close", "").status, 200);
    let text = node.get("/_cat/indices?h=index,status,docs.count").text();
    assert!(text.contains("users close"), "{text}");
    drop(node);
    let node = start(&dirs, &[]);
    let text = node.get("/_cat/indices?h=index,status").text();
    assert!(
        text.contains("users close") && text.contains("logs  open"),
        "{text}"
    );
    let opened = node.send("POST", "/users/_open", "");
    assert_eq!(
        opened.json(),
        json!({"acknowledged": true, "shards_acknowledged": true})
    );
    assert!(node
        .get("/_cat/indices?h=index,status")
        .text()
        .contains("users open"));

    let wild = node.call("DELETE", "/*", &[], None);
    assert_eq!(wild.status, 400);
    assert_eq!(
        wild.json()["error"]["reason"],
        "Wildcard expressions or all indices are not allowed"
    );
    assert_eq!(node.call("DELETE", "/_all", &[], None).status, 400);
    let gone = node.call("DELETE", "/nope", &[], None);
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json()["error"]["type"], "index_not_found_exception");
    assert_eq!(gone.json()["error"]["index"], "nope");
    let deleted = node.call("DELETE", "/users", &[], None);
    assert_eq!(deleted.json(), json!({"acknowledged": true}));
    assert!(!dirs.data().join("users").exists());
    assert_eq!(
        node.get("/_cat/indices?format=json")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The node's other paths are no indices.
    assert_eq!(node.get("/_snapshot/r").status, 200);
    assert_eq!(node.call("DELETE", "/_cat", &[], None).status, 404);
}

/// 40 MiB of incompressible noise in index `big` (five 8 MiB packs), a
/// repository `slow` whose registration limits restores to 4 MiB/s, and
/// its snapshot `s1`: a restore takes about ten seconds, in steps of one
/// pack read.
fn node_with_slow_snapshot(dirs: &Dirs) -> Node {
    let node = start(dirs, &[]);
    let location = dirs.backups().join("slow");
    let reg = json!({"type": "fs", "settings": {"location": location, "max_restore_bytes_per_sec": "4mb"}});
    assert_eq!(
        node.send("PUT", "/_snapshot/slow", &reg.to_string()).status,
        200
    );
    for i in 0..10u64 {
        write(
            &dirs.data().join(format!("big/f{i:02}.bin")),
            &common::noise(4 << 20, i + 1),
        );
    }
    write(&dirs.data().join("big/small"), b"tail");
    let made = node.send("PUT", "/_snapshot/slow/s1?wait_for_completion=true", "{}");
    assert_eq!(made.status, 200, "{}", made.text());
    node
}

const COPY: &str = r#"{"indices":"big","rename_pattern":"big","rename_replacement":"copy"}"#;

/// `copy`'s `_recovery` shard once `until` holds (polled; a minute at most).
fn shard_when(
    node: &Node,
    what: &str,
    until: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rec = node.get("/copy/_recovery");
        if rec.status == 200 {
            let shard = rec.json()["copy"]["shards"][0].clone();
            if until(&shard) {
                return shard;
            }
        }
        assert!(Instant::now() < deadline, "never {what}: {}", rec.text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Part of the bytes the run had to fetch are in, not all.
fn midway(shard: &serde_json::Value) -> bool {
    let size = &shard["index"]["size"];
    let fetch = size["total_in_bytes"].as_u64().unwrap_or(0)
        - size["reused_in_bytes"].as_u64().unwrap_or(0);
    let got = size["recovered_in_bytes"].as_u64().unwrap_or(0);
    shard["stage"] == "INDEX" && got > 0 && got < fetch
}

fn done(shard: &serde_json::Value) -> bool {
    shard["stage"] == "DONE"
}

fn records(dirs: &Dirs) -> usize {
    std::fs::read_dir(dirs.state().join("restores")).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count()
    })
}

fn staging_folders(dirs: &Dirs) -> usize {
    std::fs::read_dir(dirs.data())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".snapkeep-restore-")
        })
        .count()
}

#[test]
fn a_throttled_restore_shows_live_progress_then_done() {
    let dirs = Dirs::new();
    let node = node_with_slow_snapshot(&dirs);
    let accepted = node.send("POST", "/_snapshot/slow/s1/_restore", COPY);
    assert_eq!(accepted.json(), json!({"accepted": true}));

    let live = shard_when(&node, "midway", midway);
    assert_eq!(live["type"], "SNAPSHOT");
    assert!(live.get("stop_time_in_millis").is_none(), "{live}");
    assert_eq!(live["source"]["repository"], "slow");
    assert_eq!(live["source"]["snapshot"], "s1");
    assert_eq!(live["source"]["index"], "big");
    assert_eq!(live["index"]["size"]["total_in_bytes"], 40 * (1 << 20) + 4);
    assert_eq!(live["index"]["files"]["total"], 11);
    assert_ne!(live["index"]["size"]["percent"], "100.0%");
    assert_eq!(records(&dirs), 1, "a running restore is recorded");
    let cat = node
        .get("/_cat/recovery?h=index,stage,repository&format=json")
        .json();
    assert_eq!(cat[0]["stage"], "index", "{cat}");
    let active = node.get("/_recovery?active_only=true").json();
    assert!(active.get("copy").is_some(), "{active}");
    let busy = node.send("POST", "/_snapshot/slow/s1/_restore", COPY);
    assert_eq!(busy.status, 500, "a running restore's index is taken");

    let end = shard_when(&node, "DONE", done);
    assert_eq!(
        end["index"]["size"]["recovered_in_bytes"],
        40 * (1 << 20) + 4
    );
    assert_eq!(end["index"]["size"]["percent"], "100.0%");
    assert_eq!(end["index"]["files"]["recovered"], 11);
    assert_eq!(end["source"]["restoreUUID"], live["source"]["restoreUUID"]);
    assert!(
        end["stop_time_in_millis"].as_i64().unwrap()
            >= end["start_time_in_millis"].as_i64().unwrap()
    );
    assert!(
        end["total_time_in_millis"].as_i64().unwrap() >= 5_000,
        "4 MiB/s kept 40 MiB busy for ten seconds: {end}"
    );
    assert_same_tree(&dirs.data().join("big"), &dirs.data().join("copy"));
    assert_eq!(records(&dirs), 0, "a finished restore's record goes");
    let active = node.get("/_recovery?active_only=true").json();
    assert_eq!(active, json!({}));
}

#[test]
fn a_restore_survives_sigterm_and_kill_9_and_ends_byte_identical() {
    let dirs = Dirs::new();
    let mut node = node_with_slow_snapshot(&dirs);
    let accepted = node.send("POST", "/_snapshot/slow/s1/_restore", COPY);
    assert_eq!(accepted.json(), json!({"accepted": true}));
    let first = shard_when(&node, "midway", midway);
    let uuid = first["source"]["restoreUUID"].clone();

    // SIGTERM: the node stops at once, leaving the record.
    assert!(node.signal("TERM").success());
    assert_eq!(records(&dirs), 1);
    assert_eq!(
        staging_folders(&dirs),
        1,
        "the interrupted run's work is kept"
    );

    // The next start resumes it by itself, reusing what was fetched.
    let mut node = start(&dirs, &[]);
    let second = shard_when(&node, "resumed midway", midway);
    assert_eq!(second["source"]["restoreUUID"], uuid, "the same restore");
    assert_eq!(
        second["start_time_in_millis"],
        first["start_time_in_millis"]
    );
    assert!(
        second["index"]["size"]["reused_in_bytes"].as_u64().unwrap() > 0,
        "{second}"
    );
    let over = node.send("POST", "/_snapshot/slow/s1/_restore", COPY);
    assert_eq!(
        over.status,
        500,
        "a resumed restore's index is taken: {}",
        over.text()
    );
    let refused = node.call("DELETE", "/copy", &[], None);
    assert_eq!(refused.status, 400, "{}", refused.text());

    // kill -9 mid-way through the resumed run; the next start ends it.
    node.signal("KILL");
    assert_eq!(records(&dirs), 1);
    let node = start(&dirs, &[]);
    let end = shard_when(&node, "DONE", done);
    assert_eq!(end["source"]["restoreUUID"], uuid);
    assert_eq!(end["index"]["size"]["percent"], "100.0%");
    assert_same_tree(&dirs.data().join("big"), &dirs.data().join("copy"));
    assert_eq!(records(&dirs), 0);
    assert_eq!(staging_folders(&dirs), 0);
    let cat = node.get("/_cat/recovery?h=index,stage&format=json").json();
    assert_eq!(cat, json!([{"index": "copy", "stage": "done"}]));
}

#[test]
fn a_restore_whose_repository_is_gone_is_marked_failed_at_start() {
    let dirs = Dirs::new();
    let mut node = node_with_slow_snapshot(&dirs);
    node.send("POST", "/_snapshot/slow/s1/_restore", COPY);
    shard_when(&node, "midway", midway);
    node.signal("KILL");
    // Unregistered while the node is down (its registrations file edited).
    let regs = dirs.state().join("repositories.json");
    std::fs::write(&regs, "{}").unwrap();

    let mut node = start(&dirs, &[]);
    let failed = shard_when(&node, "FAILED", |s| s["stage"] == "FAILED");
    assert_eq!(failed["source"]["repository"], "slow");
    node.signal("TERM");
    let mut err = String::new();
    use std::io::Read;
    node.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("repository [slow] is no longer registered"),
        "{err}"
    );
    let dir = dirs.state().join("restores");
    let kept = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(kept).unwrap()).unwrap();
    assert_eq!(
        record["failed"],
        "repository [slow] is no longer registered"
    );
}
