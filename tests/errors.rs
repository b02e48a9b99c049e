//! Bad input: a clear one-line error, a non-zero exit, nothing lost.

mod common;

use std::fs;

use common::*;

#[test]
fn an_uninitialised_repository_is_named() {
    let t = tempfile::tempdir().unwrap();
    let err = fails(&["snapshot", "list", s(t.path())]);
    assert!(err.contains("no snapkeep repository at"), "{err}");
    let err = fails(&["snapshot", "list", s(&t.path().join("missing"))]);
    assert!(err.contains("no snapkeep repository at"), "{err}");
    let err = fails(&["snapshot", "list", "ftp://example/repo"]);
    assert!(err.contains("unsupported repository location"), "{err}");
}

#[test]
fn init_twice_does_not_touch_the_repository() {
    let t = tempfile::tempdir().unwrap();
    init(t.path());
    let config = fs::read(t.path().join("config")).unwrap();
    let err = fails(&["repo", "init", s(t.path())]);
    assert!(err.contains("already a snapkeep repository"), "{err}");
    assert_eq!(fs::read(t.path().join("config")).unwrap(), config);
    let err = fails(&[
        "repo",
        "init",
        s(&t.path().join("r2")),
        "--chunk-min",
        "1MiB",
        "--chunk-avg",
        "1MiB",
    ]);
    assert!(err.contains("min < avg < max"), "{err}");
}

#[test]
fn a_missing_source_fails_cleanly() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    let err = fails(&[
        "snapshot",
        "create",
        s(&repo),
        "s",
        "--source",
        s(&t.path().join("nope")),
    ]);
    assert!(err.contains("source") && err.contains("nope"), "{err}");
    assert_eq!(json(&["snapshot", "list", s(&repo)])["total"], 0);
}

#[test]
fn names_follow_elasticsearch_rules() {
    let (_t, src, repo, _) = scene();
    write(&src.join("idx/f"), b"x");
    init(&repo);
    for bad in [
        "Upper",
        "has space",
        "a/b",
        "_lead",
        "-lead",
        "+lead",
        "a,b",
        "a#b",
        "a*b",
        "a?b",
        "a|b",
        "a<b",
        "a>b",
        "a\\b",
        "tab\there",
        "a\"b",
    ] {
        // `--` lets names that start with '-' reach the name check.
        let err = fails(&[
            "snapshot",
            "create",
            "--source",
            s(&src),
            s(&repo),
            "--",
            bad,
        ]);
        assert!(err.contains("snapshot name"), "{bad}: {err}");
    }
    let long = "a".repeat(256);
    assert!(
        fails(&["snapshot", "create", s(&repo), &long, "--source", s(&src)]).contains("255 bytes")
    );
    // The limit counts bytes: 128 two-byte characters are 256 bytes.
    let wide = "é".repeat(128);
    assert!(
        fails(&["snapshot", "create", s(&repo), &wide, "--source", s(&src)]).contains("255 bytes")
    );
    let just_fits = format!("{}a", "é".repeat(127));
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        &just_fits,
        "--source",
        s(&src),
    ]);
    // An index folder whose name breaks the rules is refused unless excluded.
    write(&src.join("BadIndex/f"), b"x");
    let err = fails(&["snapshot", "create", s(&repo), "ok", "--source", s(&src)]);
    assert!(err.contains("index name [BadIndex]"), "{err}");
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "ok",
        "--source",
        s(&src),
        "--indices",
        "-BadIndex",
    ]);
}

#[test]
fn extra_index_paths_are_checked() {
    let (t, src, repo, _) = scene();
    write(&src.join("idx/f"), b"x");
    write(&t.path().join("elsewhere/f"), b"y");
    write(&t.path().join("a-file"), b"z");
    init(&repo);
    let create = |extra: &str| {
        fails(&[
            "snapshot",
            "create",
            s(&repo),
            "s",
            "--source",
            s(&src),
            "--index",
            extra,
        ])
    };
    let missing = format!("more={}", s(&t.path().join("nope")));
    assert!(create(&missing).contains("nope"));
    let not_dir = format!("more={}", s(&t.path().join("a-file")));
    assert!(create(&not_dir).contains("is not a directory"));
    let twice = format!("idx={}", s(&t.path().join("elsewhere")));
    assert!(create(&twice).contains("given twice"));
    let bad_name = format!("Bad={}", s(&t.path().join("elsewhere")));
    assert!(create(&bad_name).contains("index name [Bad]"));
    assert!(create("no-equals-sign").contains("NAME=PATH"));
    assert_eq!(json(&["snapshot", "list", s(&repo)])["total"], 0);
}

#[test]
fn duplicate_snapshot_names_are_refused() {
    let (_t, src, repo, _) = scene();
    write(&src.join("idx/f"), b"x");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let err = fails(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    assert!(err.contains("snapshot [s1] already exists"), "{err}");
    assert_eq!(json(&["snapshot", "list", s(&repo)])["total"], 1);
}

#[test]
fn restore_refuses_a_non_empty_target_index_and_writes_nothing() {
    let (_t, src, repo, dst) = scene();
    write(&src.join("a/f"), b"a");
    write(&src.join("b/f"), b"b");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    write(&dst.join("b/precious"), b"keep me");
    let err = fails(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    assert!(
        err.contains("index [b]") && err.contains("not empty"),
        "{err}"
    );
    assert!(
        !dst.join("a").exists(),
        "nothing may be written when refusing"
    );
    assert_eq!(fs::read(dst.join("b/precious")).unwrap(), b"keep me");
    // An empty existing folder is fine, and so is a rename around the conflict.
    fs::create_dir_all(dst.join("a")).unwrap();
    ok(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--rename-pattern",
        "^b$",
        "--rename-replacement",
        "b2",
    ]);
    assert_eq!(fs::read(dst.join("b2/f")).unwrap(), b"b");
    assert_eq!(fs::read(dst.join("a/f")).unwrap(), b"a");
}

#[test]
fn restore_rejects_unknown_snapshots_indices_and_rename_collisions() {
    let (_t, src, repo, dst) = scene();
    write(&src.join("logs-1/f"), b"1");
    write(&src.join("logs-2/f"), b"2");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    assert!(fails(&["restore", s(&repo), "nope", "--target", s(&dst)])
        .contains("snapshot [nope] is missing"));
    assert!(fails(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--indices",
        "nope"
    ])
    .contains("no such index [nope]"));
    let err = fails(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--rename-pattern",
        "logs-.*",
        "--rename-replacement",
        "same",
    ]);
    assert!(err.contains("would both be restored as [same]"), "{err}");
    let err = fails(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--rename-pattern",
        "logs",
        "--rename-replacement",
        "UP",
    ]);
    assert!(err.contains("must be lowercase"), "{err}");
    assert!(!dst.exists() || fs::read_dir(&dst).unwrap().next().is_none());
}

#[test]
fn an_index_renamed_onto_a_global_state_name_is_refused_before_writing() {
    let (_t, src, repo, dst) = scene();
    write(&src.join("data/f"), b"x");
    write(&src.join("settings.json"), b"global");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let err = fails(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--include-global-state",
        "--rename-pattern",
        "^data$",
        "--rename-replacement",
        "settings.json",
    ]);
    assert!(err.contains("settings.json already exists"), "{err}");
    assert!(
        !dst.exists() || fs::read_dir(&dst).unwrap().next().is_none(),
        "nothing may be written"
    );
}

#[test]
fn global_state_restore_never_overwrites_existing_files() {
    let (_t, src, repo, dst) = scene();
    write(&src.join("idx/f"), b"x");
    write(&src.join("settings.json"), b"from snapshot");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    write(&dst.join("settings.json"), b"live settings");
    let err = fails(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--include-global-state",
    ]);
    assert!(err.contains("settings.json already exists"), "{err}");
    assert_eq!(
        fs::read(dst.join("settings.json")).unwrap(),
        b"live settings"
    );
    assert!(!dst.join("idx").exists());
}

/// Every error is one line on stderr, control characters escaped.
#[track_caller]
fn one_line_error(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{args:?}: {err:?}");
    err
}

#[test]
fn errors_are_one_line_with_control_characters_escaped() {
    let (t, src, repo, _) = scene();
    write(&src.join("logs/a"), b"a");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let target = t.path().join("target");
    let err = one_line_error(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&target),
        "--rename-pattern",
        "logs-(",
        "--rename-replacement",
        "x",
    ]);
    assert!(
        err.contains("invalid --rename-pattern: \"logs-(\": unclosed group"),
        "{err}"
    );
    let err = one_line_error(&[
        "snapshot",
        "create",
        s(&repo),
        "bad\nname",
        "--source",
        s(&src),
    ]);
    assert!(err.contains("bad\\nname"), "{err}");
    let err = one_line_error(&["restore", s(&repo), "no\nsuch", "--target", s(&target)]);
    assert!(err.contains("no\\nsuch"), "{err}");

    // A damaged config names its key once.
    let config = repo.join("config");
    let mut c: serde_json::Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
    c["pack_size"] = serde_json::json!(1);
    fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    fs::write(&config, serde_json::to_vec(&c).unwrap()).unwrap();
    let err = one_line_error(&["snapshot", "list", s(&repo)]);
    assert!(
        err.contains("config: pack_size") && !err.contains("config: config"),
        "{err}"
    );
}

#[test]
fn a_damaged_index_file_is_not_called_a_blob() {
    let (t, src, repo, _) = scene();
    write(&src.join("logs/a"), b"a");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let index_file = fs::read_dir(repo.join("index"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = fs::read(&index_file).unwrap();
    bytes[10] ^= 1;
    fs::set_permissions(
        &index_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    fs::write(&index_file, bytes).unwrap();
    let err = one_line_error(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&t.path().join("x")),
    ]);
    assert!(
        err.contains("index/") && err.contains("is damaged") && !err.contains("blob"),
        "{err}"
    );
}
