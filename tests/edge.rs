//! snapkeep's edge Worker, run for real with `wrangler dev --local` on
//! 127.0.0.1 (scripts/edge-dev.sh): the native CLI uses it as a repository,
//! and its JSON API lists, pages, diffs, reads ranges and plans restores.

mod common;

use std::sync::Arc;

use common::servers::{edge, edge_with, http, EdgeReads, EDGE_READ_TOKEN, EDGE_WRITE_TOKEN};
use common::*;
use reqwest::StatusCode;
use snapkeep::storage::edge::EdgeStore;

fn write_env() -> Vec<(String, String)> {
    vec![("SNAPKEEP_TOKEN".into(), EDGE_WRITE_TOKEN.into())]
}

fn get_json(url: &str) -> serde_json::Value {
    let (status, _, body) = http(reqwest::Method::GET, url, None, &[], None);
    assert_eq!(
        status,
        StatusCode::OK,
        "{url}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn the_edge_worker_serves_repositories_to_the_cli_and_its_api() {
    let server = edge(false);
    let host = format!("http://127.0.0.1:{}", server.port);
    let t = tempfile::tempdir().unwrap();

    // The object API passes the storage port's conformance suite.
    let store = EdgeStore::new(
        format!("{host}/api/repos/conformance"),
        Some(EDGE_WRITE_TOKEN.into()),
    )
    .unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(snapkeep::storage::conformance::run_all(Arc::new(store)));

    // The CLI snapshots into it, twice.
    let env = write_env();
    let repo = format!("{host}/api/repos/prod");
    let src = t.path().join("src");
    let big = noise(6 << 20, 11);
    write(&src.join("logs/big.bin"), &big);
    write(&src.join("logs/a.log"), &b"line\n".repeat(2000));
    write(&src.join("metrics/m.txt"), b"one");
    write(&src.join("cluster.json"), b"{}");
    ok_env(&env, &["repo", "init", &repo]);
    ok_env(
        &env,
        &["snapshot", "create", &repo, "first", "--source", s(&src)],
    );
    write(&src.join("metrics/m.txt"), b"one and two");
    write(&src.join("metrics/new.txt"), b"new");
    ok_env(
        &env,
        &["snapshot", "create", &repo, "second", "--source", s(&src)],
    );

    // Lists, pages and sorts from the root alone; anonymous reads work
    // (this deployment sets SNAPKEEP_PUBLIC_READS=true).
    let api = &repo;
    let page1 = get_json(&format!("{api}/snapshots?size=1&sort=name&order=asc"));
    assert_eq!(page1["total"], 2);
    assert_eq!(page1["remaining"], 1);
    assert_eq!(page1["snapshots"][0]["snapshot"], "first");
    let next = page1["next"].as_str().unwrap();
    let page2 = get_json(&format!(
        "{api}/snapshots?size=1&sort=name&order=asc&after={next}"
    ));
    assert_eq!(page2["snapshots"][0]["snapshot"], "second");
    assert_eq!(page2["remaining"], 0);
    let info = get_json(api);
    assert_eq!(info["stats"]["snapshots"], 2);
    assert!(
        info["stats"]["dedup_ratio"].as_f64().unwrap() > 1.5,
        "{info}"
    );
    let detail = get_json(&format!("{api}/snapshots/second"));
    assert_eq!(
        detail["snapshots"][0]["index_details"]["metrics"]["files"],
        2
    );

    // Diff.
    let diff = get_json(&format!("{api}/diff?from=first&to=second"));
    assert_eq!(diff["added"], 1, "{diff}");
    assert_eq!(diff["modified"], 1, "{diff}");
    let paths: Vec<&str> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["metrics/m.txt", "metrics/new.txt"]);

    // One folder level.
    let tree = get_json(&format!("{api}/snapshots/second/tree?index=logs"));
    let names: Vec<&str> = tree["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.log", "big.bin"]);

    // A range of a file: exactly those bytes, assembled from its chunks.
    let file = format!("{api}/snapshots/second/file?index=logs&path=big.bin");
    let (status, headers, body) = http(
        reqwest::Method::GET,
        &file,
        None,
        &[("Range", "bytes=3000000-3000999")],
        None,
    );
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert!(body == big[3_000_000..3_001_000]);
    assert_eq!(
        headers["content-range"],
        format!("bytes 3000000-3000999/{}", big.len()).as_str()
    );
    let (status, _, body) = http(reqwest::Method::GET, &file, None, &[], None);
    assert_eq!(status, StatusCode::OK);
    assert!(body == big);
    let (status, _, _) = http(
        reqwest::Method::GET,
        &file,
        None,
        &[("Range", "bytes=99999999-")],
        None,
    );
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);

    // The restore plan the Worker computes is the one the CLI computes.
    let (status, _, body) = http(
        reqwest::Method::POST,
        &format!("{api}/snapshots/second/_restore_plan"),
        None,
        &[],
        Some(
            br#"{"indices":"logs","rename_pattern":"(.+)","rename_replacement":"old-$1"}"#.to_vec(),
        ),
    );
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let plan: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let dry: serde_json::Value = serde_json::from_str(&ok_env(
        &env,
        &[
            "restore",
            &repo,
            "second",
            "--target",
            s(&t.path().join("plan")),
            "--indices",
            "logs",
            "--rename-pattern",
            "(.+)",
            "--rename-replacement",
            "old-$1",
            "--dry-run",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(plan["summary"], dry["summary"], "{dry}");
    assert_eq!(plan["summary"]["files"], 2);
    assert_eq!(plan["indices"][0]["to"], "old-logs");

    // A restore from the edge repository is byte-identical.
    let dst = t.path().join("dst");
    ok_env(
        &env,
        &[
            "restore",
            &repo,
            "second",
            "--target",
            s(&dst),
            "--include-global-state",
        ],
    );
    assert_same_tree(&src, &dst);

    // Writes without the write token are refused and change nothing.
    let key = format!("{api}/objects/stray");
    let (status, _, body) = http(reqwest::Method::PUT, &key, None, &[], Some(b"x".to_vec()));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"]["type"], "security_exception");
    assert_eq!(err["status"], 401);
    let (status, _, _) = http(
        reqwest::Method::PUT,
        &key,
        Some("wrong"),
        &[],
        Some(b"x".to_vec()),
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = http(reqwest::Method::HEAD, &key, None, &[], None);
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was written");
    let err = fails(&[
        "snapshot",
        "create",
        &repo,
        "anonymous",
        "--source",
        s(&src),
    ]);
    assert!(err.contains("permission denied"), "{err}");
    let err = fails_env(
        &[("SNAPKEEP_TOKEN".into(), "wrong".into())],
        &["snapshot", "delete", &repo, "first"],
    );
    assert!(
        err.contains("permission denied") || err.contains("403"),
        "{err}"
    );

    // Concurrent creates through the edge all land.
    let procs: Vec<_> = (0..3)
        .map(|i| {
            let own = t.path().join(format!("src{i}"));
            write(&own.join("idx/own"), &noise(300_000, 50 + i));
            write(&own.join("idx/shared"), &big[..1 << 20]);
            std::process::Command::new(bin())
                .args([
                    "snapshot",
                    "create",
                    &repo,
                    &format!("c{i}"),
                    "--source",
                    s(&own),
                ])
                .env("SNAPKEEP_TOKEN", EDGE_WRITE_TOKEN)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in procs {
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(get_json(&format!("{api}/snapshots"))["total"], 5);
    ok_env(&env, &["repo", "check", &repo, "--read-data"]);

    // The bundle stays well under the free plan's 3 MiB (gzip) limit.
    let wasm = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("build/index_bg.wasm");
    let raw = std::fs::metadata(&wasm).unwrap().len();
    let gz = std::process::Command::new("gzip")
        .arg("-c")
        .arg(&wasm)
        .output()
        .unwrap()
        .stdout
        .len();
    eprintln!("Worker bundle: {raw} bytes of wasm, {gz} bytes gzipped");
    assert!(gz < 3 << 19, "{gz} bytes gzipped");
}

#[test]
fn the_worker_refuses_an_unknown_order_as_the_cli_and_inspector_do() {
    let server = edge(false);
    let repo = format!("http://127.0.0.1:{}/api/repos/orders", server.port);
    let t = tempfile::tempdir().unwrap();
    write(&t.path().join("src/idx/f"), b"data");
    ok_env(&write_env(), &["repo", "init", &repo]);
    let src = t.path().join("src");
    ok_env(
        &write_env(),
        &["snapshot", "create", &repo, "s1", "--source", s(&src)],
    );
    for order in ["up", "DESC", ""] {
        let url = format!("{repo}/snapshots?sort=name&order={order}");
        let (status, _, body) = http(reqwest::Method::GET, &url, None, &[], None);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["type"], "illegal_argument_exception", "{v}");
        assert_eq!(
            v["error"]["reason"],
            format!("unknown order [{order}]: use asc or desc")
        );
    }
    let listed = get_json(&format!("{repo}/snapshots?sort=name&order=desc"));
    assert_eq!(listed["snapshots"][0]["snapshot"], "s1");
}

#[test]
fn a_read_token_guards_reads_and_cannot_write() {
    let server = edge(true);
    let repo = format!("http://127.0.0.1:{}/api/repos/guarded", server.port);
    let t = tempfile::tempdir().unwrap();
    write(&t.path().join("src/idx/f"), b"data");
    ok_env(&write_env(), &["repo", "init", &repo]);
    ok_env(
        &write_env(),
        &[
            "snapshot",
            "create",
            &repo,
            "s1",
            "--source",
            s(&t.path().join("src")),
        ],
    );

    let list = format!("{repo}/snapshots");
    let (status, _, _) = http(reqwest::Method::GET, &list, None, &[], None);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = http(
        reqwest::Method::GET,
        &list,
        Some(EDGE_READ_TOKEN),
        &[],
        None,
    );
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["snapshots"][0]["snapshot"], "s1");
    let (status, _, _) = http(
        reqwest::Method::PUT,
        &format!("{repo}/objects/x"),
        Some(EDGE_READ_TOKEN),
        &[],
        Some(b"x".to_vec()),
    );
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The lifecycle health report is a read: it needs the token too.
    let health = format!("http://127.0.0.1:{}/api/health", server.port);
    let (status, _, _) = http(reqwest::Method::GET, &health, None, &[], None);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = http(
        reqwest::Method::GET,
        &health,
        Some(EDGE_READ_TOKEN),
        &[],
        None,
    );
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "green", "{v}");
    assert_eq!(v["repositories"][0]["repository"], "guarded", "{v}");
    assert_eq!(v["repositories"][0]["policies"], serde_json::json!([]));

    // The CLI reads with the read token and cannot write with it.
    let read_env = vec![("SNAPKEEP_TOKEN".to_string(), EDGE_READ_TOKEN.to_string())];
    let listed: serde_json::Value =
        serde_json::from_str(&ok_env(&read_env, &["snapshot", "list", &repo, "--json"])).unwrap();
    assert_eq!(listed["total"], 1);
    let err = fails_env(&read_env, &["snapshot", "delete", &repo, "s1"]);
    assert!(err.contains("permission denied"), "{err}");
    let err = fails(&["snapshot", "list", &repo]);
    assert!(err.contains("permission denied"), "{err}");
}

/// A deployment that says nothing about reads keeps them private: an
/// anonymous request is refused, the write token reads, and no answer
/// names the R2 binding (`REPOS`).
#[test]
fn reads_need_a_token_unless_the_deployment_makes_them_public() {
    let server = edge_with(EdgeReads::Private);
    let base = format!("http://127.0.0.1:{}/api/repos", server.port);
    let repo = format!("{base}/private");
    let t = tempfile::tempdir().unwrap();
    write(&t.path().join("src/idx/f"), b"data");
    ok_env(&write_env(), &["repo", "init", &repo]);
    ok_env(
        &write_env(),
        &[
            "snapshot",
            "create",
            &repo,
            "s1",
            "--source",
            s(&t.path().join("src")),
        ],
    );
    let list = format!("{repo}/snapshots");
    let (status, _, body) = http(reqwest::Method::GET, &list, None, &[], None);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["type"], "security_exception", "{v}");
    let (status, _, _) = http(
        reqwest::Method::GET,
        &format!("http://127.0.0.1:{}/api/health", server.port),
        None,
        &[],
        None,
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let err = fails(&["snapshot", "list", &repo]);
    assert!(err.contains("permission denied"), "{err}");
    let (status, _, body) = http(
        reqwest::Method::GET,
        &list,
        Some(EDGE_WRITE_TOKEN),
        &[],
        None,
    );
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["snapshots"][0]["snapshot"], "s1");

    // A repository that is not there is named as clients address it.
    let (status, _, body) = http(
        reqwest::Method::GET,
        &format!("{base}/nothing/snapshots"),
        Some(EDGE_WRITE_TOKEN),
        &[],
        None,
    );
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert!(text.contains("/api/repos/nothing"), "{text}");
    assert!(!text.contains("REPOS") && !text.contains("r2://"), "{text}");
}
