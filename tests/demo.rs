//! `snapkeep demo`, the newcomer's first command, run as they would run it.

mod common;

use common::*;

#[test]
fn the_demo_runs_the_whole_cycle_and_leaves_a_valid_repository() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("demo");
    let out = ok(&["demo", "--dir", s(&dir)]);
    for step in [
        "1. generated",
        "3. first snapshot",
        "5. diff",
        "6. repository",
        "7. restored",
        "8. repo check",
    ] {
        assert!(out.contains(step), "missing {step:?} in:\n{out}");
    }
    assert!(out.contains("unchanged and skipped"), "{out}");
    let repo = dir.join("repo");
    let list = json(&["snapshot", "list", s(&repo)]);
    assert_eq!(list["total"], 2);
    let stats = json(&["repo", "stats", s(&repo)]);
    assert!(stats["dedup_ratio"].as_f64().unwrap() > 1.5, "{stats}");
    ok(&["repo", "check", s(&repo), "--read-data"]);
    // The renamed restore matches the data it came from.
    assert_same_tree(&dir.join("data/logs"), &dir.join("restore/restored-logs"));
    // A second run refuses to reuse the folder rather than mix two demos.
    let err = fails(&["demo", "--dir", s(&dir)]);
    assert!(err.contains("already exists"), "{err}");
}
