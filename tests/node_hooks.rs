//! Consistency hooks (`[[hooks]]` in the node's config) through real HTTP
//! against a real node: each index's `before` hook runs before its files
//! are read and its `after` hook after, and a failed or hung hook makes the
//! snapshot PARTIAL or fails it, as Elasticsearch would.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::node::{command, start, Dirs, Node};
use common::servers::free_port;
use common::{s, write};
use serde_json::{json, Value};

/// A hook entry whose commands are `sh -c` scripts (the hooks themselves
/// take an argv; the scripts only make the test's hooks short).
fn entry(indices: &str, before: &str, after: &str, extra: &str) -> String {
    let argv = |script: &str| json!(["sh", "-c", script]).to_string();
    let mut e = format!("[[hooks]]\nindices = {indices:?}\n{extra}\n");
    if !before.is_empty() {
        e.push_str(&format!("before = {}\n", argv(before)));
    }
    if !after.is_empty() {
        e.push_str(&format!("after = {}\n", argv(after)));
    }
    e
}

/// Each hook run appends `<stage> <index> <snapshot> <repository>` here.
const LOG: &str = "echo \"$SNAPKEEP_HOOK $SNAPKEEP_INDEX $SNAPKEEP_SNAPSHOT $SNAPKEEP_REPOSITORY\" >> \"$HOOK_LOG\"";

fn node_with(dirs: &Dirs, hooks: &str) -> Node {
    let config = dirs.config(hooks);
    let node = common::node::start_with(
        dirs,
        &["--config", s(&config)],
        &[("HOOK_LOG", s(&dirs.root.path().join("hooks.log")))],
    );
    let location = dirs.backups().join("r");
    let reg = node.send(
        "PUT",
        "/_snapshot/r",
        &json!({"type": "fs", "settings": {"location": location}}).to_string(),
    );
    assert_eq!(reg.status, 200, "{}", reg.text());
    node
}

fn log(dirs: &Dirs) -> Vec<String> {
    fs::read_to_string(dirs.root.path().join("hooks.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn snapshot(node: &Node, name: &str, body: Value) -> common::node::Reply {
    node.send(
        "PUT",
        &format!("/_snapshot/r/{name}?wait_for_completion=true"),
        &body.to_string(),
    )
}

/// The snapshot `name` restored by the CLI into a fresh folder.
fn restored(dirs: &Dirs, name: &str) -> tempfile::TempDir {
    let target = tempfile::tempdir().unwrap();
    let location = dirs.backups().join("r");
    common::ok(&["restore", s(&location), name, "--target", s(target.path())]);
    target
}

#[test]
fn each_index_is_read_between_its_before_and_after_hooks() {
    let dirs = Dirs::new();
    for index in ["db-1", "db-2", "logs"] {
        write(&dirs.data().join(index).join("data"), b"as it was read");
    }
    // `before` adds a file the snapshot must hold; `after` overwrites the
    // data, which the snapshot must hold as it was before.
    let before = format!("{LOG}; echo flushed > \"$SNAPKEEP_INDEX_PATH/from-before\"");
    let after = format!("{LOG}; echo changed-after > \"$SNAPKEEP_INDEX_PATH/data\"");
    let node = node_with(&dirs, &entry("db-*", &before, &after, ""));

    let made = snapshot(&node, "s1", json!({}));
    assert_eq!(made.status, 200, "{}", made.text());
    assert_eq!(made.json()["snapshot"]["state"], "SUCCESS");

    let mut runs = log(&dirs);
    let order = |line: &str| runs.iter().position(|l| l == line).unwrap();
    for index in ["db-1", "db-2"] {
        assert!(
            order(&format!("before {index} s1 r")) < order(&format!("after {index} s1 r")),
            "{runs:?}"
        );
    }
    runs.sort();
    assert_eq!(
        runs,
        [
            "after db-1 s1 r",
            "after db-2 s1 r",
            "before db-1 s1 r",
            "before db-2 s1 r"
        ],
        "one bracket per matching index, none for logs"
    );
    let copy = restored(&dirs, "s1");
    for index in ["db-1", "db-2"] {
        let dir = copy.path().join(index);
        assert_eq!(fs::read(dir.join("from-before")).unwrap(), b"flushed\n");
        assert_eq!(fs::read(dir.join("data")).unwrap(), b"as it was read");
        let live = fs::read(dirs.data().join(index).join("data")).unwrap();
        assert_eq!(live, b"changed-after\n", "the after hook ran");
    }
    assert!(!copy.path().join("logs/from-before").exists());
}

#[test]
fn a_failed_before_hook_fails_its_index() {
    let dirs = Dirs::new();
    for index in ["db-bad", "db-good"] {
        write(&dirs.data().join(index).join("data"), b"x");
    }
    let failing = format!("{LOG}; [ \"$SNAPKEEP_INDEX\" != db-bad ] || {{ echo noise >&2; echo 'FATAL: backup already running' >&2; exit 7; }}");
    let node = node_with(&dirs, &entry("db-*", &failing, LOG, ""));

    // Partial: the index is left out with the hook's reason.
    let made = snapshot(&node, "p", json!({"partial": true}));
    assert_eq!(made.status, 200, "{}", made.text());
    assert_eq!(made.json()["snapshot"]["state"], "PARTIAL");
    let got = node.get("/_snapshot/r/p").json()["snapshots"][0].clone();
    assert_eq!(got["state"], "PARTIAL");
    assert_eq!(got["indices"], json!(["db-good"]));
    let failures = got["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{got}");
    assert_eq!(failures[0]["index"], "db-bad");
    assert_eq!(
        failures[0]["reason"],
        "before hook [sh] failed with exit code 7: FATAL: backup already running"
    );
    assert_eq!(
        got["shards"],
        json!({"total": 2, "failed": 1, "successful": 1})
    );
    // The after hook undoes a before hook that ran, even a failed one.
    assert!(log(&dirs).contains(&"after db-bad p r".to_string()));

    // Not partial: the snapshot fails naming the index and the hook, and
    // nothing is committed; the other index's bracket is still closed.
    let refused = snapshot(&node, "n", json!({}));
    assert_eq!(refused.status, 500, "{}", refused.text());
    let error = refused.json()["error"].clone();
    assert_eq!(error["type"], "snapshot_exception");
    let reason = error["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("[r:n] ")
            && reason.contains("index [db-bad]")
            && reason.contains("before hook [sh] failed with exit code 7"),
        "{reason}"
    );
    assert_eq!(node.get("/_snapshot/r/n").status, 404);
    let runs = log(&dirs);
    let count = |line: &str| runs.iter().filter(|l| *l == line).count();
    assert_eq!(
        count("before db-good n r"),
        count("after db-good n r"),
        "{runs:?}"
    );
}

#[test]
fn a_failed_after_hook_never_leaves_a_successful_snapshot() {
    let dirs = Dirs::new();
    for index in ["db-1", "db-2"] {
        write(&dirs.data().join(index).join("data"), b"x");
    }
    let after = "[ \"$SNAPKEEP_INDEX\" != db-2 ] || { echo 'thaw failed' >&2; exit 1; }";
    let node = node_with(&dirs, &entry("db-*", "true", after, ""));

    let made = snapshot(&node, "p", json!({"partial": true}));
    assert_eq!(made.status, 200, "{}", made.text());
    let info = made.json()["snapshot"].clone();
    assert_eq!(info["state"], "PARTIAL");
    assert_eq!(info["indices"], json!(["db-1"]));
    assert_eq!(
        info["failures"][0]["reason"],
        "after hook [sh] failed with exit code 1: thaw failed"
    );

    let refused = snapshot(&node, "n", json!({}));
    assert_eq!(refused.status, 500, "{}", refused.text());
    let reason = refused.json()["error"]["reason"].to_string();
    assert!(
        reason.contains("index [db-2]") && reason.contains("after hook"),
        "{reason}"
    );
    assert_eq!(node.get("/_snapshot/r/n").status, 404);
}

#[test]
fn a_hung_hook_is_killed_at_its_timeout() {
    let dirs = Dirs::new();
    write(&dirs.data().join("db-1/data"), b"x");
    write(&dirs.data().join("other/data"), b"y");
    let hung = format!("{LOG}; sleep 60");
    let node = node_with(&dirs, &entry("db-1", &hung, LOG, "timeout_secs = 1"));
    let started = Instant::now();
    let made = snapshot(&node, "p", json!({"partial": true}));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(made.status, 200, "{}", made.text());
    let info = made.json()["snapshot"].clone();
    assert_eq!(info["state"], "PARTIAL");
    assert_eq!(info["indices"], json!(["other"]));
    assert_eq!(
        info["failures"][0]["reason"],
        "before hook [sh] timed out after 1s and was killed"
    );
}

#[test]
fn bad_hooks_stop_the_node_with_one_line() {
    let dirs = Dirs::new();
    let cases = [
        (
            "[[hooks]]\nindices = \"db-*\"\nbefore = []\n",
            "hooks[0].before is an empty command",
        ),
        (
            "[[hooks]]\nindices = \"db-*\"\nbefore = [\"x\"]\nshell = true\n",
            "shell",
        ),
        (
            "[[hooks]]\nindices = \"db-*\"\n",
            "neither `before` nor `after`",
        ),
        (
            "[[hooks]]\nindices = \"*\"\nafter = [\"x\"]\ntimeout_secs = 0\n",
            "timeout_secs",
        ),
    ];
    for (hooks, named) in cases {
        let config = dirs.config(hooks);
        let out = command(&dirs, free_port(), &["--config", s(&config)])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{hooks}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.starts_with("error: config ") && err.contains(named),
            "{hooks}: {err}"
        );
        assert!(err.contains("line "), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    // A well-formed entry starts.
    let good = dirs.config(&entry("*", "true", "true", "timeout_secs = 5"));
    let node = start(&dirs, &["--config", s(&good)]);
    assert_eq!(node.get("/").status, 200);
}
