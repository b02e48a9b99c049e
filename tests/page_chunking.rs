//! Page-group chunking through the real binary (issue #21): a new
//! repository cuts a PostgreSQL relation file at 64 KiB page groups, so a
//! page rewritten in place costs one group in the next snapshot, where
//! content-defined chunking costs at least its minimum chunk; and the
//! snapshot restores byte for byte.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use snapkeep::core::seeded::noise;

const PAGE: usize = 8192;
const PAGES: usize = 512;

/// A 4 MiB file of pages that check out as PostgreSQL heap pages.
fn relation() -> Vec<u8> {
    pg_relation(PAGES, 21)
}

/// The new plain and stored bytes a second snapshot stores after one
/// page of the relation is rewritten in place, in a repository made with
/// `init_args`.
fn incremental(root: &Path, init_args: &[&str]) -> (u64, u64) {
    let (src, repo) = (root.join("src"), root.join("repo"));
    let file = src.join("pg").join("16384");
    let mut data = relation();
    write(&file, &data);
    let mut args = vec!["repo", "init", s(&repo), "-q"];
    args.extend(init_args);
    ok(&args);
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "s1",
        "--source",
        s(&src),
        "-q",
    ]);
    data[200 * PAGE + 100..200 * PAGE + 300].fill(0xab);
    fs::write(&file, &data).unwrap();
    let out = json(&["snapshot", "create", s(&repo), "s2", "--source", s(&src)]);
    let stats = &out["snapshot"]["stats"];
    let field = |name: &str| stats[name].as_u64().unwrap_or_else(|| panic!("{out}"));
    (field("new_bytes"), field("new_stored_bytes"))
}

#[test]
fn a_page_rewritten_in_place_costs_one_page_group() {
    let (t, _, _, dst) = scene();
    let (auto, auto_stored) = incremental(&t.path().join("auto"), &[]);
    let (cdc, _) = incremental(&t.path().join("cdc"), &["--chunking", "cdc"]);
    eprintln!("one 8 KiB page rewritten: auto read {auto} new bytes, cdc {cdc}");
    // The group is stored as a patch over its previous version: the 200
    // rewritten bytes, not the group's 64 KiB of incompressible pages.
    assert!(
        auto_stored < 4096,
        "auto stores the rewritten run: {auto_stored}"
    );
    assert!(
        (65_536..65_536 + 8_192).contains(&auto),
        "auto: one 64 KiB group and the changed trees, got {auto}"
    );
    assert!(
        cdc >= 256 * 1024,
        "cdc cuts at least its minimum chunk: {cdc}"
    );

    let repo = t.path().join("auto/repo");
    ok(&["restore", s(&repo), "s2", "--target", s(&dst), "-q"]);
    assert_same_tree(&t.path().join("auto/src"), &dst);
}

#[test]
fn page_chunking_options_are_checked_and_recorded() {
    let (_t, _, repo, _) = scene();
    let err = fails(&["repo", "init", s(&repo), "--chunking", "pages:3KiB"]);
    assert!(err.contains("4KiB, 8KiB, 16KiB, 32KiB"), "{err}");
    let err = fails(&["repo", "init", s(&repo), "--chunking", "fixed"]);
    assert!(err.contains("unknown chunking mode [fixed]"), "{err}");
    let out = json(&[
        "repo",
        "init",
        s(&repo),
        "--chunking",
        "pages:16KiB",
        "--page-group",
        "128KiB",
    ]);
    assert_eq!(
        out["config"]["chunking"],
        serde_json::json!({"mode": "pages", "page_size": 16384})
    );
    assert_eq!(out["config"]["page_group"], 131072);
}

/// How `snapshot ls --json` says each file of snapshot `name` was cut.
fn recorded_chunking(repo: &Path, name: &str) -> Vec<(String, Option<String>)> {
    let out = json(&["snapshot", "ls", s(repo), name]);
    out["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{out}"))
        .iter()
        .filter(|e| e["type"] == "file")
        .map(|e| {
            let path = e["path"].as_str().unwrap().to_string();
            (path, e["chunking"].as_str().map(str::to_string))
        })
        .collect()
}

#[test]
fn each_file_records_how_it_was_cut_and_check_holds_it_to_the_config() {
    let (t, src, repo, _) = scene();
    write(&src.join("pg/16384"), &relation());
    write(&src.join("pg/notes.txt"), &noise(300_000, 5));
    ok(&["repo", "init", s(&repo), "-q"]);
    let snap = |name: &str| {
        ok(&[
            "snapshot",
            "create",
            s(&repo),
            name,
            "--source",
            s(&src),
            "-q",
        ])
    };
    snap("s1");
    let want = vec![
        ("pg/16384".to_string(), Some("pages:8KiB".to_string())),
        ("pg/notes.txt".to_string(), None),
    ];
    assert_eq!(recorded_chunking(&repo, "s1"), want);
    // Unchanged files are not read again and keep how they were cut.
    write(&src.join("other/new.txt"), b"new");
    snap("s2");
    let s2 = recorded_chunking(&repo, "s2");
    assert_eq!(&s2[1..], &want[..], "{s2:?}");

    let report = json(&["repo", "check", s(&repo)]);
    assert_eq!(
        report["files_by_chunking"],
        serde_json::json!({"cdc": 2, "pages:8KiB": 1}),
        "{report}"
    );

    // A repository that cuts everything by content notes a file recorded
    // as pages (here copied in from the auto repository).
    let other = t.path().join("cdc");
    ok(&["repo", "init", s(&other), "--chunking", "cdc", "-q"]);
    ok(&["snapshot", "copy", s(&repo), s(&other), "s1"]);
    // It reads and restores as well, so the check passes with a note.
    let out = run(&["repo", "check", s(&other), "--json"]);
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"], serde_json::json!([]), "{report}");
    let findings = report["notes"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report}");
    assert_eq!(findings[0]["kind"], "chunking_not_allowed");
    assert_eq!(
        findings[0]["files"],
        serde_json::json!([{"snapshot": "s1", "index": "pg", "path": "16384"}])
    );
    let detail = findings[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("[pages:8KiB]") && detail.contains("chunking [cdc]"),
        "{detail}"
    );
}

#[test]
fn chunking_rules_choose_the_mode_by_path_and_bad_ones_are_refused() {
    let (_t, src, repo, dst) = scene();
    // The same plain bytes under three names: only the rules tell them apart.
    let plain = noise(3 * 65536, 9);
    for path in ["app.sqlite", "base/1/data", "pg_wal/000001", "other.bin"] {
        write(&src.join("db").join(path), &plain);
    }
    write(&src.join("db/base/1/pg_wal.sqlite"), &relation());
    let out = json(&[
        "repo",
        "init",
        s(&repo),
        "--chunking",
        "cdc",
        "--chunking-rule",
        "*.sqlite=pages:4KiB",
        "--chunking-rule",
        "base/**=pages:16KiB",
        "--chunking-rule",
        "pg_wal/**=auto",
    ]);
    assert_eq!(
        out["config"]["chunking_rules"][0],
        serde_json::json!({"pattern": "*.sqlite", "chunking": "pages:4KiB"})
    );
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "s1",
        "--source",
        s(&src),
        "-q",
    ]);
    let pages = |p: &str| Some(p.to_string());
    assert_eq!(
        recorded_chunking(&repo, "s1"),
        vec![
            ("db/app.sqlite".into(), pages("pages:4KiB")),
            ("db/base/1/data".into(), pages("pages:16KiB")),
            // The first matching rule wins over the later base/** one.
            ("db/base/1/pg_wal.sqlite".into(), pages("pages:4KiB")),
            ("db/other.bin".into(), None),
            // auto finds no engine's pages in noise.
            ("db/pg_wal/000001".into(), None),
        ]
    );
    ok(&["repo", "check", s(&repo), "-q"]);
    ok(&["restore", s(&repo), "s1", "--target", s(&dst), "-q"]);
    assert_same_tree(&src, &dst);

    for (rule, says) in [
        ("*.sqlite", "is not PATTERN=MODE"),
        ("*.db=pages:3KiB", "4KiB, 8KiB, 16KiB, 32KiB"),
        ("a[=cdc", "not a valid glob"),
    ] {
        let other = repo.with_file_name(format!("bad-{}", rule.len()));
        let err = fails(&["repo", "init", s(&other), "--chunking-rule", rule]);
        assert!(err.contains(says), "{rule}: {err}");
        assert!(!other.exists(), "{rule}: no repository is made");
    }
}
