//! Searchable snapshots on a real node, over HTTP, with real FUSE mounts:
//! `_mount` (shared_cache and full_copy, renamed), the mounted index in
//! `_cat/indices` and readable in the data folder, `_searchable_snapshots`
//! stats, cache stats and clear, ES's refusals, a mounted snapshot's
//! delete refused, mounts carried over a restart, `DELETE /<index>`
//! unmounting, after which the snapshot deletes.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::node::{start, Dirs, Node};
use common::{assert_same_tree, is_mounted, noise, write};
use serde_json::json;

/// Kills the node with SIGTERM (it unmounts), or detaches what a failed
/// test left mounted.
struct Stopping<'a>(&'a Dirs);

impl Drop for Stopping<'_> {
    fn drop(&mut self) {
        for name in ["logs-mounted", "users-copy"] {
            let at = self.0.data().join(name);
            if is_mounted(&at) {
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(&at)
                    .status();
            }
        }
    }
}

fn node_with_snapshot(dirs: &Dirs) -> Node {
    let node = start(dirs, &[]);
    let location = dirs.backups().join("r");
    let reg = json!({"type": "fs", "settings": {"location": location}}).to_string();
    assert_eq!(node.send("PUT", "/_snapshot/r", &reg).status, 200);
    write(&dirs.data().join("logs/big"), &noise(3 << 20, 1));
    write(&dirs.data().join("logs/sub/small"), b"small\n");
    write(&dirs.data().join("users/u"), &noise(200_000, 2));
    let made = node.send("PUT", "/_snapshot/r/s1?wait_for_completion=true", "{}");
    assert_eq!(made.status, 200, "{}", made.text());
    node
}

#[test]
fn mounted_indices_read_lazily_show_their_figures_and_pin_their_snapshot() {
    let dirs = Dirs::new();
    let _cleanup = Stopping(&dirs);
    let mut node = node_with_snapshot(&dirs);
    let mounted = node.send(
        "POST",
        "/_snapshot/r/s1/_mount?storage=shared_cache&wait_for_completion=true",
        r#"{"index":"logs","renamed_index":"logs-mounted"}"#,
    );
    assert_eq!(mounted.status, 200, "{}", mounted.text());
    assert_eq!(
        mounted.json()["snapshot"]["indices"],
        json!(["logs-mounted"])
    );
    let at = dirs.data().join("logs-mounted");
    assert!(is_mounted(&at));
    assert_same_tree(&dirs.data().join("logs"), &at);
    let cat = node.get("/_cat/indices?format=json").json();
    assert!(
        cat.as_array()
            .unwrap()
            .iter()
            .any(|r| r["index"] == "logs-mounted"),
        "{cat}"
    );
    // Read-only, as ES's mounted indices are.
    assert!(std::fs::write(at.join("new"), b"x").is_err());

    let stats = node.get("/logs-mounted/_searchable_snapshots/stats").json();
    let total = &stats["indices"]["logs-mounted"]["total"];
    assert!(total["open_count"].as_u64().unwrap() >= 2, "{stats}");
    assert!(
        total["read_bytes_in_bytes"].as_u64().unwrap() >= 3 << 20,
        "{stats}"
    );
    assert_eq!(stats["indices"]["logs-mounted"]["snapshot"], "s1");
    let cache = node.get("/_searchable_snapshots/cache/stats").json();
    let shared =
        cache["nodes"].as_object().unwrap().values().next().unwrap()["shared_cache"].clone();
    assert!(shared["misses"].as_u64().unwrap() > 0, "{cache}");
    assert!(shared["size_in_bytes"].as_u64().unwrap() > 0, "{cache}");
    assert_eq!(
        node.send("POST", "/_searchable_snapshots/cache/clear", "")
            .status,
        200
    );
    let cache = node.get("/_searchable_snapshots/cache/stats").json();
    let shared =
        cache["nodes"].as_object().unwrap().values().next().unwrap()["shared_cache"].clone();
    assert_eq!(shared["size_in_bytes"], 0, "{cache}");

    // ES's refusals.
    let again = node.send(
        "POST",
        "/_snapshot/r/s1/_mount",
        r#"{"index":"logs","renamed_index":"logs-mounted"}"#,
    );
    assert_eq!(again.status, 400);
    assert_eq!(
        again.json()["error"]["type"],
        "resource_already_exists_exception"
    );
    let missing = node.send(
        "POST",
        "/_snapshot/r/nope/_mount",
        r#"{"index":"logs","renamed_index":"x1"}"#,
    );
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(
        missing.json()["error"]["type"],
        "snapshot_missing_exception"
    );
    let no_index = node.send("POST", "/_snapshot/r/s1/_mount", r#"{"index":"nope"}"#);
    assert_eq!(no_index.status, 404, "{}", no_index.text());
    assert_eq!(
        no_index.json()["error"]["type"],
        "index_not_found_exception"
    );
    assert!(
        !dirs.data().join("nope").exists(),
        "a failed mount leaves no folder"
    );
    let pinned = node.send("DELETE", "/_snapshot/r/s1", "");
    assert_eq!(pinned.status, 400, "{}", pinned.text());
    assert_eq!(
        pinned.json()["error"]["type"],
        "snapshot_in_use_deletion_exception"
    );

    // full_copy: the whole index lands in its own cache in the background.
    let copy = node.send(
        "POST",
        "/_snapshot/r/s1/_mount",
        r#"{"index":"users","renamed_index":"users-copy"}"#,
    );
    assert_eq!(copy.status, 200, "{}", copy.text());
    assert_eq!(copy.json(), json!({"accepted": true}));
    let copied = dirs.state().join("searchable/full_copy/users-copy");
    let deadline = Instant::now() + Duration::from_secs(20);
    while folder_bytes(&copied) < 200_000 {
        assert!(
            Instant::now() < deadline,
            "full_copy never filled its cache"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_same_tree(&dirs.data().join("users"), &dirs.data().join("users-copy"));

    // A restart unmounts cleanly and mounts both again.
    assert!(node.signal("TERM").success());
    assert!(!is_mounted(&at), "SIGTERM unmounts");
    let node = start(&dirs, &[]);
    assert!(is_mounted(&at), "mounted again after the restart");
    assert_same_tree(&dirs.data().join("logs"), &at);

    // DELETE /<index> unmounts; then the snapshot may go.
    assert_eq!(node.send("DELETE", "/logs-mounted", "").status, 200);
    assert_eq!(node.send("DELETE", "/users-copy", "").status, 200);
    assert!(!at.exists() && !copied.exists());
    let stats = node.get("/_searchable_snapshots/stats").json();
    assert_eq!(stats["indices"], json!({}), "{stats}");
    let deleted = node.send("DELETE", "/_snapshot/r/s1", "");
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let mut node = node;
    assert!(node.signal("TERM").success());
}

fn folder_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}
