//! Exit statuses a cron job can branch on, and errors as Elasticsearch's
//! error object under `--json`, through the real binary: one case per
//! class (usage, not found, permission, unreachable, PARTIAL is in
//! tests/partial.rs).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::*;

/// Runs with `--json`: (exit status, the error object on stdout), after
/// checking stderr is one `error:` line naming the same reason.
#[track_caller]
fn json_failure(args: &[&str], env: &[(&str, &str)]) -> (i32, serde_json::Value) {
    let mut a = args.to_vec();
    a.push("--json");
    let out = std::process::Command::new(bin())
        .args(&a)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    error_object(&a, out)
}

#[track_caller]
fn error_object(args: &[&str], out: Output) -> (i32, serde_json::Value) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "snapkeep {args:?} should fail");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "stdout is no JSON: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let reason = v["error"]["reason"].as_str().unwrap();
    assert_eq!(err.trim_end(), format!("error: {reason}"));
    assert_eq!(v["error"]["root_cause"][0]["type"], v["error"]["type"]);
    (out.status.code().unwrap(), v)
}

#[test]
fn each_failure_class_has_its_exit_status_and_error_object() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let src = t.path().join("src");
    write(&src.join("idx/a"), b"data");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let target = t.path().join("target");

    let missing_repo = t.path().join("nothing-here");
    let (code, v) = json_failure(&["snapshot", "list", s(&missing_repo)], &[]);
    assert_eq!((code, v["status"].as_u64()), (4, Some(404)));
    assert_eq!(v["error"]["type"], "repository_missing_exception");

    let (code, v) = json_failure(&["snapshot", "get", s(&repo), "nope"], &[]);
    assert_eq!(
        (code, v["error"]["type"].as_str()),
        (4, Some("snapshot_missing_exception"))
    );

    let args = [
        "restore",
        s(&repo),
        "s1",
        "--indices",
        "nosuch",
        "--target",
        s(&target),
    ];
    let (code, v) = json_failure(&args, &[]);
    assert_eq!(
        (code, v["error"]["type"].as_str()),
        (4, Some("index_not_found_exception"))
    );

    let args = ["snapshot", "create", s(&repo), "Upper", "--source", s(&src)];
    let (code, v) = json_failure(&args, &[]);
    assert_eq!((code, v["status"].as_u64()), (2, Some(400)));

    // Nothing listens on port 1: unreachable after the retry budget.
    let args = [
        "snapshot",
        "list",
        "s3://bucket/prefix",
        "--storage-option",
        "endpoint=http://127.0.0.1:1",
        "--storage-option",
        "allow_http=true",
        "--storage-option",
        "retry_timeout=1s",
    ];
    let creds = [
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
        ("AWS_REGION", "us-east-1"),
    ];
    let (code, v) = json_failure(&args, &creds);
    assert_eq!((code, v["status"].as_u64()), (6, Some(503)));

    // The usage mistakes clap finds exit 2 with one line too.
    let out = run(&["snapshot", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .trim_end()
            .lines()
            .count(),
        1
    );
}

#[test]
fn a_repository_the_user_may_not_read_exits_with_the_permission_status() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    open_to_all(t.path());
    fs::set_permissions(repo.join("config"), fs::Permissions::from_mode(0o000)).unwrap();
    let args = ["snapshot", "list", s(&repo), "--json"];
    let (code, v) = error_object(&args, run_unprivileged(&args));
    assert_eq!((code, v["status"].as_u64()), (5, Some(403)), "{v}");
    assert_eq!(v["error"]["type"], "security_exception");
}

#[test]
fn a_run_that_matches_nothing_fails_instead_of_succeeding_empty() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let src = t.path().join("src");
    write(&src.join("logs/a"), b"data");
    write(&src.join("cluster.json"), b"{}");
    init(&repo);

    let args = [
        "snapshot",
        "create",
        s(&repo),
        "s0",
        "--source",
        s(&src),
        "--indices",
        "lgs*",
    ];
    let (code, v) = json_failure(&args, &[]);
    assert_eq!(
        (code, v["error"]["type"].as_str()),
        (4, Some("index_not_found_exception"))
    );
    assert_eq!(v["error"]["reason"], "no index matches [lgs*]");
    assert_eq!(
        json(&["snapshot", "list", s(&repo)])["total"],
        0,
        "nothing committed"
    );

    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let target = t.path().join("target");
    let args = [
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&target),
        "--indices",
        "foo*",
    ];
    let (code, v) = json_failure(&args, &[]);
    assert_eq!(
        (code, v["error"]["reason"].as_str()),
        (4, Some("no index matches [foo*]"))
    );
    assert!(!target.exists(), "nothing was restored");
    // Without --indices, everything; an index-less snapshot's global state
    // alone is still restored.
    let only_state = t.path().join("only-state");
    write(&only_state.join("cluster.json"), b"{}");
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "s2",
        "--source",
        s(&only_state),
    ]);
    ok(&[
        "restore",
        s(&repo),
        "s2",
        "--target",
        s(&target),
        "--include-global-state",
    ]);
    assert_eq!(fs::read(target.join("cluster.json")).unwrap(), b"{}");

    let empty = t.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let (code, v) = json_failure(
        &["snapshot", "create", s(&repo), "s3", "--source", s(&empty)],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        v["error"]["reason"]
            .as_str()
            .unwrap()
            .ends_with("is empty: there is nothing to snapshot"),
        "{v}"
    );
    assert_eq!(json(&["snapshot", "list", s(&repo)])["total"], 2);
}

#[test]
fn quiet_silences_json_progress_events_too() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    let src = t.path().join("src");
    write(&src.join("idx/a"), &noise(1 << 20, 3));
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let restore = |target: &str, quiet: bool| {
        let target = t.path().join(target);
        let mut args = vec!["restore", s(&repo), "s1", "--target", s(&target), "--json"];
        if quiet {
            args.push("-q");
        }
        let out = run(&args);
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["snapshot"]["indices"], serde_json::json!(["idx"]));
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(
        restore("loud", false).contains("\"event\""),
        "JSON events without -q"
    );
    assert_eq!(restore("quiet", true), "", "-q prints nothing on stderr");
}

#[test]
fn init_refuses_a_folder_holding_other_files_unless_forced() {
    let t = tempfile::tempdir().unwrap();
    let busy = t.path().join("busy");
    write(&busy.join("notes.txt"), b"mine");
    let err = fails(&["repo", "init", s(&busy)]);
    assert!(
        err.contains("already holds 1 other file(s) (e.g. notes.txt)") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(run(&["repo", "init", s(&busy)]).status.code(), Some(2));
    assert!(!busy.join("config").exists());
    ok(&["repo", "init", s(&busy), "--force"]);
    assert_eq!(fs::read(busy.join("notes.txt")).unwrap(), b"mine");
    // A second init names the repository that is there.
    let err = fails(&["repo", "init", s(&busy)]);
    assert!(err.contains("is already a snapkeep repository"), "{err}");
    // Empty and new folders are what init is for.
    let empty = t.path().join("empty");
    fs::create_dir(&empty).unwrap();
    ok(&["repo", "init", s(&empty)]);
    ok(&["repo", "init", s(&t.path().join("new/nested"))]);
}

#[test]
fn usage_mistakes_are_one_line_with_clap_suggestions_and_flag_hints() {
    let line = |args: &[&str]| {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        err
    };
    assert!(line(&["snapshot", "crate"]).contains("a similar subcommand exists: 'create'"));
    assert!(line(&["snapshot", "list", "r", "--jsn"]).contains("'--json'"));
    let err = line(&["snapshot", "create", "r", "s", "/srv/data"]);
    assert!(
        err.contains("'/srv/data'") && err.contains("--source DIR"),
        "{err}"
    );
    assert!(line(&["restore", "r", "s", "/tmp/t"]).contains("--target DIR"));
}

/// Another writer's in-flight marker for snapshot `name`, as it writes one.
fn foreign_marker(repo: &std::path::Path, uuid: &str, name: &str, started_ms: i64) {
    let body = serde_json::json!({"uuid": uuid, "snapshot": name, "started_ms": started_ms,
        "heartbeat_ms": started_ms, "activity": "snapshot", "base_generation": 0});
    write(
        &repo.join(format!("inflight/{uuid}.json")),
        body.to_string().as_bytes(),
    );
}

#[test]
fn a_snapshot_another_writer_is_creating_is_listed_in_progress() {
    let t = tempfile::tempdir().unwrap();
    let (repo, src) = (t.path().join("repo"), t.path().join("src"));
    write(&src.join("idx/a"), b"data");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "done", "--source", s(&src)]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    foreign_marker(
        &repo,
        "0e5a0b1e-0000-4000-8000-000000000001",
        "busy",
        now - 5_000,
    );

    let list = json(&["snapshot", "list", s(&repo)]);
    assert_eq!(list["total"], 1);
    assert_eq!(list["in_progress"][0]["snapshot"], "busy");
    assert_eq!(list["in_progress"][0]["state"], "IN_PROGRESS");
    let table = ok(&["snapshot", "list", s(&repo)]);
    assert!(table.lines().nth(1).unwrap().starts_with("busy"), "{table}");
    let got = json(&["snapshot", "get", s(&repo), "busy"]);
    assert_eq!(got["snapshots"][0]["state"], "IN_PROGRESS");
    // Other names go on meanwhile.
    ok(&["snapshot", "create", s(&repo), "other", "--source", s(&src)]);

    // A killed writer's marker stops being listed after 10 minutes of
    // silence.
    let marker = repo.join("inflight/0e5a0b1e-0000-4000-8000-000000000001.json");
    foreign_marker(
        &repo,
        "0e5a0b1e-0000-4000-8000-000000000001",
        "busy",
        now - 11 * 60_000,
    );
    let old = filetime::FileTime::from_unix_time((now / 1000) - 11 * 60, 0);
    filetime::set_file_mtime(&marker, old).unwrap();
    assert!(json(&["snapshot", "list", s(&repo)])
        .get("in_progress")
        .is_none());
    // A create of the name is not refused by a marker (a writer killed a
    // moment ago looks alive for minutes); the root commit refuses a
    // duplicate name.
    ok(&["snapshot", "create", s(&repo), "busy", "--source", s(&src)]);
}
