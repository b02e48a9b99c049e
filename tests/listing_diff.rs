//! Listing (sort, order, paging), get and diff.

mod common;

use common::*;
use serde_json::Value;

fn names(v: &Value) -> Vec<String> {
    v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshot"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn list_sorts_orders_and_pages_with_a_cursor() {
    let (_t, src, repo, _) = scene();
    init(&repo);
    for (i, name) in ["c", "a", "d", "b", "e"].iter().enumerate() {
        write(
            &src.join(format!("idx{i}/f")),
            &noise(1000 * (i + 1), i as u64),
        );
        ok(&["snapshot", "create", s(&repo), name, "--source", s(&src)]);
    }
    let all = json(&["snapshot", "list", s(&repo)]);
    assert_eq!(
        names(&all),
        ["c", "a", "d", "b", "e"],
        "default: start time ascending"
    );
    assert_eq!(
        names(&json(&["snapshot", "list", s(&repo), "--sort", "name"])),
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(
        names(&json(&[
            "snapshot",
            "list",
            s(&repo),
            "--sort",
            "index_count",
            "--order",
            "desc"
        ])),
        ["e", "b", "d", "a", "c"]
    );
    assert_eq!(
        names(&json(&[
            "snapshot",
            "list",
            s(&repo),
            "--sort",
            "size",
            "--order",
            "desc"
        ]))[0],
        "e"
    );

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut args = vec![
            "snapshot",
            "list",
            s(&repo),
            "--sort",
            "name",
            "--size",
            "2",
        ];
        if let Some(a) = &after {
            args.extend(["--after", a.as_str()]);
        }
        let page = json(&args);
        assert_eq!(page["total"], 5);
        seen.extend(names(&page));
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    assert!(fails(&["snapshot", "list", s(&repo), "--sort", "bogus"]).contains("unknown sort"));
}

#[test]
fn list_refuses_an_unknown_order_or_size_as_the_worker_and_inspector_do() {
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), t.path().join("repo"));
    init(&repo);
    write(&src.join("idx/f"), b"data");
    ok(&["snapshot", "create", s(&repo), "only", "--source", s(&src)]);
    for order in ["up", "DESC", ""] {
        let err = fails(&["snapshot", "list", s(&repo), "--order", order]);
        assert_eq!(
            err.trim_end(),
            format!("error: unknown order [{order}]: use asc or desc")
        );
    }
    let err = fails(&["snapshot", "list", s(&repo), "--size", "ten"]);
    assert_eq!(err.trim_end(), "error: size [ten] is not a number");
    let listed = json(&["snapshot", "list", s(&repo), "--order", "desc"]);
    assert_eq!(names(&listed), ["only"]);
}

#[test]
fn get_shows_elasticsearch_fields_and_per_index_stats() {
    let (_t, src, repo, _) = scene();
    write(&src.join("logs/f"), &noise(10_000, 1));
    write(&src.join("top.txt"), b"global");
    init(&repo);
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "s1",
        "--source",
        s(&src),
        "--metadata",
        "taken_by=test",
        "--metadata",
        "reason=ci",
    ]);
    let v = json(&["snapshot", "get", s(&repo), "s1"]);
    let snap = &v["snapshots"][0];
    for field in [
        "snapshot",
        "uuid",
        "state",
        "indices",
        "start_time",
        "start_time_in_millis",
        "end_time_in_millis",
        "duration_in_millis",
    ] {
        assert!(!snap[field].is_null(), "missing {field}");
    }
    assert_eq!(snap["metadata"]["taken_by"], "test");
    assert_eq!(snap["index_details"]["logs"]["files"], 1);
    assert_eq!(snap["index_details"]["logs"]["size_in_bytes"], 10_000);
    assert_eq!(snap["global_state_details"]["files"], 1);
    assert_eq!(snap["include_global_state"], true);
    assert_eq!(snap["indices"], serde_json::json!(["logs"]));
    assert_eq!(snap["state"], "SUCCESS");
    assert_eq!(
        snap["shards"],
        serde_json::json!({"total": 1, "failed": 0, "successful": 1})
    );
    assert_eq!(snap["failures"], serde_json::json!([]));
    let took = snap["end_time_in_millis"].as_i64().unwrap()
        - snap["start_time_in_millis"].as_i64().unwrap();
    assert_eq!(snap["duration_in_millis"], took);
    assert_eq!(v["total"], 1);
    assert!(fails(&["snapshot", "get", s(&repo), "nope"]).contains("snapshot [nope] is missing"));
    let text = ok(&["snapshot", "get", s(&repo), "s1"]);
    assert!(text.contains("SUCCESS") && text.contains("logs"));
}

#[test]
fn diff_reports_added_removed_and_modified_files() {
    let (_t, src, repo, _) = scene();
    write(&src.join("logs/keep"), b"same");
    write(&src.join("logs/edit"), b"before");
    write(&src.join("logs/sub/gone"), b"bye");
    write(&src.join("old-index/f"), b"o");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    write(&src.join("logs/edit"), b"after, longer");
    std::fs::remove_file(src.join("logs/sub/gone")).unwrap();
    write(&src.join("logs/sub/new"), b"hi");
    std::fs::remove_dir_all(src.join("old-index")).unwrap();
    write(&src.join("new-index/f"), b"n");
    ok(&["snapshot", "create", s(&repo), "s2", "--source", s(&src)]);
    let d = json(&["snapshot", "diff", s(&repo), "s1", "s2"]);
    let changes: Vec<(String, String)> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["change"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = [
        ("logs/edit", "modified"),
        ("logs/sub/gone", "removed"),
        ("logs/sub/new", "added"),
        ("new-index/f", "added"),
        ("old-index/f", "removed"),
    ];
    assert_eq!(changes, expect.map(|(p, c)| (p.to_string(), c.to_string())));
    let edit = &d["changes"][0];
    assert_eq!(
        (edit["old_size"].as_u64(), edit["new_size"].as_u64()),
        (Some(6), Some(13))
    );
    assert_eq!(
        json(&["snapshot", "diff", s(&repo), "s1", "s1"])["changes"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}
