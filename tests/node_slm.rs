//! Snapshot lifecycle management (`_slm`) through real HTTP against real
//! node processes with `--slm-minimum-interval 1s`: policies put, read,
//! deleted and kept over a restart, with their record in the repository;
//! runs on demand and on schedule, whose snapshots the repository holds
//! with `metadata.policy`; retention deleting the oldest; stop and start;
//! and a run longer than the interval with `overlap: skip` and `queue`.
//! Counts come from the repository (the CLI reads it), not the API.

mod common;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::node::{start, start_with, Dirs, Node};
use common::{s, write};
use serde_json::{json, Value};

const FAST: [&str; 2] = ["--slm-minimum-interval", "1s"];

fn fill(dirs: &Dirs) {
    write(&dirs.data().join("a").join("data"), b"index a");
    write(&dirs.data().join("b").join("data"), b"index b");
}

fn location(dirs: &Dirs) -> PathBuf {
    dirs.backups().join("r")
}

fn register(node: &Node, dirs: &Dirs) {
    let reg = node.send(
        "PUT",
        "/_snapshot/r",
        &json!({"type": "fs", "settings": {"location": location(dirs)}}).to_string(),
    );
    assert_eq!(reg.status, 200, "{}", reg.text());
}

fn put_policy(node: &Node, id: &str, body: Value) -> common::node::Reply {
    node.send("PUT", &format!("/_slm/policy/{id}"), &body.to_string())
}

/// The repository's snapshots (read by the CLI), oldest first.
fn stored(dirs: &Dirs) -> Vec<Value> {
    let listed = common::json(&["snapshot", "list", s(&location(dirs))]);
    listed["snapshots"].as_array().unwrap().clone()
}

fn stored_names(dirs: &Dirs) -> Vec<String> {
    stored(dirs)
        .iter()
        .map(|s| s["snapshot"].as_str().unwrap().to_string())
        .collect()
}

/// Waits up to `limit` for `done`, polling.
#[track_caller]
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn record_path(dirs: &Dirs, id: &str) -> PathBuf {
    location(dirs).join("slm").join("policies").join(id)
}

fn error_of(reply: &common::node::Reply) -> (u16, String, String) {
    let v = reply.json();
    let e = &v["error"];
    (
        reply.status,
        e["type"].as_str().unwrap_or_default().to_string(),
        e["reason"].as_str().unwrap_or_default().to_string(),
    )
}

fn status(node: &Node) -> String {
    node.get("/_slm/status").json()["operation_mode"]
        .as_str()
        .unwrap()
        .to_string()
}

fn history(node: &Node, id: &str) -> Vec<Value> {
    let h = node.get(&format!("/_slm/policy/{id}/_history"));
    assert_eq!(h.status, 200, "{}", h.text());
    h.json()["history"].as_array().unwrap().clone()
}

#[test]
fn policies_are_put_read_deleted_kept_over_a_restart_and_recorded_in_the_repository() {
    let dirs = Dirs::new();
    fill(&dirs);
    let mut node = start(&dirs, &FAST);
    register(&node, &dirs);
    let body = json!({
        "name": "<nightly-{now/d}>", "schedule": "1h", "repository": "r",
        "config": {"indices": ["a"]}, "retention": {"max_count": 5},
        "timezone": "Europe/Berlin", "overlap": "queue",
    });
    let put = put_policy(&node, "nightly", body.clone());
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.json(), json!({"acknowledged": true}));
    let record: Value =
        serde_json::from_slice(&std::fs::read(record_path(&dirs, "nightly")).unwrap()).unwrap();
    assert_eq!(record["id"], "nightly");
    assert_eq!(record["policy"]["schedule"], "1h");

    let again = put_policy(&node, "nightly", body.clone());
    assert_eq!(again.status, 200, "{}", again.text());
    let got = node.get("/_slm/policy/nightly").json();
    let p = &got["nightly"];
    assert_eq!(p["version"], 2);
    assert_eq!(p["policy"]["name"], "<nightly-{now/d}>");
    assert_eq!(p["policy"]["overlap"], "queue");
    assert_eq!(p["policy"]["timezone"], "Europe/Berlin");
    let modified = p["modified_date_millis"].as_i64().unwrap();
    assert_eq!(
        p["next_execution_millis"].as_i64().unwrap(),
        modified + 3_600_000
    );
    assert_eq!(p["stats"]["snapshots_taken"], 0);
    let record: Value =
        serde_json::from_slice(&std::fs::read(record_path(&dirs, "nightly")).unwrap()).unwrap();
    assert_eq!(record["version"], 2);

    // Refusals: one-line Elasticsearch errors naming the problem.
    let bad = [
        (
            json!({"name": "n", "schedule": "not a cron", "repository": "r"}),
            400,
            "action_request_validation_exception",
            "invalid schedule",
        ),
        (
            json!({"name": "n", "schedule": "500ms", "repository": "r"}),
            400,
            "action_request_validation_exception",
            "slm.minimum_interval",
        ),
        (
            json!({"name": "n", "schedule": "1h", "repository": "nope"}),
            400,
            "illegal_argument_exception",
            "no such repository [nope]",
        ),
        (
            json!({"name": "n", "schedule": "1h", "repository": "r", "colour": 1}),
            400,
            "illegal_argument_exception",
            "colour",
        ),
        (
            json!({"name": "n", "schedule": "1h", "repository": "r", "timezone": "Mars/Base"}),
            400,
            "action_request_validation_exception",
            "Mars/Base",
        ),
        (
            json!({"name": "Upper", "schedule": "1h", "repository": "r"}),
            400,
            "action_request_validation_exception",
            "must be lowercase",
        ),
    ];
    for (body, code, kind, named) in bad {
        let reply = put_policy(&node, "other", body.clone());
        let (status, t, reason) = error_of(&reply);
        assert_eq!(
            (status, t.as_str()),
            (code, kind),
            "{body}: {}",
            reply.text()
        );
        assert!(reason.contains(named), "{body}: {reason}");
        assert_eq!(reason.lines().count(), 1, "{reason}");
    }
    assert!(!record_path(&dirs, "other").exists());
    let missing = node.get("/_slm/policy/nightly,nope");
    let (code, kind, reason) = error_of(&missing);
    assert_eq!((code, kind.as_str()), (404, "resource_not_found_exception"));
    assert!(reason.contains("[nope]"), "{reason}");

    // A restart keeps the policy as it was.
    assert_eq!(node.signal("TERM").code(), Some(0));
    let node = start(&dirs, &FAST);
    let kept = node.get("/_slm/policy").json();
    assert_eq!(kept["nightly"]["version"], 2, "{kept}");
    assert_eq!(
        kept["nightly"]["modified_date_millis"].as_i64(),
        Some(modified)
    );

    let gone = node.call("DELETE", "/_slm/policy/nightly", &[], None);
    assert_eq!(gone.status, 200, "{}", gone.text());
    assert!(
        !record_path(&dirs, "nightly").exists(),
        "the repository's record is deleted"
    );
    assert_eq!(node.get("/_slm/policy").json(), json!({}));
    let twice = node.call("DELETE", "/_slm/policy/nightly", &[], None);
    assert_eq!(twice.status, 404);
    drop(node);

    // Without the flag, Elasticsearch's 15 minutes apply.
    let node = start(&dirs, &[]);
    let reply = put_policy(
        &node,
        "p",
        json!({"name": "n", "schedule": "1m", "repository": "r"}),
    );
    let (code, _, reason) = error_of(&reply);
    assert_eq!(code, 400);
    assert!(reason.contains("900000 ms"), "{reason}");
}

#[test]
fn execute_takes_a_snapshot_that_names_its_policy_and_health_follows_success() {
    let dirs = Dirs::new();
    fill(&dirs);
    let node = start(&dirs, &FAST);
    register(&node, &dirs);
    let body = json!({
        "name": "<snap-{now/d}>", "schedule": "1h", "repository": "r",
        "config": {"indices": ["a"], "metadata": {"who": "test"}},
        "unhealthy_if_no_snapshot_within": "1s",
    });
    assert_eq!(put_policy(&node, "p", body).status, 200);
    let run = node.send("POST", "/_slm/policy/p/_execute", "");
    assert_eq!(run.status, 200, "{}", run.text());
    let name = run.json()["snapshot_name"].as_str().unwrap().to_string();
    let today = jiff::Timestamp::now().strftime("%Y.%m.%d").to_string();
    assert!(name.starts_with(&format!("snap-{today}-")), "{name}");
    wait_for(Duration::from_secs(15), "the run's success", || {
        node.get("/_slm/policy/p").json()["p"]["last_success"]["snapshot_name"] == name
    });
    assert_eq!(stored_names(&dirs), vec![name.clone()]);
    let got = common::json(&["snapshot", "get", s(&location(&dirs)), &name]);
    let manifest = &got["snapshots"][0];
    assert_eq!(manifest["metadata"]["policy"], "p", "{manifest}");
    assert_eq!(manifest["metadata"]["who"], "test", "{manifest}");
    assert_eq!(manifest["indices"], json!(["a"]));

    let p = node.get("/_slm/policy/p").json();
    assert_eq!(p["p"]["stats"]["snapshots_taken"], 1);
    assert_eq!(p["p"]["health"]["status"], "green", "{p}");
    let stats = node.get("/_slm/stats").json();
    assert_eq!(stats["total_snapshots_taken"], 1);
    assert_eq!(stats["policy_stats"][0]["policy"], "p");
    let h = history(&node, "p");
    assert_eq!(h[0]["operation"], "CREATE");
    assert_eq!(h[0]["snapshot_name"], name.as_str());
    assert_eq!(h[0]["success"], true);

    // No success within the threshold: yellow, in the policy and the
    // health report.
    wait_for(
        Duration::from_secs(5),
        "the policy to turn unhealthy",
        || node.get("/_slm/policy/p").json()["p"]["health"]["status"] == "yellow",
    );
    // The reason is the edge watchdog's rule, in its words.
    let p = node.get("/_slm/policy/p").json();
    let reason = p["p"]["health"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("no SUCCESS snapshot within 1s: the last, ["),
        "{p}"
    );
    assert!(reason.contains(name.as_str()), "{p}");
    let report = node.get("/_health_report/slm").json();
    let slm = &report["indicators"]["slm"];
    assert_eq!(slm["status"], "yellow", "{report}");
    assert_eq!(slm["details"]["unhealthy_policies"]["count"], 1, "{report}");

    let unknown = node.send("POST", "/_slm/policy/nope/_execute", "");
    assert_eq!(error_of(&unknown).0, 404);
}

#[test]
fn a_one_second_schedule_fires_repeatedly_and_retention_keeps_the_newest() {
    let dirs = Dirs::new();
    fill(&dirs);
    let node = start(&dirs, &FAST);
    register(&node, &dirs);
    // A snapshot no policy made: retention never touches it.
    let own = node.send("PUT", "/_snapshot/r/manual?wait_for_completion=true", "{}");
    assert_eq!(own.status, 200, "{}", own.text());
    let body = json!({
        "name": "tick", "schedule": "1s", "repository": "r",
        "retention": {"max_count": 2},
    });
    assert_eq!(put_policy(&node, "tick", body).status, 200);
    wait_for(Duration::from_secs(15), "five scheduled snapshots", || {
        stored(&dirs).len() >= 6
    });
    let stop = node.send("POST", "/_slm/stop", "");
    assert_eq!(stop.status, 200);
    wait_for(Duration::from_secs(10), "the lifecycle to stop", || {
        status(&node) == "STOPPED"
    });
    let before = stored(&dirs);
    let runs: Vec<&Value> = before
        .iter()
        .filter(|s| s["snapshot"] != "manual")
        .collect();
    assert!(runs.len() >= 5, "{before:?}");
    // Each slot ran once: the runs are a second apart, never two at once.
    let starts: Vec<i64> = runs
        .iter()
        .map(|s| s["start_time_in_millis"].as_i64().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[1] - w[0] >= 500), "{starts:?}");

    let retention = node.send("POST", "/_slm/_execute_retention", "");
    assert_eq!(retention.status, 200, "{}", retention.text());
    let mut newest: Vec<String> = runs
        .iter()
        .map(|s| s["snapshot"].as_str().unwrap().to_string())
        .collect();
    let deleted = newest.len() - 2;
    let doomed: Vec<String> = newest.drain(..deleted).collect();
    let after = stored_names(&dirs);
    let mut expected = vec!["manual".to_string()];
    expected.extend(newest);
    assert_eq!(
        after, expected,
        "the two newest runs and the manual snapshot stay"
    );
    let stats = node.get("/_slm/stats").json();
    assert_eq!(stats["retention_runs"], 1);
    assert_eq!(stats["total_snapshots_deleted"], deleted as u64);
    assert_eq!(
        stats["policy_stats"][0]["snapshots_deleted"],
        deleted as u64
    );
    let deletions: Vec<Value> = history(&node, "tick")
        .into_iter()
        .filter(|e| e["operation"] == "DELETE")
        .collect();
    assert_eq!(deletions.len(), deleted);
    for d in &deletions {
        assert!(doomed.contains(&d["snapshot_name"].as_str().unwrap().to_string()));
        assert!(d["reason"].as_str().unwrap().contains("max_count"), "{d}");
        assert_eq!(d["success"], true);
    }
    common::ok(&["repo", "check", s(&location(&dirs))]);
}

#[test]
fn stop_halts_firing_across_a_restart_and_start_resumes_it() {
    let dirs = Dirs::new();
    fill(&dirs);
    let mut node = start(&dirs, &FAST);
    register(&node, &dirs);
    let body = json!({"name": "tick", "schedule": "1s", "repository": "r", "missed": "skip"});
    assert_eq!(put_policy(&node, "tick", body).status, 200);
    wait_for(Duration::from_secs(10), "two runs", || {
        stored(&dirs).len() >= 2
    });
    assert_eq!(node.send("POST", "/_slm/stop", "").status, 200);
    wait_for(Duration::from_secs(10), "the lifecycle to stop", || {
        status(&node) == "STOPPED"
    });
    let halted = stored(&dirs).len();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(stored(&dirs).len(), halted, "no run while stopped");

    assert_eq!(node.signal("TERM").code(), Some(0));
    let node = start(&dirs, &FAST);
    assert_eq!(status(&node), "STOPPED", "the mode survives a restart");
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(stored(&dirs).len(), halted);
    let report = node.get("/_health_report/slm").json();
    assert_eq!(report["indicators"]["slm"]["status"], "yellow", "{report}");

    assert_eq!(node.send("POST", "/_slm/start", "").status, 200);
    assert_eq!(status(&node), "RUNNING");
    wait_for(Duration::from_secs(10), "firing to resume", || {
        stored(&dirs).len() >= halted + 2
    });
    // Slots passed while stopped were skipped (`missed: skip`), not run.
    let skipped = history(&node, "tick")
        .iter()
        .any(|e| e["operation"] == "SKIP" && e["reason"].as_str().unwrap().starts_with("missed"));
    assert!(skipped);
}

/// A node whose snapshots of index `a` take about 2.5 s (a `before` hook
/// sleeps), with a 1 s policy of `overlap`.
fn slow_node(dirs: &Dirs, overlap: &str) -> Node {
    let node = start_slow(dirs);
    register(&node, dirs);
    let body = json!({
        "name": "slow", "schedule": "1s", "repository": "r",
        "config": {"indices": ["a"]}, "overlap": overlap,
    });
    let put = put_policy(&node, "slow", body);
    assert_eq!(put.status, 200, "{}", put.text());
    node
}

fn start_slow(dirs: &Dirs) -> Node {
    let hook = "[[hooks]]\nindices = \"a\"\nbefore = [\"sleep\", \"2.5\"]\n";
    let config = dirs.config(hook);
    let mut args = vec!["--config", s(&config)];
    args.extend(FAST);
    start_with(dirs, &args, &[])
}

/// Each run's (start, end) from the repository, and the slot its history
/// entry names.
fn runs(node: &Node, dirs: &Dirs) -> Vec<(i64, i64, i64)> {
    let slots: Vec<(String, i64)> = history(node, "slow")
        .iter()
        .filter(|e| e["operation"] == "CREATE")
        .map(|e| {
            (
                e["snapshot_name"].as_str().unwrap().to_string(),
                e["slot"].as_i64().unwrap(),
            )
        })
        .collect();
    stored(dirs)
        .iter()
        .map(|s| {
            let name = s["snapshot"].as_str().unwrap();
            let slot = slots
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| *t)
                .unwrap();
            (
                s["start_time_in_millis"].as_i64().unwrap(),
                s["end_time_in_millis"].as_i64().unwrap(),
                slot,
            )
        })
        .collect()
}

fn run_for(node: &Node, dirs: &Dirs, n: usize) -> Vec<(i64, i64, i64)> {
    wait_for(Duration::from_secs(18), "runs", || stored(dirs).len() >= n);
    assert_eq!(node.send("POST", "/_slm/stop", "").status, 200);
    wait_for(Duration::from_secs(10), "the lifecycle to stop", || {
        status(node) == "STOPPED"
    });
    runs(node, dirs)
}

fn assert_never_overlapping(runs: &[(i64, i64, i64)]) {
    for w in runs.windows(2) {
        assert!(
            w[1].0 >= w[0].1,
            "a run started before the previous ended: {runs:?}"
        );
    }
}

#[test]
fn a_run_longer_than_the_interval_skips_the_slots_it_overlaps() {
    let dirs = Dirs::new();
    fill(&dirs);
    let node = slow_node(&dirs, "skip");
    let runs = run_for(&node, &dirs, 3);
    assert_never_overlapping(&runs);
    for (start, _, slot) in &runs {
        assert!(
            (0..1000).contains(&(start - slot)),
            "runs start at their slot: {runs:?}"
        );
    }
    // The slots due during a run were skipped: the next run is for a slot
    // after the previous run ended.
    for w in runs.windows(2) {
        assert!(w[1].2 > w[0].1, "{runs:?}");
    }
    let skips = history(&node, "slow")
        .into_iter()
        .filter(|e| e["operation"] == "SKIP")
        .count();
    assert!(skips >= 2, "overlapped slots are recorded as skipped");
}

#[test]
fn a_run_longer_than_the_interval_queues_the_newest_slot_behind_it() {
    let dirs = Dirs::new();
    fill(&dirs);
    let node = slow_node(&dirs, "queue");
    let runs = run_for(&node, &dirs, 3);
    assert_never_overlapping(&runs);
    // Each next run is for a slot that fell due while the previous one
    // ran, and starts as soon as it ended rather than at the next slot.
    for w in runs.windows(2) {
        assert!(w[1].2 < w[0].1, "the slot was queued: {runs:?}");
        let gap = w[1].0 - w[0].1;
        assert!(gap < 900, "back to back: {runs:?}");
    }
    let replaced = history(&node, "slow")
        .into_iter()
        .any(|e| e["operation"] == "SKIP" && e["reason"].as_str().unwrap().contains("replaced"));
    assert!(
        replaced,
        "one slot waits, the newest; older queued ones are skipped"
    );
}

#[test]
fn a_queued_slot_survives_a_kill_and_runs_after_the_restart() {
    let dirs = Dirs::new();
    fill(&dirs);
    let mut node = slow_node(&dirs, "queue");
    let state_file = dirs.state().join("slm.json");
    let queued_in_file = || {
        let v: Value = serde_json::from_slice(&fs::read(&state_file).ok()?).ok()?;
        v["policies"]["slow"]["queued_ms"].as_i64()
    };
    wait_for(Duration::from_secs(15), "a slot to be queued", || {
        queued_in_file().is_some()
    });
    node.signal("KILL");
    let queued = queued_in_file().unwrap();

    let node = start_slow(&dirs);
    wait_for(Duration::from_secs(15), "the queued slot to run", || {
        history(&node, "slow")
            .iter()
            .any(|e| e["operation"] == "CREATE" && e["slot"] == queued && e["success"] == true)
    });
    let names: Vec<String> = history(&node, "slow")
        .iter()
        .filter(|e| e["operation"] == "CREATE" && e["slot"] == queued)
        .map(|e| e["snapshot_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 1, "the queued slot ran once: {names:?}");
    assert!(stored_names(&dirs).contains(&names[0]));
}

#[test]
fn a_policy_changed_or_deleted_through_one_node_is_followed_by_another() {
    let (a_dirs, b_dirs) = (Dirs::new(), Dirs::new());
    fill(&a_dirs);
    fill(&b_dirs);
    // One repository folder, under both nodes' path.repo.
    fs::remove_dir(b_dirs.backups()).unwrap();
    std::os::unix::fs::symlink(a_dirs.backups(), b_dirs.backups()).unwrap();
    let a = start(&a_dirs, &FAST);
    register(&a, &a_dirs);
    let b = start(&b_dirs, &FAST);
    register(&b, &b_dirs);
    let v1 = json!({"name": "<one-{now/d}>", "schedule": "1s", "repository": "r"});
    assert_eq!(put_policy(&a, "p", v1.clone()).status, 200);
    assert_eq!(put_policy(&b, "p", v1).status, 200);
    let version = |n: &Node| n.get("/_slm/policy/p").json()["p"]["version"].clone();
    assert_eq!(version(&b), 1, "B adopted A's record");

    let v2 = json!({"name": "<two-{now/d}>", "schedule": "1s", "repository": "r"});
    assert_eq!(put_policy(&a, "p", v2).status, 200);
    wait_for(Duration::from_secs(10), "B to follow version 2", || {
        version(&b) == 2
    });
    let got = b.get("/_slm/policy/p").json();
    assert_eq!(got["p"]["policy"]["name"], "<two-{now/d}>", "{got}");
    let followed_at = history(&b, "p")
        .iter()
        .find(|e| {
            e["operation"] == "SKIP"
                && e["reason"]
                    .as_str()
                    .unwrap()
                    .contains("changed through another node")
        })
        .map(|e| e["@timestamp"].as_i64().unwrap())
        .expect("B skipped its old version's slot rather than run it");
    std::thread::sleep(Duration::from_millis(2500));
    for e in history(&b, "p") {
        let late = e["@timestamp"].as_i64().unwrap() > followed_at + 1000;
        if late && e["operation"] == "CREATE" {
            let name = e["snapshot_name"].as_str().unwrap_or("");
            assert!(name.starts_with("two-"), "B ran the old version: {e}");
        }
    }

    assert_eq!(a.send("DELETE", "/_slm/policy/p", "").status, 200);
    wait_for(Duration::from_secs(10), "B to drop the policy", || {
        b.get("/_slm/policy/p").status == 404
    });
    let left = stored(&a_dirs).len();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(stored(&a_dirs).len(), left, "no node runs a deleted policy");
}

#[test]
fn the_cli_drives_the_same_api() {
    let dirs = Dirs::new();
    fill(&dirs);
    let node = start(&dirs, &FAST);
    register(&node, &dirs);
    let url = format!("http://127.0.0.1:{}", node.port);
    let file = dirs.root.path().join("hourly.json");
    let body =
        json!({"name": "cli", "schedule": "1h", "repository": "r", "config": {"indices": ["b"]}});
    std::fs::write(&file, body.to_string()).unwrap();
    let cli = |args: &[&str]| -> Value {
        let mut all = vec!["slm"];
        all.extend(args);
        all.extend(["--node", url.as_str(), "--json"]);
        serde_json::from_str(&common::ok(&all)).unwrap()
    };
    assert_eq!(
        cli(&["put", "hourly", "--policy", s(&file)]),
        json!({"acknowledged": true})
    );
    assert_eq!(cli(&["get", "hourly"])["hourly"]["policy"]["name"], "cli");
    let name = cli(&["execute", "hourly"])["snapshot_name"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(Duration::from_secs(15), "the run", || {
        stored_names(&dirs) == [name.clone()]
    });
    wait_for(Duration::from_secs(5), "its history", || {
        cli(&["history", "hourly"])["history"][0]["snapshot_name"] == name.as_str()
    });
    assert_eq!(cli(&["stop"]), json!({"acknowledged": true}));
    assert_eq!(cli(&["status"])["operation_mode"], "STOPPED");
    assert_eq!(cli(&["stats"])["total_snapshots_taken"], 1);
    let e = common::fails(&["slm", "get", "nope", "--node", &url]);
    assert!(e.contains("404") && e.contains("[nope] not found"), "{e}");
    assert_eq!(cli(&["delete", "hourly"]), json!({"acknowledged": true}));
    assert!(!record_path(&dirs, "hourly").exists());
}

#[test]
fn scheduled_retention_runs_by_itself() {
    let dirs = Dirs::new();
    fill(&dirs);
    let mut args = FAST.to_vec();
    args.extend(["--slm-retention-schedule", "* * * * * ?"]);
    let node = start(&dirs, &args);
    register(&node, &dirs);
    let body =
        json!({"name": "t", "schedule": "1s", "repository": "r", "retention": {"max_count": 1}});
    assert_eq!(put_policy(&node, "t", body).status, 200);
    wait_for(Duration::from_secs(15), "retention to delete runs", || {
        node.get("/_slm/stats").json()["total_snapshots_deleted"].as_u64() >= Some(3)
    });
    assert_eq!(node.send("POST", "/_slm/stop", "").status, 200);
    wait_for(Duration::from_secs(10), "the lifecycle to stop", || {
        status(&node) == "STOPPED"
    });
    std::thread::sleep(Duration::from_millis(1500));
    let stats = node.get("/_slm/stats").json();
    let taken = stats["total_snapshots_taken"].as_u64().unwrap();
    let deleted = stats["total_snapshots_deleted"].as_u64().unwrap();
    assert!(stats["retention_runs"].as_u64().unwrap() >= 3, "{stats}");
    assert_eq!(stored(&dirs).len() as u64, taken - deleted, "{stats}");
}

#[test]
fn a_clock_offset_moves_the_lifecycles_time() {
    let dirs = Dirs::new();
    fill(&dirs);
    let day = 86_400_000i64;
    let mut args = FAST.to_vec();
    let offset = day.to_string();
    args.extend(["--test-clock-offset", offset.as_str()]);
    let node = start(&dirs, &args);
    register(&node, &dirs);
    let body = json!({"name": "<d-{now/d}>", "schedule": "1h", "repository": "r"});
    assert_eq!(put_policy(&node, "d", body).status, 200);
    let now = jiff::Timestamp::now();
    let modified = node.get("/_slm/policy/d").json()["d"]["modified_date_millis"]
        .as_i64()
        .unwrap();
    assert!(
        (modified - now.as_millisecond() - day).abs() < 60_000,
        "{modified}"
    );
    let tomorrow = (now + jiff::SignedDuration::from_hours(24))
        .strftime("%Y.%m.%d")
        .to_string();
    let name = node.send("POST", "/_slm/policy/d/_execute", "").json()["snapshot_name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(name.starts_with(&format!("d-{tomorrow}-")), "{name}");
}

#[test]
fn policies_need_manage_and_runs_need_snapshot() {
    let dirs = Dirs::new();
    fill(&dirs);
    let config = dirs.config(
        "[[auth.tokens]]\ntoken = \"mon\"\nrole = \"monitor\"\n\
         [[auth.tokens]]\ntoken = \"snap\"\nrole = \"snapshot\"\n\
         [[auth.tokens]]\ntoken = \"admin\"\nrole = \"manage\"\n",
    );
    let mut args = vec!["--config", s(&config)];
    args.extend(FAST);
    let node = start(&dirs, &args);
    let call = |token: &str, method: &str, path: &str, body: &str| {
        let auth = format!("Bearer {token}");
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        let body = (!body.is_empty()).then_some(body.as_bytes());
        node.call(method, path, &headers, body)
    };
    let reg = json!({"type": "fs", "settings": {"location": location(&dirs)}}).to_string();
    assert_eq!(call("admin", "PUT", "/_snapshot/r", &reg).status, 200);
    let policy = json!({"name": "n", "schedule": "1h", "repository": "r"}).to_string();
    let refused = call("snap", "PUT", "/_slm/policy/p", &policy);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused.text().contains("cluster:admin/slm/put"),
        "{}",
        refused.text()
    );
    assert_eq!(call("admin", "PUT", "/_slm/policy/p", &policy).status, 200);
    assert_eq!(call("mon", "GET", "/_slm/policy/p", "").status, 200);
    assert_eq!(
        call("mon", "POST", "/_slm/policy/p/_execute", "").status,
        403
    );
    assert_eq!(call("snap", "POST", "/_slm/stop", "").status, 403);
    let run = call("snap", "POST", "/_slm/policy/p/_execute", "");
    assert_eq!(run.status, 200, "{}", run.text());
    wait_for(Duration::from_secs(15), "the run", || {
        stored(&dirs).len() == 1
    });
}
