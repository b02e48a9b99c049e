//! Delete with garbage collection, and check finding damage.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

fn packs(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in fs::read_dir(repo.join("packs")).unwrap() {
        for p in fs::read_dir(d.unwrap().path()).unwrap() {
            out.push(p.unwrap().path());
        }
    }
    out
}

#[test]
fn delete_by_wildcard_frees_data_only_deleted_snapshots_needed() {
    let (t, src, repo, _) = scene();
    init(&repo);
    write(&src.join("idx/shared"), &noise(2 << 20, 1));
    write(&src.join("idx/tmp"), &noise(3 << 20, 2));
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "nightly-1",
        "--source",
        s(&src),
    ]);
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "nightly-2",
        "--source",
        s(&src),
    ]);
    fs::remove_file(src.join("idx/tmp")).unwrap();
    ok(&["snapshot", "create", s(&repo), "keep", "--source", s(&src)]);
    let before = json(&["repo", "stats", s(&repo)]);

    let out = json(&["snapshot", "delete", s(&repo), "nightly-*"]);
    assert_eq!(
        out["deleted"],
        serde_json::json!(["nightly-1", "nightly-2"])
    );
    assert!(out["bytes_freed"].as_u64().unwrap() >= 3 << 20);
    let after = json(&["repo", "stats", s(&repo)]);
    assert!(
        after["stored_bytes"].as_u64().unwrap() + (3 << 20)
            <= before["stored_bytes"].as_u64().unwrap()
    );
    assert_eq!(after["snapshots"], 1);
    ok(&["repo", "check", s(&repo), "--read-data"]);
    let dst = t.path().join("dst");
    ok(&[
        "restore",
        s(&repo),
        "keep",
        "--target",
        s(&dst),
        "--include-global-state",
    ]);
    assert_same_tree(&src, &dst);

    assert!(fails(&["snapshot", "delete", s(&repo), "nightly-1"])
        .contains("snapshot [nightly-1] is missing"));
    assert!(fails(&["snapshot", "delete", s(&repo), "none-*"]).contains("is missing"));
}

#[test]
fn mostly_dead_packs_are_repacked() {
    let (t, src, repo, _) = scene();
    init(&repo);
    // One pack holds a small file that stays and a big one that goes.
    write(&src.join("idx/small"), &noise(100_000, 3));
    write(&src.join("idx/big"), &noise(4 << 20, 4));
    ok(&["snapshot", "create", s(&repo), "one", "--source", s(&src)]);
    fs::remove_file(src.join("idx/big")).unwrap();
    // Touch the small file so this snapshot writes a new tree but reuses its chunk.
    ok(&["snapshot", "create", s(&repo), "two", "--source", s(&src)]);
    let out = json(&["snapshot", "delete", s(&repo), "one"]);
    assert!(out["packs_repacked"].as_u64().unwrap() >= 1, "{out}");
    let total: u64 = packs(&repo)
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert!(total < 1 << 20, "packs still hold {total} bytes");
    ok(&["repo", "check", s(&repo), "--read-data"]);
    let dst = t.path().join("dst");
    ok(&[
        "restore",
        s(&repo),
        "two",
        "--target",
        s(&dst),
        "--include-global-state",
    ]);
    assert_same_tree(&src, &dst);
}

#[test]
fn a_flipped_byte_is_found_and_named_and_never_restored() {
    let (t, src, repo, _) = scene();
    init(&repo);
    write(&src.join("logs/victim.bin"), &noise(2 << 20, 5));
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    ok(&["snapshot", "create", s(&repo), "s2", "--source", s(&src)]);
    ok(&["repo", "check", s(&repo), "--read-data"]);

    // The data pack is the big one; flip a byte in the middle of it.
    let pack = packs(&repo)
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&pack, &bytes).unwrap();

    // Structure alone cannot see it; reading the data does.
    ok(&["repo", "check", s(&repo)]);
    let out = run(&["repo", "check", s(&repo), "--read-data"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("snapshot [s1]") && err.contains("snapshot [s2]"),
        "{err}"
    );
    assert!(
        err.contains("logs/victim.bin") || err.contains("index [logs] victim.bin"),
        "{err}"
    );
    assert!(
        err.lines()
            .last()
            .unwrap()
            .starts_with("error: repository check found"),
        "{err}"
    );
    let report = serde_json::from_slice::<serde_json::Value>(
        &run(&["repo", "check", s(&repo), "--read-data", "--json"]).stdout,
    )
    .unwrap();
    assert_eq!(report["damaged"][0]["path"], "victim.bin");

    let dst = t.path().join("dst");
    let err = fails(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    assert!(err.contains("is damaged"), "{err}");
    // Nothing lands under its real name: files are renamed into place only
    // once every chunk checked out.
    assert!(
        !dst.join("logs/victim.bin").exists(),
        "a damaged file must not land"
    );
}

#[test]
fn a_missing_pack_is_a_structural_problem() {
    let (_t, src, repo, _) = scene();
    init(&repo);
    write(&src.join("i/f"), &noise(100_000, 6));
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    for p in packs(&repo) {
        fs::remove_file(p).unwrap();
    }
    let out = run(&["repo", "check", s(&repo)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing from storage"));
}

#[test]
fn a_damaged_tree_pack_is_found_and_a_subset_check_reads_a_share_of_the_packs() {
    let (t, src, repo, _) = scene();
    init(&repo);
    for i in 0..6 {
        write(&src.join(format!("logs/f{i}")), &noise(300_000, 40 + i));
    }
    // Without global state the tree pack holds the index's tree alone
    // (trees of several targets are built in parallel, in no fixed order).
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "s1",
        "--source",
        s(&src),
        "--no-global-state",
    ]);
    let all = packs(&repo).len();
    assert!(all >= 2, "a data pack and a tree pack");
    let full = json(&["repo", "check", s(&repo), "--read-data-subset", "100%"]);
    assert_eq!(full["packs_read"], all);
    let some = json(&["repo", "check", s(&repo), "--read-data-subset", "1%"]);
    assert_eq!(some["packs_read"], 1, "at least one pack, and no more");
    let err = fails(&["repo", "check", s(&repo), "--read-data-subset", "0%"]);
    assert!(err.contains("between 0% and 100%"), "{err}");

    // The tree pack is the small one; flip a byte in its first blob.
    let pack = packs(&repo)
        .into_iter()
        .min_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    bytes[10] ^= 0x01;
    fs::write(&pack, &bytes).unwrap();
    let out = run(&["repo", "check", s(&repo), "--read-data"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("damaged: snapshot [s1] index [logs]"), "{err}");
    let err = fails(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&t.path().join("d")),
    ]);
    assert!(err.contains("damaged"), "{err}");
}

#[test]
fn check_json_lists_typed_findings_with_their_objects_and_snapshots() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    init(&repo);
    write(&src.join("logs/victim.bin"), &noise(2 << 20, 7));
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    ok(&["snapshot", "create", s(&repo), "s2", "--source", s(&src)]);
    let healthy = json(&["repo", "check", s(&repo)]);
    assert_eq!(healthy["findings"], serde_json::json!([]));

    // The data pack is the big one; remove it.
    let pack = packs(&repo)
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    fs::remove_file(&pack).unwrap();
    let key = pack
        .strip_prefix(&repo)
        .unwrap()
        .to_string_lossy()
        .to_string();
    let out = run(&["repo", "check", s(&repo), "--json"]);
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        findings.iter().filter(|f| f["kind"] == kind).collect()
    };
    let gone = of("pack_missing");
    assert_eq!(gone.len(), 1, "{report}");
    assert_eq!(gone[0]["object"], key);
    let chunks = of("blob_missing");
    assert!(!chunks.is_empty(), "{report}");
    for c in &chunks {
        assert_eq!(c["snapshots"], serde_json::json!(["s1", "s2"]), "{c}");
        assert_eq!(c["object"].as_str().unwrap().len(), 64, "a blob id: {c}");
        let files = c["files"].as_array().unwrap();
        assert!(
            files.iter().any(|f| f["snapshot"] == "s2"
                && f["index"] == "logs"
                && f["path"] == "victim.bin"),
            "{c}"
        );
    }
    assert_eq!(findings.len(), 1 + chunks.len(), "nothing else: {report}");
    // The text lines and per-file records are the same findings.
    assert_eq!(report["problems"].as_array().unwrap().len(), 1);
    assert_eq!(report["damaged"][0]["path"], "victim.bin");
}

#[test]
fn a_dry_run_says_what_a_delete_would_free_and_deleting_everything_needs_yes() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    init(&repo);
    write(&src.join("idx/shared"), &noise(1 << 20, 1));
    write(&src.join("idx/only-a"), &noise(2 << 20, 2));
    ok(&["snapshot", "create", s(&repo), "a-1", "--source", s(&src)]);
    fs::remove_file(src.join("idx/only-a")).unwrap();
    ok(&["snapshot", "create", s(&repo), "b-1", "--source", s(&src)]);
    let before = json(&["repo", "stats", s(&repo)]);

    let preview = json(&["snapshot", "delete", s(&repo), "a-*", "--dry-run"]);
    assert_eq!(preview["dry_run"], true);
    assert_eq!(preview["acknowledged"], false);
    assert_eq!(preview["deleted"], serde_json::json!(["a-1"]));
    let would_free = preview["bytes_freed"].as_u64().unwrap();
    assert!(would_free >= 2 << 20, "{preview}");
    assert_eq!(
        json(&["repo", "stats", s(&repo)]),
        before,
        "a dry run changes nothing"
    );

    // Every snapshot at once: refused without --yes when nobody can answer.
    let err = fails(&["snapshot", "delete", s(&repo), "a-1,b-*"]);
    assert!(
        err.contains("deletes every snapshot") && err.contains("--yes"),
        "{err}"
    );
    assert_eq!(
        run(&["snapshot", "delete", s(&repo), "*"]).status.code(),
        Some(2)
    );
    assert_eq!(json(&["snapshot", "list", s(&repo)])["total"], 2);

    // A comma list, as Elasticsearch takes it, frees what the preview said.
    let out = json(&["snapshot", "delete", s(&repo), "a-1,nothing-*"]);
    assert_eq!(out["deleted"], serde_json::json!(["a-1"]));
    assert_eq!(out["bytes_freed"].as_u64(), Some(would_free));
    let out = json(&["snapshot", "delete", s(&repo), "*", "--yes"]);
    assert_eq!(out["deleted"], serde_json::json!(["b-1"]));
    assert_eq!(json(&["snapshot", "list", s(&repo)])["total"], 0);
    ok(&["repo", "check", s(&repo), "--read-data"]);
}
