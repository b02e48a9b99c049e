//! Restore planning: dry runs, plan files, fetch-once, sparse output.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use common::*;

#[test]
fn a_dry_run_reports_the_plan_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo, dst) = (t.path().join("src"), t.path().join("repo"), t.path().join("dst"));
    let shared = noise(3 << 20, 1);
    write(&src.join("logs/a"), &shared);
    write(&src.join("logs/b"), &shared); // same content: fetched once
    write(&src.join("logs/c"), &noise(100_000, 2));
    write(&src.join("other/x"), b"x");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);

    let plan_file = t.path().join("plan.json");
    let dry = json(&["restore", s(&repo), "s1", "--target", s(&dst), "--indices", "logs", "--dry-run", "--plan-out", s(&plan_file)]);
    let sum = &dry["summary"];
    assert_eq!(sum["files"], 3);
    assert_eq!(sum["bytes"], (6 << 20) + 100_000);
    let fetched = sum["bytes_to_fetch"].as_u64().unwrap();
    assert!(fetched < (4 << 20), "the shared file is fetched once: {fetched}");
    assert!(sum["requests"].as_u64().unwrap() >= 1);
    assert!(!dst.exists(), "a dry run writes nothing");
    let plan: serde_json::Value = serde_json::from_slice(&fs::read(&plan_file).unwrap()).unwrap();
    assert_eq!(plan["files"].as_array().unwrap().len(), 3);
    assert_eq!(plan["summary"], dry["summary"]);

    // The real restore does what the plan said.
    let out = json(&["restore", s(&repo), "s1", "--target", s(&dst), "--indices", "logs"]);
    assert_eq!(out["snapshot"]["files"], 3);
    assert_same_tree(&src.join("logs"), &dst.join("logs"));

    // Now the target is occupied: the dry run names the conflict and fails.
    let out = run(&["restore", s(&repo), "s1", "--target", s(&dst), "--indices", "logs", "--dry-run", "--json"]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["conflicts"][0]["type"], "target_not_empty");
}

#[test]
fn zero_runs_are_restored_as_holes() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo, dst) = (t.path().join("src"), t.path().join("repo"), t.path().join("dst"));
    let mut data = vec![0u8; 48 << 20];
    data[..4096].copy_from_slice(&noise(4096, 3));
    let n = data.len();
    data[n - 4096..].copy_from_slice(&noise(4096, 4));
    write(&src.join("db/sparse.bin"), &data);
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    ok(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    let restored = dst.join("db/sparse.bin");
    assert!(fs::read(&restored).unwrap() == data);
    let allocated = fs::metadata(&restored).unwrap().blocks() * 512;
    assert!(allocated < (24 << 20), "{allocated} bytes allocated for a mostly-zero 48 MiB file");
}

#[test]
fn no_partial_files_are_left_behind() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo, dst) = (t.path().join("src"), t.path().join("repo"), t.path().join("dst"));
    for i in 0..20 {
        write(&src.join(format!("idx/d{}/f{i}", i % 3)), &noise(10_000 + i, i as u64));
    }
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    ok(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    assert_same_tree(&src.join("idx"), &dst.join("idx"));
}
