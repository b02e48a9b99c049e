//! The transport-neutral API ([`snapkeep::api::serve`]) over a real local
//! repository the CLI wrote, on a multi-threaded runtime as the node runs
//! it: its views answer what the CLI reports and the source holds.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use serde_json::Value;
use snapkeep::api::{self, ApiRequest, ApiResponse};
use snapkeep::core::format::codec::ruzstd_decode;
use snapkeep::repo::RepoReader;
use snapkeep::storage::local::LocalStore;

/// A repository with snapshots `one` and `two` of a source holding a
/// multi-chunk file; the repository's folder and the big file's bytes.
fn repository() -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let (t, src, repo, _) = scene();
    let big = noise(3 << 20, 7);
    write(&src.join("logs/big.bin"), &big);
    write(&src.join("logs/sub/a.log"), b"line\n");
    write(&src.join("settings.json"), b"{}");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "one", "--source", s(&src)]);
    write(&src.join("logs/b.log"), b"second");
    ok(&["snapshot", "create", s(&repo), "two", "--source", s(&src)]);
    (t, repo, big)
}

async fn served(repos: &BTreeMap<String, RepoReader>, req: ApiRequest) -> ApiResponse {
    // Spawned, so the future must be Send, as an axum handler's is.
    let repos = repos.clone();
    tokio::spawn(async move { api::serve(&repos, &req).await })
        .await
        .unwrap()
}

fn body_json(r: &ApiResponse) -> Value {
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    serde_json::from_slice(&r.body).unwrap()
}

fn get(path: &str, query: Option<&str>) -> ApiRequest {
    ApiRequest::new("GET", path, query)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_views_of_a_local_repository_match_the_cli() {
    let (_t, repo, big) = repository();
    let store = Arc::new(LocalStore::open(&repo).unwrap());
    let reader = RepoReader::open(store, ruzstd_decode).await.unwrap();
    let repos = BTreeMap::from([("local".to_string(), reader)]);

    let listed = body_json(&served(&repos, get("/api/repos", None)).await);
    assert_eq!(listed, serde_json::json!({"repositories": ["local"]}));

    // Statistics: the CLI's, field by field (it adds its request counters).
    let info = served(&repos, get("/api/repos/local", None)).await;
    assert_eq!(info.status, 200);
    let info = body_json(&info);
    assert_eq!(info["repository"], "local");
    let mut cli = json(&["repo", "stats", s(&repo)]);
    cli.as_object_mut().unwrap().remove("requests");
    assert_eq!(info["stats"], cli);
    assert_eq!(info["stats"]["snapshots"], 2);

    // The listing, paged with the cursor, as the CLI pages it.
    let page1 = body_json(
        &served(
            &repos,
            get(
                "/api/repos/local/snapshots",
                Some("size=1&sort=name&order=desc"),
            ),
        )
        .await,
    );
    let cli1 = json(&[
        "snapshot",
        "list",
        s(&repo),
        "--size",
        "1",
        "--sort",
        "name",
        "--order",
        "desc",
    ]);
    assert_eq!(page1, cli1);
    assert_eq!(page1["snapshots"][0]["snapshot"], "two");
    let next = page1["next"].as_str().expect("a cursor to the second page");
    let page2 = body_json(
        &served(
            &repos,
            get(
                "/api/repos/local/snapshots",
                Some(&format!("size=1&sort=name&order=desc&after={next}")),
            ),
        )
        .await,
    );
    let cli2 = json(&[
        "snapshot",
        "list",
        s(&repo),
        "--size",
        "1",
        "--sort",
        "name",
        "--order",
        "desc",
        "--after",
        next,
    ]);
    assert_eq!(page2, cli2);
    assert_eq!(page2["snapshots"][0]["snapshot"], "one");

    // One folder level of an index, as the source has it.
    let tree = body_json(
        &served(
            &repos,
            get("/api/repos/local/snapshots/two/tree", Some("index=logs")),
        )
        .await,
    );
    let mut names: Vec<&str> = tree["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["b.log", "big.bin", "sub"]);

    // A range across chunk boundaries, byte for byte.
    let file = "/api/repos/local/snapshots/two/file";
    let ranged = served(
        &repos,
        get(file, Some("index=logs&path=big.bin")).with_header("range", "bytes=1000000-2999999"),
    )
    .await;
    assert_eq!(ranged.status, 206);
    assert_eq!(
        ranged.header("Content-Range"),
        Some(format!("bytes 1000000-2999999/{}", big.len()).as_str())
    );
    assert!(
        ranged.body == big[1_000_000..3_000_000],
        "range bytes differ"
    );
    let outside = served(
        &repos,
        get(file, Some("index=logs&path=big.bin")).with_header("Range", "bytes=9999999-"),
    )
    .await;
    assert_eq!(outside.status, 416);
    assert_eq!(
        outside.header("Content-Range"),
        Some(format!("bytes */{}", big.len()).as_str())
    );

    // The object API's read side, on the edge wire.
    let config = served(&repos, get("/api/repos/local/objects/config", None)).await;
    assert_eq!(config.status, 200);
    assert_eq!(config.body, std::fs::read(repo.join("config")).unwrap());
    let put = served(
        &repos,
        ApiRequest::new("PUT", "/api/repos/local/objects/x", None).with_body(b"no".to_vec()),
    )
    .await;
    assert_eq!(put.status, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_repositories_snapshots_and_endpoints_are_elasticsearch_errors() {
    let (_t, repo, _) = repository();
    let store = Arc::new(LocalStore::open(&repo).unwrap());
    let reader = RepoReader::open(store, ruzstd_decode).await.unwrap();
    let repos = BTreeMap::from([("local".to_string(), reader)]);
    for (path, status, kind) in [
        ("/api/repos/other", 404, "repository_missing_exception"),
        (
            "/api/repos/local/snapshots/nope",
            404,
            "snapshot_missing_exception",
        ),
        (
            "/api/repos/local/nothing",
            404,
            "resource_not_found_exception",
        ),
        ("/api/repos/Bad*", 400, "illegal_argument_exception"),
        ("/elsewhere", 404, "resource_not_found_exception"),
    ] {
        let r = served(&repos, get(path, None)).await;
        let v = body_json(&r);
        assert_eq!(
            (r.status, v["status"].as_u64()),
            (status, Some(status as u64)),
            "{path}"
        );
        assert_eq!(v["error"]["type"], kind, "{path}");
    }
    let r = served(&repos, get("/api/repos/local/snapshots/two/tree", None)).await;
    assert_eq!(
        body_json(&r)["error"]["reason"],
        "query parameter [index] is required"
    );
}

#[test]
fn a_www_folder_loads_only_with_the_built_inspector() {
    use snapkeep::api::assets::{Assets, AssetsError};
    let t = tempfile::tempdir().unwrap();
    let www = t.path();
    write(&www.join("index.html"), b"<!doctype html>");
    write(&www.join("js/app.js"), b"export {}");
    write(&www.join(".dev.vars"), b"SECRET=1");
    let err = Assets::load(www).unwrap_err();
    assert!(
        matches!(
            err,
            AssetsError::NotBuilt {
                missing: "pkg/snapkeep.js",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("scripts/build-inspector.sh"));
    write(&www.join("pkg/snapkeep.js"), b"export default 1");
    write(&www.join("pkg/snapkeep_bg.wasm"), b"\0asm");
    let assets = Assets::load(www).unwrap();
    let paths: Vec<&str> = assets.paths().collect();
    assert_eq!(
        paths,
        [
            "index.html",
            "js/app.js",
            "pkg/snapkeep.js",
            "pkg/snapkeep_bg.wasm"
        ]
    );
    let page = assets.serve(&get("/", None)).unwrap();
    assert_eq!(&page.body[..], b"<!doctype html>");
    assert!(assets.serve(&get("/.dev.vars", None)).is_none());
}
