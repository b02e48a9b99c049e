//! A repository written by snapkeep 0.1 (format v1) lives in
//! tests/data/golden-v1. Every later version must still list, check, diff
//! and restore it byte for byte. Regenerate (only when deliberately changing
//! the format) with:
//!   cargo test --test golden -- --ignored regenerate_golden_repository

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-v1")
}

fn source(dir: &Path, second: bool) {
    let text: String = (0..800)
        .map(|i| format!("line {i} of a compressible log\n"))
        .collect();
    write(&dir.join("logs/app.log"), text.as_bytes());
    write(&dir.join("logs/empty"), b"");
    write(&dir.join("metrics/series.bin"), &noise(40_000, 11));
    write(
        &dir.join("users/名前.json"),
        "{\"name\":\"ünïcode\"}".as_bytes(),
    );
    fs::set_permissions(
        dir.join("metrics/series.bin"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::symlink("app.log", dir.join("logs/current")).unwrap_or(());
    write(&dir.join("cluster.json"), b"{\"cluster\":\"golden\"}");
    if second {
        let mut more = text.clone();
        more.push_str("appended in the second snapshot\n");
        write(&dir.join("logs/app.log"), more.as_bytes());
        write(&dir.join("users/new.json"), b"{}");
    }
}

/// path -> description of what restore must produce.
fn describe(root: &Path) -> BTreeMap<String, Value> {
    snapshot_of(root)
        .into_iter()
        .map(|(p, e)| {
            let v = match e {
                Entry::File { mode, data, .. } => json!({"type": "file", "mode": mode, "size": data.len(), "sha256": hex::encode(Sha256::digest(&data))}),
                Entry::Dir { mode, .. } => json!({"type": "dir", "mode": mode}),
                Entry::Link { target, .. } => json!({"type": "symlink", "target": target.to_str().unwrap()}),
            };
            (p.to_str().unwrap().to_string(), v)
        })
        .collect()
}

#[test]
#[ignore = "rewrites the checked-in golden repository"]
fn regenerate_golden_repository() {
    let dir = golden_dir();
    let _ = fs::remove_dir_all(&dir);
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), dir.join("repo"));
    ok(&[
        "repo",
        "init",
        s(&repo),
        "--chunk-min",
        "256",
        "--chunk-avg",
        "1024",
        "--chunk-max",
        "4096",
    ]);
    source(&src, false);
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "v1-first",
        "--source",
        s(&src),
        "--metadata",
        "purpose=golden",
    ]);
    let first = describe(&src);
    fs::remove_dir_all(&src).unwrap();
    source(&src, true);
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "v1-second",
        "--source",
        s(&src),
    ]);
    let expected = json!({"v1-first": first, "v1-second": describe(&src)});
    fs::write(
        dir.join("expected.json"),
        serde_json::to_vec_pretty(&expected).unwrap(),
    )
    .unwrap();
}

#[test]
fn format_v1_golden_repository_still_reads() {
    let dir = golden_dir();
    let repo = dir.join("repo");
    let expected: Value =
        serde_json::from_slice(&fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let list = json(&["snapshot", "list", s(&repo), "--sort", "name"]);
    let names: Vec<&str> = list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshot"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["v1-first", "v1-second"]);
    ok(&["repo", "check", s(&repo), "--read-data"]);
    let t = tempfile::tempdir().unwrap();
    for name in names {
        let dst = t.path().join(name);
        ok(&[
            "restore",
            s(&repo),
            name,
            "--target",
            s(&dst),
            "--include-global-state",
        ]);
        let got = serde_json::to_value(describe(&dst)).unwrap();
        assert_eq!(got, expected[name], "{name} restores differently");
    }
    let d = json(&["snapshot", "diff", s(&repo), "v1-first", "v1-second"]);
    assert_eq!(d["added"], 1);
    assert_eq!(d["modified"], 1);
    let meta = json(&["snapshot", "get", s(&repo), "v1-first"]);
    assert_eq!(meta["snapshots"][0]["metadata"]["purpose"], "golden");
}
