//! Running snapshots through a real `snapkeep node` over HTTP: live
//! `_status` and `_current` while one runs, DELETE aborting it, SIGTERM
//! aborting it, and kill -9 in the middle of one. The registration's
//! `max_snapshot_bytes_per_sec` keeps a snapshot running long enough to be
//! seen: reads run ahead of the throttled uploads by a few packs only, so
//! `processed` stays below `total` for seconds whatever the machine's speed.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::node::{start, Dirs, Node};
use common::{noise, ok, pack_files, s, write};
use serde_json::{json, Value};
use snapkeep::native::inflight;
use snapkeep::native::location::Location;
use snapkeep::native::repo::Repo;

/// Uploads at this rate: 8 MiB (one pack) a second.
const THROTTLE: &str = "8mb";
/// Files of the big index: 20 × 4 MiB, ten seconds of uploads.
const BIG_FILES: u64 = 20;
const BIG_FILE: usize = 4 << 20;

/// The data folder: `big` (slow to upload) and `small` (quick).
fn fill(dirs: &Dirs) {
    for i in 0..BIG_FILES {
        write(
            &dirs.data().join(format!("big/f{i:02}.bin")),
            &noise(BIG_FILE, i + 1),
        );
    }
    write(&dirs.data().join("small/a.txt"), b"small index\n");
}

/// Registers `r` (an `fs` repository in path.repo), throttled or not.
fn register(node: &Node, dirs: &Dirs, throttled: bool) -> PathBuf {
    let location = dirs.backups().join("r");
    let mut settings = json!({ "location": location });
    if throttled {
        settings["max_snapshot_bytes_per_sec"] = json!(THROTTLE);
    }
    let body = json!({"type": "fs", "settings": settings}).to_string();
    let reply = node.send("PUT", "/_snapshot/r", &body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    location
}

/// A finished snapshot `name` of the small index.
fn stored_snapshot(node: &Node, name: &str) {
    let path = format!("/_snapshot/r/{name}?wait_for_completion=true");
    let reply = node.send("PUT", &path, r#"{"indices": "small"}"#);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["snapshot"]["state"], "SUCCESS");
}

/// Starts snapshot `name` of every index without waiting.
fn start_snapshot(node: &Node, name: &str) {
    let reply = node.send("PUT", &format!("/_snapshot/r/{name}"), "{}");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({"accepted": true}));
}

/// Polls `probe` every 50 ms for at most a minute, until it answers.
fn poll<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `_status` shows snapshot `name` STARTED with files still to
/// read, and returns that answer's element.
fn seen_midway(node: &Node, name: &str) -> Value {
    poll("a snapshot midway", || {
        let reply = node.get(&format!("/_snapshot/r/{name}/_status"));
        let one = reply.json()["snapshots"][0].clone();
        let processed = one["stats"]["processed"]["size_in_bytes"].as_u64()?;
        let total = one["stats"]["total"]["size_in_bytes"].as_u64()?;
        (one["state"] == "STARTED" && processed > 0 && processed < total).then_some(one)
    })
}

fn names(listing: &Value) -> Vec<String> {
    listing["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshot"].as_str().unwrap().to_string())
        .collect()
}

fn open(location: &Path) -> Repo {
    Repo::open(&Location::Local(location.to_path_buf())).unwrap()
}

/// No snapshot is announced as running in the repository.
fn assert_no_markers(location: &Path) {
    let markers = inflight::scan(&open(location), i64::MAX / 2).unwrap();
    assert!(
        markers.live.is_empty() && markers.stale.is_empty(),
        "an in-flight marker is left"
    );
}

#[test]
fn status_and_current_show_a_running_snapshot_live_until_it_completes() {
    let dirs = Dirs::new();
    fill(&dirs);
    let node = start(&dirs, &[]);
    register(&node, &dirs, true);
    stored_snapshot(&node, "old");
    start_snapshot(&node, "live");

    let again = node.send("PUT", "/_snapshot/r/live", "{}");
    assert_eq!(again.status, 400);
    assert_eq!(
        again.json()["error"]["type"],
        "snapshot_name_already_in_use_exception"
    );
    assert_eq!(
        again.json()["error"]["reason"],
        "[r:live] Invalid snapshot name [live], snapshot with the same name is already in-progress"
    );
    let taken = node.send("PUT", "/_snapshot/r/old", "{}");
    assert_eq!(
        taken.status, 400,
        "a stored name is refused before accepting"
    );

    let live = seen_midway(&node, "live");
    assert_eq!(live["repository"], "r");
    assert_eq!(live["include_global_state"], true);
    let uuid = live["uuid"].as_str().unwrap().to_string();
    assert!(!uuid.is_empty() && uuid != "_na_", "{live}");
    let big = &live["indices"]["big"];
    assert_eq!(big["shards"]["0"]["stage"], "STARTED");
    assert_eq!(big["stats"]["total"]["file_count"], BIG_FILES);
    assert_eq!(big["stats"]["incremental"]["file_count"], BIG_FILES);
    assert!(big["stats"]["processed"]["file_count"].as_u64().unwrap() < BIG_FILES);
    assert_eq!(live["shards_stats"]["started"], 2, "big and small");
    assert_eq!(live["shards_stats"]["total"], 2);

    // Without names: running snapshots only, of the repository or of all.
    let repo_status = node.get("/_snapshot/r/_status").json();
    assert_eq!(names(&repo_status), ["live"]);
    assert_eq!(names(&node.get("/_snapshot/_status").json()), ["live"]);
    assert_eq!(
        names(&node.get("/_snapshot/r/_all/_status").json()),
        ["live"]
    );
    // Named: the running ones first, then the stored ones.
    let mixed = node.get("/_snapshot/r/old,live/_status").json();
    assert_eq!(names(&mixed), ["live", "old"]);
    assert_eq!(mixed["snapshots"][1]["state"], "SUCCESS");
    let missing = node.get("/_snapshot/r/live,gone/_status");
    assert_eq!(missing.status, 404);
    let skipped = node.get("/_snapshot/r/live,gone/_status?ignore_unavailable=true");
    assert_eq!(names(&skipped.json()), ["live"]);

    let current = node.get("/_snapshot/r/_current").json();
    assert_eq!(names(&current), ["live"]);
    let info = &current["snapshots"][0];
    assert_eq!(info["state"], "IN_PROGRESS");
    assert_eq!(info["uuid"], uuid.as_str());
    assert_eq!(info["end_time_in_millis"], 0);
    assert_eq!(info["duration_in_millis"], 0);
    assert_eq!(info["indices"], json!(["big", "small"]));
    assert_eq!(current["total"], 1);
    let all = node.get("/_snapshot/r/_all?sort=name").json();
    assert_eq!(names(&all), ["live", "old"]);
    assert_eq!(all["snapshots"][0]["state"], "IN_PROGRESS");
    assert_eq!(
        names(&node.get("/_snapshot/r/_current,old").json()),
        ["old", "live"]
    );
    assert_eq!(names(&node.get("/_snapshot/r/l*").json()), ["live"]);
    assert_eq!(
        node.get("/_snapshot/r/live").json()["snapshots"][0]["state"],
        "IN_PROGRESS"
    );
    let cat = node.get("/_cat/snapshots/r?h=id,status,end_epoch").text();
    let rows: Vec<Vec<&str>> = cat
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{cat}");
    assert_eq!(rows[0][..2], ["old", "SUCCESS"], "{cat}");
    assert_eq!(rows[1], ["live", "IN_PROGRESS", "0"], "{cat}");

    poll("the snapshot to finish", || {
        let running = node.get("/_snapshot/r/_status").json();
        names(&running).is_empty().then_some(())
    });
    let done = node.get("/_snapshot/r/live").json();
    assert_eq!(done["snapshots"][0]["state"], "SUCCESS");
    assert_eq!(done["snapshots"][0]["uuid"], uuid.as_str());
    let finished = node.get("/_snapshot/r/live/_status").json();
    let stats = &finished["snapshots"][0]["indices"]["big"]["stats"];
    assert_eq!(stats["total"]["file_count"], BIG_FILES);
    assert!(
        stats.get("processed").is_none(),
        "processed left out once done"
    );
    assert!(names(&node.get("/_snapshot/r/_current").json()).is_empty());
}

#[test]
fn delete_aborts_a_running_snapshot_and_leaves_no_trace_of_it() {
    let dirs = Dirs::new();
    fill(&dirs);
    let config = dirs.config("cleanup_grace_secs = 0");
    let node = start(&dirs, &["--config", s(&config)]);
    let location = register(&node, &dirs, true);
    stored_snapshot(&node, "old");
    start_snapshot(&node, "live");
    seen_midway(&node, "live");

    let asked = Instant::now();
    let deleted = node.call("DELETE", "/_snapshot/r/live,old", &[], None);
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(deleted.json(), json!({"acknowledged": true}));
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "{:?}",
        asked.elapsed()
    );

    assert!(names(&node.get("/_snapshot/r/_all").json()).is_empty());
    assert!(names(&node.get("/_snapshot/r/_status").json()).is_empty());
    assert_eq!(node.get("/_snapshot/r/live").status, 404);
    assert_eq!(node.get("/_snapshot/r/live/_status").status, 404);
    assert_no_markers(&location);
    ok(&["repo", "check", s(&location)]);
    // What the aborted snapshot uploaded is unreferenced: cleanup takes it.
    let cleanup = node.call("POST", "/_snapshot/r/_cleanup", &[], None);
    assert_eq!(cleanup.status, 200, "{}", cleanup.text());
    assert!(pack_files(&location).is_empty(), "a pack is left");
    ok(&["repo", "check", s(&location), "--read-data"]);

    // The name is free again, and a wildcard delete reaches running ones.
    start_snapshot(&node, "live");
    seen_midway(&node, "live");
    let star = node.call("DELETE", "/_snapshot/r/l*", &[], None);
    assert_eq!(star.json(), json!({"acknowledged": true}));
    assert!(names(&node.get("/_snapshot/r/_all").json()).is_empty());
    let nothing = node.call("DELETE", "/_snapshot/r/gone", &[], None);
    assert_eq!(nothing.status, 404);
    ok(&["repo", "check", s(&location)]);
}

#[test]
fn a_repository_in_use_is_neither_unregistered_nor_changed_until_its_snapshot_ends() {
    let dirs = Dirs::new();
    fill(&dirs);
    let node = start(&dirs, &[]);
    let location = register(&node, &dirs, true);
    start_snapshot(&node, "live");
    seen_midway(&node, "live");

    let unregister = node.call("DELETE", "/_snapshot/r", &[], None);
    assert_eq!(unregister.status, 409, "{}", unregister.text());
    let error = &unregister.json()["error"];
    assert_eq!(error["type"], "repository_conflict_exception");
    assert_eq!(
        error["reason"],
        "[r] trying to modify or unregister repository that is currently used"
    );
    let wildcard = node.call("DELETE", "/_snapshot/*", &[], None);
    assert_eq!(wildcard.status, 409, "{}", wildcard.text());
    let other = json!({"type": "fs", "settings": {"location": dirs.backups().join("elsewhere")}});
    let changed = node.send("PUT", "/_snapshot/r", &other.to_string());
    assert_eq!(changed.status, 409, "{}", changed.text());
    // The same registration again changes nothing, so it is accepted.
    let same = json!({"type": "fs", "settings": {"location": location, "max_snapshot_bytes_per_sec": THROTTLE}});
    let again = node.send("PUT", "/_snapshot/r", &same.to_string());
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(
        node.get("/_snapshot/r").json()["r"]["settings"]["location"],
        json!(location)
    );

    let deleted = node.call("DELETE", "/_snapshot/r/live", &[], None);
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let unregister = node.call("DELETE", "/_snapshot/r", &[], None);
    assert_eq!(unregister.status, 200, "{}", unregister.text());
    assert_eq!(node.get("/_snapshot/r").status, 404);
    ok(&["repo", "check", s(&location)]);
}

#[test]
fn sigterm_aborts_a_running_snapshot_before_it_commits() {
    let dirs = Dirs::new();
    fill(&dirs);
    let config = dirs.config("shutdown_grace_secs = 20");
    let mut node = start(&dirs, &["--config", s(&config)]);
    let location = register(&node, &dirs, true);
    start_snapshot(&node, "live");
    seen_midway(&node, "live");
    let asked = Instant::now();
    let status = node.signal("TERM");
    assert_eq!(status.code(), Some(0));
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "{:?}",
        asked.elapsed()
    );
    assert_no_markers(&location);
    ok(&["repo", "check", s(&location)]);
    let listed = common::json(&["snapshot", "list", s(&location)]);
    assert_eq!(listed["total"], 0, "nothing committed: {listed}");
}

#[test]
fn kill_9_during_a_snapshot_leaves_a_repository_that_checks_clean() {
    let dirs = Dirs::new();
    fill(&dirs);
    let mut node = start(&dirs, &[]);
    let location = register(&node, &dirs, true);
    start_snapshot(&node, "live");
    seen_midway(&node, "live");
    assert!(node.signal("KILL").code().is_none());
    ok(&["repo", "check", s(&location)]);

    let node = start(&dirs, &[]);
    assert!(names(&node.get("/_snapshot/r/_all").json()).is_empty());
    assert!(names(&node.get("/_snapshot/_status").json()).is_empty());
    register(&node, &dirs, false);
    let reply = node.send("PUT", "/_snapshot/r/live?wait_for_completion=true", "{}");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["snapshot"]["state"], "SUCCESS");
    ok(&["repo", "check", s(&location), "--read-data"]);
}
