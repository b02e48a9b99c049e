//! `snapkeep retention plan` against a real repository: only the policy's
//! own snapshots are considered, every decision has its reason, nothing
//! changes, and a bad policy is one clear line.

mod common;

use std::path::Path;

use common::{fails, init, json, ok, s, write};

fn snapshot(repo: &Path, src: &Path, name: &str, policy: Option<&str>) {
    let meta = policy.map(|p| format!("policy={p}"));
    let mut args = vec!["snapshot", "create", s(repo), name, "--source", s(src)];
    if let Some(m) = &meta {
        args.extend(["--metadata", m.as_str()]);
    }
    ok(&args);
}

#[test]
fn a_plan_names_what_the_policy_keeps_and_deletes_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, src) = (tmp.path().join("repo"), tmp.path().join("data"));
    init(&repo);
    write(&src.join("logs/a"), b"first");
    for (i, name) in ["n-1", "n-2", "n-3", "n-4"].iter().enumerate() {
        write(&src.join("logs/a"), format!("version {i}").as_bytes());
        snapshot(&repo, &src, name, Some("nightly"));
    }
    snapshot(&repo, &src, "manual", None);
    snapshot(&repo, &src, "weekly-1", Some("weekly"));
    // The root records each snapshot's policy, so retention reads no
    // manifest; a snapshot no policy made has no such field.
    let newest_root = std::fs::read_dir(&repo)
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n: u64 = name.strip_prefix("index-")?.parse().ok()?;
            Some((n, e.path()))
        })
        .max()
        .expect("a root generation");
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(newest_root.1).unwrap()).unwrap();
    let policy_of = |name: &str| {
        let snaps = root["snapshots"].as_array().unwrap();
        snaps.iter().find(|x| x["snapshot"] == name).unwrap()["policy"].clone()
    };
    assert_eq!(policy_of("n-1"), "nightly");
    assert_eq!(policy_of("manual"), serde_json::Value::Null);

    let policy = tmp.path().join("nightly.json");
    write(
        &policy,
        br#"{"schedule": "0 30 1 * * ?", "name": "<n-{now/d}>", "repository": "r",
             "retention": {"max_count": 2, "expire_after": "30d"}}"#,
    );
    let before = json(&["snapshot", "list", s(&repo)]);
    let plan = json(&["retention", "plan", s(&repo), "--policy", s(&policy)]);
    assert_eq!(plan["policy"], "nightly");
    let rows = plan["snapshots"].as_array().unwrap();
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["snapshot"].as_str().unwrap(),
                r["action"].as_str().unwrap(),
                r["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("n-4", "keep", "newest SUCCESS"),
            ("n-3", "keep", "younger than 30d"),
            ("n-2", "delete", "beyond max_count 2"),
            ("n-1", "delete", "beyond max_count 2"),
        ]
    );
    assert_eq!(
        (plan["keep"].as_u64(), plan["delete"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        json(&["snapshot", "list", s(&repo)]),
        before,
        "a plan changes nothing"
    );

    // Planned as of a day before they were taken, every snapshot is dated
    // in the future: kept, reported, never a reason to delete another.
    let yesterday = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    let early = json(&[
        "retention",
        "plan",
        s(&repo),
        "--policy",
        s(&policy),
        "--now",
        &yesterday.to_string(),
    ]);
    assert_eq!(early["delete"], 0);
    assert_eq!(early["future_dated"].as_array().unwrap().len(), 4);

    let text = ok(&[
        "retention",
        "plan",
        s(&repo),
        "--policy",
        s(&policy),
        "--id",
        "weekly",
    ]);
    assert!(text.contains("weekly-1"), "{text}");
    assert!(text.contains("policy weekly as of"), "{text}");
    assert!(!text.contains("n-1"), "{text}");
}

#[test]
fn a_bad_policy_is_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    init(&repo);
    let file = tmp.path().join("p.json");
    let base = r#""schedule": "1h", "name": "n", "repository": "r""#;
    let cases = [
        (
            format!(r#"{{{base}, "timezone": "Mars/Olympus", "retention": {{"max_count": 1}}}}"#),
            "unknown time zone [Mars/Olympus]",
        ),
        (format!("{{{base}}}"), "has no retention section"),
        (
            format!(r#"{{{base}, "retention": {{"max_count": 0}}}}"#),
            "max_count must be greater than 0",
        ),
        ("{".to_string(), "policy p:"),
    ];
    for (body, expected) in cases {
        write(&file, body.as_bytes());
        let err = fails(&["retention", "plan", s(&repo), "--policy", s(&file)]);
        assert!(err.contains(expected), "{body}: {err}");
    }
    let missing = fails(&[
        "retention",
        "plan",
        s(&repo),
        "--policy",
        "/nonexistent/p.json",
    ]);
    assert!(missing.contains("cannot read"), "{missing}");
    write(
        &file,
        format!(r#"{{{base}, "retention": {{"max_count": 1}}}}"#).as_bytes(),
    );
    let err = fails(&[
        "retention",
        "plan",
        s(&repo),
        "--policy",
        s(&file),
        "--now",
        "yesterday",
    ]);
    assert!(err.contains("--now yesterday"), "{err}");
}
