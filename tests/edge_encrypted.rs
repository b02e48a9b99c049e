//! An encrypted repository at the edge, with the Worker run for real
//! (`wrangler dev --local`, scripts/edge-dev.sh): its objects are served
//! as stored, byte for byte, so the CLI decrypts them with the password;
//! its JSON views answer only where the deployment holds the read key
//! (`SNAPKEEP_READ_KEY`, from `snapkeep repo key export`), and otherwise
//! say the repository is encrypted.

mod common;

use std::path::{Path, PathBuf};

use common::servers::{edge_keyed, http, EdgeReads, EDGE_WRITE_TOKEN};
use common::*;
use reqwest::StatusCode;

const PASSWORD: &str = "correct horse battery staple";

fn env_with(password: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![("SNAPKEEP_TOKEN".to_string(), EDGE_WRITE_TOKEN.to_string())];
    if let Some(p) = password {
        env.push(("SNAPKEEP_PASSWORD".into(), p.into()));
    }
    env
}

fn get(url: &str) -> (StatusCode, Vec<u8>) {
    let (status, _, body) = http(reqwest::Method::GET, url, None, &[], None);
    (status, body)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(body)))
}

/// Every file under `dir`, as repository keys (relative, `/`-separated).
fn keys_under(dir: &Path) -> Vec<(String, PathBuf)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let key = path.strip_prefix(root).unwrap().to_str().unwrap();
                out.push((key.replace('\\', "/"), path));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Uploads a local repository's files through the object API as they are.
fn upload(local: &Path, api: &str) {
    for (key, path) in keys_under(local) {
        let (status, _, body) = http(
            reqwest::Method::PUT,
            &format!("{api}/objects/{key}"),
            Some(EDGE_WRITE_TOKEN),
            &[],
            Some(std::fs::read(&path).unwrap()),
        );
        assert!(
            status.is_success(),
            "{key}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
}

/// A local encrypted repository with one snapshot of `src`, and its read
/// key as `repo key export` prints it.
fn encrypted_repo(dir: &Path, src: &Path) -> String {
    let env = env_with(Some(PASSWORD));
    let repo = s(dir);
    ok_env(&env, &["repo", "init", "--encryption", repo]);
    ok_env(
        &env,
        &["snapshot", "create", repo, "s1", "--source", s(src)],
    );
    let out = run_env(&env, &["repo", "key", "export", repo]);
    assert!(out.status.success());
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(warning.contains("opens the whole repository"), "{warning}");
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(key.len(), 64, "{key}");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    let exported: serde_json::Value =
        serde_json::from_str(&ok_env(&env, &["repo", "key", "export", repo, "--json"])).unwrap();
    assert_eq!(exported["master_key"], key.as_str());
    key
}

#[test]
fn an_encrypted_repository_at_the_edge_serves_sealed_objects_and_keyed_views() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let big = noise(3 << 20, 19);
    write(&src.join("idx/big.bin"), &big);
    write(&src.join("idx/small.txt"), b"a small secret\n");
    let local = t.path().join("enc");
    let read_key = encrypted_repo(&local, &src);
    let other = t.path().join("other");
    let other_key = encrypted_repo(&other, &src);
    assert_ne!(read_key, other_key);

    // A Worker without a read key.
    let server = edge_keyed(EdgeReads::Public, None);
    let host = format!("http://127.0.0.1:{}", server.port);
    let api = format!("{host}/api/repos/enc");
    upload(&local, &api);

    // Every object comes back exactly as the CLI wrote it: sealed, and
    // not opened by the Worker.
    let keys = keys_under(&local);
    assert!(
        keys.iter().any(|(k, _)| k.starts_with("packs/")),
        "{keys:?}"
    );
    for (key, path) in &keys {
        let (status, body) = get(&format!("{api}/objects/{key}"));
        assert_eq!(status, StatusCode::OK, "{key}");
        assert!(body == std::fs::read(path).unwrap(), "{key} differs");
    }
    let (status, body) = get(&format!("{api}/objects?prefix=keys/"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["objects"].as_array().unwrap().len(), 1);

    // The views say the repository is encrypted, and what would open them.
    for view in [
        "",
        "/snapshots",
        "/snapshots/s1/file?index=idx&path=big.bin",
    ] {
        let (status, body) = get(&format!("{api}{view}"));
        assert_eq!(status, StatusCode::FORBIDDEN, "{view}");
        let v = json(&body);
        assert_eq!(v["error"]["type"], "repository_encrypted_exception", "{v}");
        let reason = v["error"]["reason"].as_str().unwrap();
        assert!(reason.contains("is encrypted"), "{reason}");
        assert!(reason.contains("SNAPKEEP_READ_KEY"), "{reason}");
        assert!(!reason.contains("SNAPKEEP_PASSWORD"), "{reason}");
    }
    let (status, body) = get(&format!("{host}/api/health"));
    assert_eq!(status, StatusCode::OK);
    let health = json(&body);
    assert_eq!(health["repositories"][0]["repository"], "enc", "{health}");
    let problem = health["repositories"][0]["problems"][0].as_str().unwrap();
    assert!(problem.contains("SNAPKEEP_READ_KEY"), "{problem}");

    // The CLI reads the raw objects and decrypts them itself.
    let listed: serde_json::Value = serde_json::from_str(&ok_env(
        &env_with(Some(PASSWORD)),
        &["snapshot", "list", &api, "--json"],
    ))
    .unwrap();
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["snapshots"][0]["snapshot"], "s1");
    let dst = t.path().join("dst");
    ok_env(
        &env_with(Some(PASSWORD)),
        &["restore", &api, "s1", "--target", s(&dst)],
    );
    assert_same_tree(&src, &dst);
    let err = fails_env(&env_with(Some("not it")), &["snapshot", "list", &api]);
    assert!(err.contains("wrong password"), "{err}");
    drop(server);

    // A Worker holding the read key of `enc` (and not of `other`).
    let server = edge_keyed(EdgeReads::Public, Some(&read_key));
    let host = format!("http://127.0.0.1:{}", server.port);
    let api = format!("{host}/api/repos/enc");
    upload(&local, &api);
    upload(&other, &format!("{host}/api/repos/other"));
    let (status, body) = get(&format!("{api}/snapshots"));
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v = json(&body);
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["snapshots"][0]["snapshot"], "s1");
    let file = format!("{api}/snapshots/s1/file?index=idx&path=big.bin");
    let (status, body) = get(&file);
    assert_eq!(status, StatusCode::OK);
    assert!(body == big, "the file's bytes differ");
    let (status, _, body) = http(
        reqwest::Method::GET,
        &file,
        None,
        &[("Range", "bytes=2000000-2000099")],
        None,
    );
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert!(body == big[2_000_000..2_000_100]);
    let (status, body) = get(&format!("{api}/snapshots/s1/tree?index=idx"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["entries"].as_array().unwrap().len(), 2);

    // Another encrypted repository's views: the key is proved and refused.
    let (status, body) = get(&format!("{host}/api/repos/other/snapshots"));
    assert_eq!(status, StatusCode::FORBIDDEN);
    let v = json(&body);
    assert_eq!(v["error"]["type"], "repository_encrypted_exception", "{v}");
    let reason = v["error"]["reason"].as_str().unwrap();
    assert!(reason.contains("read key does not open"), "{reason}");
    assert!(!reason.contains(&read_key), "{reason}");

    // Plain repositories are read as ever beside the key; the health
    // report reads the keyed repository and names the other's problem.
    let plain = t.path().join("plain");
    ok(&["repo", "init", s(&plain)]);
    ok(&["snapshot", "create", s(&plain), "p1", "--source", s(&src)]);
    upload(&plain, &format!("{host}/api/repos/plain"));
    let (status, body) = get(&format!("{host}/api/repos/plain/snapshots"));
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["snapshots"][0]["snapshot"], "p1");
    let (status, body) = get(&format!("{host}/api/health"));
    assert_eq!(status, StatusCode::OK);
    let health = json(&body);
    let entry = |name: &str| {
        health["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["repository"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing: {health}"))
    };
    assert_eq!(entry("enc")["status"], "green", "{health}");
    assert_eq!(entry("plain")["status"], "green", "{health}");
    let problem = entry("other")["problems"][0].as_str().unwrap().to_string();
    assert!(problem.contains("read key does not open"), "{problem}");

    // The objects are still served as stored.
    let (key, path) = &keys[keys.len() / 2];
    let (status, body) = get(&format!("{api}/objects/{key}"));
    assert_eq!(status, StatusCode::OK);
    assert!(body == std::fs::read(path).unwrap());
}
