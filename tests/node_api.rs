//! The node serves the transport-neutral read API (`/api/repos/...`, the
//! edge Worker's) over its registered repositories, and the inspector's
//! page to browsers: checked through real HTTP against the real binary
//! and against what the CLI reports.

mod common;

use std::path::Path;

use common::node::{start, Dirs, Node};
use common::{s, write};
use serde_json::json;

fn register_fs(node: &Node, name: &str, location: &Path) {
    let r = node.send(
        "PUT",
        &format!("/_snapshot/{name}"),
        &json!({"type": "fs", "settings": {"location": location}}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Two snapshots of `data` in repository `location`; returns the bytes
/// of the large file.
fn two_snapshots(data: &Path, location: &Path) -> Vec<u8> {
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    write(&data.join("logs/a.log"), b"first");
    for name in ["one", "two"] {
        if name == "two" {
            write(&data.join("logs/big.bin"), &big);
        }
        common::ok(&["snapshot", "create", s(location), name, "--source", s(data)]);
    }
    big
}

#[test]
fn the_read_api_answers_as_the_cli_reports() {
    let dirs = Dirs::new();
    let node = start(&dirs, &[]);
    let location = dirs.backups().join("r");
    register_fs(&node, "r", &location);
    let big = two_snapshots(&dirs.data(), &location);

    assert_eq!(
        node.get("/api/repos").json(),
        json!({"repositories": ["r"]})
    );
    let info = node.get("/api/repos/r");
    assert_eq!(info.status, 200);
    assert_eq!(info.header("Content-Type"), Some("application/json"));
    let mut cli = common::json(&["repo", "stats", s(&location)]);
    cli.as_object_mut().unwrap().remove("requests");
    assert_eq!(info.json()["stats"], cli);

    let listed = node.get("/api/repos/r/snapshots?sort=name&order=desc&size=1");
    let cli = common::json(&[
        "snapshot",
        "list",
        s(&location),
        "--size",
        "1",
        "--sort",
        "name",
        "--order",
        "desc",
    ]);
    assert_eq!(listed.json(), cli);
    assert_eq!(cli["snapshots"][0]["snapshot"], "two");

    let ranged = node.call(
        "GET",
        "/api/repos/r/snapshots/two/file?index=logs&path=big.bin",
        &[("Range", "bytes=1000000-1999999")],
        None,
    );
    assert_eq!(ranged.status, 206);
    assert_eq!(
        ranged.header("Content-Type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        ranged.header("Content-Range"),
        Some(format!("bytes 1000000-1999999/{}", big.len()).as_str())
    );
    assert!(
        ranged.body == big[1_000_000..2_000_000],
        "range bytes differ"
    );

    // The object API's read side: what the inspector reads.
    let config = node.get("/api/repos/r/objects/config");
    assert_eq!(config.status, 200);
    assert_eq!(config.body, std::fs::read(location.join("config")).unwrap());
    let objects = node.get("/api/repos/r/objects?prefix=").json();
    assert!(
        !objects["objects"].as_array().unwrap().is_empty(),
        "{objects}"
    );
    let refused = node.call("PUT", "/api/repos/r/objects/x", &[], Some(&b"no"[..]));
    assert!(refused.status >= 400, "{}", refused.status);
    assert!(!location.join("x").exists());

    let missing = node.get("/api/repos/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json()["error"]["type"],
        "repository_missing_exception"
    );
}

#[test]
fn the_read_api_needs_the_monitor_role_when_credentials_are_set() {
    let dirs = Dirs::new();
    let config = dirs.config(
        "[[auth.tokens]]\ntoken = \"mon\"\nrole = \"monitor\"\n\
         [[auth.tokens]]\ntoken = \"admin\"\nrole = \"manage\"\n",
    );
    let node = start(&dirs, &["--config", s(&config)]);
    let location = dirs.backups().join("r");
    let admin = [
        ("Authorization", "Bearer admin"),
        ("Content-Type", "application/json"),
    ];
    let body = json!({"type": "fs", "settings": {"location": location}}).to_string();
    let put = node.call("PUT", "/_snapshot/r", &admin, Some(body.as_bytes()));
    assert_eq!(put.status, 200, "{}", put.text());

    let anonymous = node.get("/api/repos");
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json()["error"]["type"], "security_exception");
    let monitor = [("Authorization", "Bearer mon")];
    let listed = node.call("GET", "/api/repos", &monitor, None);
    assert_eq!(listed.json(), json!({"repositories": ["r"]}));
    // A restore plan is a POST, and still only a read.
    write(&dirs.data().join("idx/f"), b"x");
    common::ok(&[
        "snapshot",
        "create",
        s(&location),
        "s",
        "--source",
        s(&dirs.data()),
    ]);
    let plan = node.call(
        "POST",
        "/api/repos/r/snapshots/s/_restore_plan",
        &monitor,
        None,
    );
    assert_eq!(plan.status, 200, "{}", plan.text());
}

/// A folder shaped as `Assets::load` requires: the page and the module.
fn fake_www(dir: &Path) {
    write(&dir.join("index.html"), b"<html>inspector</html>");
    write(&dir.join("pkg/snapkeep.js"), b"export default 1;");
}

#[test]
fn browsers_get_the_inspector_and_clients_the_root_json() {
    let dirs = Dirs::new();
    let www = dirs.root.path().join("www");
    fake_www(&www);
    let config = dirs.config("[[auth.tokens]]\ntoken = \"mon\"\nrole = \"monitor\"\n");
    let node = start(&dirs, &["--config", s(&config), "--www", s(&www)]);
    let browser = [("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    let page = node.call("GET", "/", &browser, None);
    assert_eq!(page.status, 200);
    assert_eq!(page.body, b"<html>inspector</html>");
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let module = node.get("/pkg/snapkeep.js");
    assert_eq!(module.status, 200);
    assert_eq!(
        module.header("Content-Type"),
        Some("text/javascript; charset=utf-8")
    );
    // Clients keep Elasticsearch's root (behind its credentials).
    assert_eq!(node.get("/").status, 401);
    let root = node.call(
        "GET",
        "/",
        &[
            ("Accept", "application/json"),
            ("Authorization", "Bearer mon"),
        ],
        None,
    );
    assert_eq!(root.json()["tagline"], "You Know, for Search");
    drop(node);

    // Without `www` a browser gets the root as well.
    let plain = start(&dirs, &[]);
    let root = plain.call("GET", "/", &browser, None);
    assert_eq!(root.json()["tagline"], "You Know, for Search");
    drop(plain);

    // A folder without the built module stops the node with one line.
    let unbuilt = dirs.root.path().join("unbuilt");
    write(&unbuilt.join("index.html"), b"<html>");
    let out = common::node::command(&dirs, common::servers::free_port(), &["--www", s(&unbuilt)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pkg/snapkeep.js"), "{err}");
}

#[test]
fn cat_snapshots_lists_every_repository_or_one() {
    let dirs = Dirs::new();
    let node = start(&dirs, &[]);
    let (a, b) = (dirs.backups().join("a"), dirs.backups().join("b"));
    register_fs(&node, "a", &a);
    register_fs(&node, "b", &b);
    write(&dirs.data().join("idx/f"), b"x");
    for (location, snap) in [(&a, "s1"), (&a, "s2"), (&b, "t1")] {
        common::ok(&[
            "snapshot",
            "create",
            s(location),
            snap,
            "--source",
            s(&dirs.data()),
        ]);
    }
    let all = node.get("/_cat/snapshots?h=id,repository,status,indices&s=id");
    assert_eq!(all.status, 200);
    assert!(all
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain"));
    let lines: Vec<Vec<String>> = all
        .text()
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(
        lines,
        [
            ["s1", "a", "SUCCESS", "1"],
            ["s2", "a", "SUCCESS", "1"],
            ["t1", "b", "SUCCESS", "1"]
        ]
    );
    let one = node.get("/_cat/snapshots/b?format=json").json();
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["id"], "t1");
    assert_eq!(one[0]["repository"], "b");
    let headed = node.get("/_cat/snapshots/a?v&h=id");
    assert_eq!(headed.text().lines().next().unwrap().trim(), "id");
    let missing = node.get("/_cat/snapshots/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json()["error"]["type"],
        "repository_missing_exception"
    );
}

#[test]
fn a_clone_names_the_source_data_without_copying_it() {
    let dirs = Dirs::new();
    let node = start(&dirs, &[]);
    let location = dirs.backups().join("r");
    register_fs(&node, "r", &location);
    let data = dirs.data();
    write(&data.join("logs/a.log"), &[7u8; 300_000]);
    write(&data.join("logs/sub/b.log"), b"second");
    write(&data.join("metrics/m"), &[9u8; 1000]);
    common::ok(&[
        "snapshot",
        "create",
        s(&location),
        "src",
        "--source",
        s(&data),
    ]);
    let packs = common::pack_files(&location);

    let body = r#"{"indices": "logs"}"#;
    let cloned = node.send("PUT", "/_snapshot/r/src/_clone/copy", body);
    assert_eq!(
        cloned.json(),
        json!({"acknowledged": true}),
        "{}",
        cloned.text()
    );
    assert_eq!(common::pack_files(&location), packs, "a clone adds no pack");
    let info = node.get("/_snapshot/r/copy").json();
    assert_eq!(info["snapshots"][0]["indices"], json!(["logs"]));
    common::ok(&["repo", "check", s(&location)]);
    let target = dirs.root.path().join("restored");
    common::ok(&["restore", s(&location), "copy", "--target", s(&target)]);
    common::assert_same_tree(&data.join("logs"), &target.join("logs"));
    assert!(!target.join("metrics").exists());

    let taken = node.send("PUT", "/_snapshot/r/src/_clone/copy", body);
    assert_eq!(taken.status, 400);
    assert_eq!(
        taken.json()["error"]["type"],
        "snapshot_name_already_in_use_exception"
    );
    let gone = node.send("PUT", "/_snapshot/r/nope/_clone/other", body);
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json()["error"]["type"], "snapshot_missing_exception");
    let bad = node.send("PUT", "/_snapshot/r/src/_clone/Bad", body);
    assert_eq!(
        bad.json()["error"]["type"],
        "invalid_snapshot_name_exception"
    );
    let no_body = node.call("PUT", "/_snapshot/r/src/_clone/x", &[], None);
    assert_eq!(no_body.status, 400);
    let no_index = node.send("PUT", "/_snapshot/r/src/_clone/x", r#"{"indices": "none"}"#);
    assert_eq!(no_index.status, 400, "{}", no_index.text());
    // The refusals left the repository as it was.
    let listed = node.get("/_snapshot/r/_all").json();
    assert_eq!(listed["total"], 2);
    common::ok(&["repo", "check", s(&location)]);
}

#[test]
fn analyze_probes_the_storage_and_refuses_read_only_repositories() {
    let dirs = Dirs::new();
    let node = start(&dirs, &[]);
    let location = dirs.backups().join("r");
    register_fs(&node, "r", &location);
    let before = walkdir(&location);
    let report = node.call("POST", "/_snapshot/r/_analyze", &[], None);
    assert_eq!(report.status, 200, "{}", report.text());
    let report = report.json();
    assert_eq!(report["repository"], "r");
    assert_eq!(report["issues_detected"], json!([]));
    let names: Vec<&str> = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|p| assert_eq!(p["ok"], true, "{p}"))
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"read-after-write"), "{names:?}");
    assert!(names.contains(&"create-only-conflicts"), "{names:?}");
    // The probes removed what they wrote.
    assert_eq!(walkdir(&location), before);

    let readonly = node.send(
        "PUT",
        "/_snapshot/ro",
        &json!({"type": "fs", "settings": {"location": location, "readonly": true}}).to_string(),
    );
    assert_eq!(readonly.status, 200, "{}", readonly.text());
    let refused = node.call("POST", "/_snapshot/ro/_analyze", &[], None);
    assert_eq!(refused.status, 500);
    assert_eq!(
        refused.json()["error"]["reason"],
        "[ro] repository is readonly"
    );
}

/// Every file under `dir`, relative, sorted.
fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}
