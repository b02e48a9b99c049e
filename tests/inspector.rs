//! The browser inspector end to end: the Worker (wrangler dev --local)
//! serves www/ and the API on 127.0.0.1; headless Chromium, driven by
//! tests/browser/inspector.mjs (playwright-core), opens repositories the
//! native CLI made, from the edge and from a local folder, and checks what
//! it shows against what the CLI says. Screenshots of every view land in
//! target/inspector-screenshots/.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::servers::{edge, EDGE_WRITE_TOKEN};
use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn chromium() -> &'static str {
    let path = "/usr/bin/chromium";
    assert!(
        Path::new(path).exists(),
        "Chromium is needed (bash scripts/test.sh installs Debian's chromium)"
    );
    path
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What the CLI says about `repo`: the expectations the page must meet.
fn expectations(repo: &str, env: &[(String, String)], data: &Path, tmp: &Path) -> Value {
    let cli = |args: &[&str]| -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&ok_env(env, &a)).unwrap()
    };
    let list = cli(&["snapshot", "list", repo]);
    let snapshots: Vec<Value> = list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            json!({
                "snapshot": s["snapshot"],
                "state": s["state"],
                "size_in_bytes": s["stats"]["size_in_bytes"],
                "start_time_in_millis": s["start_time_in_millis"],
            })
        })
        .collect();
    let diff = cli(&["snapshot", "diff", repo, "snap-1", "snap-2"]);
    let changes: Vec<Value> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| json!({"path": c["path"], "change": c["change"]}))
        .collect();
    let plan = cli(&[
        "restore",
        repo,
        "snap-2",
        "--target",
        s(&tmp.join("never")),
        "--indices",
        "logs",
        "--rename-pattern",
        "(.+)",
        "--rename-replacement",
        "r-$1",
        "--dry-run",
    ]);
    let file = data.join("logs/app.log");
    let bytes = std::fs::read(&file).unwrap();
    json!({
        "snapshots": snapshots,
        "diff": {"from": "snap-1", "to": "snap-2", "changes": changes},
        "plan": {
            "snapshot": "snap-2", "indices": "logs", "rename_pattern": "(.+)",
            "rename_replacement": "r-$1", "include_global_state": false,
            "bytes_to_fetch": plan["summary"]["bytes_to_fetch"],
            "files": plan["summary"]["files"],
        },
        "file": {
            "snapshot": "snap-2", "index": "logs", "path": "app.log",
            "size": bytes.len(), "sha256": hex::encode(Sha256::digest(&bytes)),
        },
    })
}

/// Sample data in two states, snapshotted as snap-1 and snap-2 into `repo`.
fn two_snapshots(repo: &str, env: &[(String, String)], data: &Path) {
    two_snapshots_in(repo, env, data, &[]);
}

/// [`two_snapshots`] into a repository made by `repo init` with `init_args`.
fn two_snapshots_in(repo: &str, env: &[(String, String)], data: &Path, init_args: &[&str]) {
    write(
        &data.join("logs/app.log"),
        &b"GET /index.html 200\n".repeat(20_000),
    );
    write(&data.join("logs/archive/old.log"), &noise(300_000, 1));
    write(&data.join("metrics/series.bin"), &noise(2 << 20, 2));
    write(&data.join("users/docs/001.json"), br#"{"name":"ada"}"#);
    write(&data.join("users/docs/002.json"), br#"{"name":"grace"}"#);
    write(&data.join("cluster.json"), br#"{"cluster":"demo"}"#);
    let mut init = vec!["repo", "init", repo];
    init.extend_from_slice(init_args);
    ok_env(env, &init);
    ok_env(
        env,
        &["snapshot", "create", repo, "snap-1", "--source", s(data)],
    );
    let log = data.join("logs/app.log");
    let mut more = std::fs::read(&log).unwrap();
    more.extend_from_slice(&b"POST /api 201\n".repeat(500));
    write(&log, &more);
    std::fs::remove_file(data.join("users/docs/001.json")).unwrap();
    write(&data.join("users/docs/003.json"), br#"{"name":"barbara"}"#);
    ok_env(
        env,
        &["snapshot", "create", repo, "snap-2", "--source", s(data)],
    );
}

/// A repository with 1,000 snapshots, one of which holds a folder of
/// 100,000 files: a real snapshot of the wide folder, then a root listing
/// 999 more snapshots that reuse its manifest under other names.
fn big_repository(dir: &Path, tmp: &Path) {
    use snapkeep::core::format::keys;
    use snapkeep::core::format::manifest::Manifest;
    use snapkeep::core::format::root::Root;
    let src = tmp.join("wide-src");
    let wide = src.join("wide");
    std::fs::create_dir_all(&wide).unwrap();
    for i in 0..100_000 {
        std::fs::write(wide.join(format!("f{i:06}.txt")), b"").unwrap();
    }
    write(&src.join("small/readme"), b"the small index");
    init(dir);
    ok(&[
        "snapshot",
        "create",
        s(dir),
        "s-0001",
        "--source",
        s(&src),
        "-q",
    ]);
    let root: Root = Root::decode(&std::fs::read(dir.join("index-1")).unwrap()).unwrap();
    let first = &root.snapshots[0];
    let manifest =
        Manifest::decode(&std::fs::read(dir.join(keys::manifest(&first.uuid))).unwrap()).unwrap();
    let mut next = root.clone();
    next.generation = 2;
    for i in 2..=1000 {
        let mut m = manifest.clone();
        m.snapshot = format!("s-{i:04}");
        m.uuid = format!("00000000-0000-4000-8000-{i:012}");
        m.start_time_in_millis += i as i64 * 3_600_000;
        m.end_time_in_millis += i as i64 * 3_600_000 + (i as i64 % 17) * 1000;
        std::fs::write(dir.join(keys::manifest(&m.uuid)), m.encode()).unwrap();
        next.snapshots.push(m.summary());
    }
    std::fs::write(dir.join("index-2"), next.encode()).unwrap();
    std::fs::write(dir.join("index.latest"), b"2").unwrap();
}

/// Copies every object of a local repository into an edge repository.
fn upload(local: &Path, edge_repo: &str) {
    use snapkeep::storage::edge::EdgeStore;
    use snapkeep::storage::local::LocalStore;
    use snapkeep::storage::{PutMode, Storage};
    let from = LocalStore::open(local).unwrap();
    // A local wrangler answers its first request only once the Worker is
    // loaded, which on a busy 2-core machine can take longer than the
    // default 30 s.
    let timeouts = snapkeep::storage::timeouts::Timeouts {
        first_byte: std::time::Duration::from_secs(300),
        ..Default::default()
    };
    let token = Some(EDGE_WRITE_TOKEN.into());
    let to = Arc::new(EdgeStore::with_timeouts(edge_repo.into(), token, timeouts).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // The local reserve is free space kept for full disks, not data.
        let objects: Vec<_> = from
            .list("")
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.key != snapkeep::core::format::keys::RESERVE)
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in objects.chunks(objects.len().div_ceil(8).max(1)) {
            let keys: Vec<String> = chunk.iter().map(|m| m.key.clone()).collect();
            let (to, from) = (to.clone(), LocalStore::open(local).unwrap());
            tasks.spawn(async move {
                for k in keys {
                    let b = from.get(&k, None).await.unwrap();
                    to.put(&k, b, PutMode::Overwrite).await.unwrap();
                }
            });
        }
        while let Some(t) = tasks.join_next().await {
            t.unwrap();
        }
    });
}

fn run_browser(config: &Value, tmp: &Path, name: &str) {
    let path = tmp.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    let script = repo_root().join("tests/browser/inspector.mjs");
    let out = std::process::Command::new("node")
        .arg(&script)
        .arg(&path)
        .current_dir(repo_root().join("tests/browser"))
        .output()
        .expect("node runs (Node.js 20)");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!("--- browser checks ({name}) ---\n{stdout}{stderr}");
    assert!(out.status.success(), "browser checks failed for {name}");
}

#[test]
fn the_inspector_shows_what_the_cli_sees_from_the_edge_and_from_a_folder() {
    let browser = chromium();
    let server = edge(false);
    let host = format!("http://127.0.0.1:{}", server.port);
    let t = tempfile::tempdir().unwrap();
    let shots = repo_root().join("target/inspector-screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    // The same kind of history in an edge repository and a local folder.
    let env = vec![("SNAPKEEP_TOKEN".to_string(), EDGE_WRITE_TOKEN.to_string())];
    let edge_repo = format!("{host}/api/repos/demo");
    let (edge_data, folder_data) = (t.path().join("edge-data"), t.path().join("folder-data"));
    two_snapshots(&edge_repo, &env, &edge_data);
    let folder = t.path().join("folder-repo");
    two_snapshots(s(&folder), &[], &folder_data);

    let big = t.path().join("big-repo");
    big_repository(&big, t.path());
    upload(&big, &format!("{host}/api/repos/big"));

    let mut edge_config = expectations(&edge_repo, &env, &edge_data, t.path());
    edge_config["chromium"] = json!(browser);
    edge_config["screenshots"] = json!(s(&shots.join("edge")));
    edge_config["targets"] =
        json!([{"name": "edge", "url": format!("{host}/?repo=/api/repos/demo")}]);
    edge_config["errors"] = json!([
        {"url": format!("{host}/?repo=/api/repos/nothing"), "contains": "no snapkeep repository"},
        {"url": format!("{host}/?repo=http://127.0.0.1:{}/api/repos/x", common::servers::free_port()), "contains": "unreachable"},
        {"url": format!("{host}/?repo=/api/repos/demo&token=wrong"), "contains": "token"},
    ]);
    edge_config["big"] = json!({
        "url": format!("{host}/?repo=/api/repos/big"),
        "snapshots": 1000,
        "tree": {"snapshot": "s-0001", "index": "wide", "entries": 100_000},
    });
    run_browser(&edge_config, t.path(), "edge");

    let mut folder_config = expectations(s(&folder), &[], &folder_data, t.path());
    folder_config["chromium"] = json!(browser);
    folder_config["screenshots"] = json!(s(&shots.join("folder")));
    folder_config["targets"] =
        json!([{"name": "folder", "url": format!("{host}/"), "folder": s(&folder)}]);
    folder_config["errors"] = json!([]);
    folder_config["big"] = Value::Null;
    run_browser(&folder_config, t.path(), "folder");
}

/// The node serves the same page and read API: the inspector opened at
/// `http://node/` shows a registered repository as the CLI sees it.
#[test]
fn the_inspector_served_by_a_node_shows_what_the_cli_sees() {
    use common::node::{start, Dirs};
    let browser = chromium();
    let dirs = Dirs::new();
    let t = tempfile::tempdir().unwrap();
    let shots = repo_root().join("target/inspector-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let repo = dirs.backups().join("demo");
    let data = t.path().join("data");
    two_snapshots(s(&repo), &[], &data);
    let www = repo_root().join("www");
    let node = start(&dirs, &["--www", s(&www)]);
    let registered = node.send(
        "PUT",
        "/_snapshot/demo",
        &json!({"type": "fs", "settings": {"location": repo}}).to_string(),
    );
    assert_eq!(registered.status, 200, "{}", registered.text());
    let host = format!("http://127.0.0.1:{}", node.port);

    let mut config = expectations(s(&repo), &[], &data, t.path());
    config["chromium"] = json!(browser);
    config["screenshots"] = json!(s(&shots.join("node")));
    config["targets"] = json!([{"name": "node", "url": format!("{host}/?repo=/api/repos/demo")}]);
    config["errors"] = json!([
        {"url": format!("{host}/?repo=/api/repos/nothing"), "contains": "no snapkeep repository"},
    ]);
    config["big"] = Value::Null;
    run_browser(&config, t.path(), "node");
}

/// On a 420 px screen, served by a node: nothing scrolls sideways, long
/// index, snapshot and file names show whole in every view, the chart's
/// tick labels keep apart, and the restore command the copy button gives
/// restores, through the CLI, what the snapshot holds. An empty repository
/// shows no 0.00× ratio.
#[test]
fn the_inspector_on_a_narrow_screen_keeps_long_names_whole() {
    use common::node::{start, Dirs};
    let browser = chromium();
    let dirs = Dirs::new();
    let t = tempfile::tempdir().unwrap();
    let shots = repo_root().join("target/inspector-screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    // Underscores only: no hyphen or space to break the names at.
    let index = "application_logs_of_the_primary_cluster_in_frankfurt";
    let other = "metrics_of_the_secondary_cluster_replicated_from_paris";
    let folder = "requests_received_during_the_night_before_the_upgrade";
    let file = "checkout_service_request_log_written_before_the_upgrade_0001.log";
    let snaps = [
        "nightly_snapshot_of_the_production_cluster_before_the_upgrade_0001",
        "nightly_snapshot_of_the_production_cluster_before_the_upgrade_0002",
    ];
    let repo = dirs.backups().join("long");
    let data = t.path().join("data");
    let path = data.join(index).join(folder).join(file);
    write(&path, &b"GET /checkout 200\n".repeat(5_000));
    write(&data.join(other).join("series.bin"), &noise(100_000, 7));
    init(&repo);
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        snaps[0],
        "--source",
        s(&data),
    ]);
    let mut more = std::fs::read(&path).unwrap();
    more.extend_from_slice(&b"POST /checkout 201\n".repeat(300));
    write(&path, &more);
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        snaps[1],
        "--source",
        s(&data),
    ]);
    let empty = dirs.backups().join("empty");
    init(&empty);

    let node = start(&dirs, &["--www", s(&repo_root().join("www"))]);
    for (name, location) in [("long", &repo), ("empty", &empty)] {
        let registered = node.send(
            "PUT",
            &format!("/_snapshot/{name}"),
            &json!({"type": "fs", "settings": {"location": location}}).to_string(),
        );
        assert_eq!(registered.status, 200, "{}", registered.text());
    }
    let host = format!("http://127.0.0.1:{}", node.port);
    let command_out = t.path().join("copied-command");
    let config = json!({
        "chromium": browser,
        "screenshots": s(&shots.join("narrow")),
        "narrow": {
            "url": format!("{host}/?repo=/api/repos/long"),
            "width": 420, "height": 900,
            "snapshots": snaps,
            "indices": [index, other],
            "files": [folder, file],
            "file": {
                "snapshot": snaps[1], "index": index, "path": format!("{folder}/{file}"),
                "sha256": hex::encode(Sha256::digest(&more)),
            },
            "plan": {
                "snapshot": snaps[1], "indices": index,
                "rename_pattern": "(.+)", "rename_replacement": "restored_$1",
            },
            "command_out": s(&command_out),
        },
        "empty": {"url": format!("{host}/?repo=/api/repos/empty"), "width": 420},
    });
    run_browser(&config, t.path(), "narrow");

    // The copied command, run as a shell would, with TARGET filled in.
    let command = std::fs::read_to_string(&command_out).unwrap();
    let target = t.path().join("restored");
    assert!(
        command.starts_with("snapkeep restore ") && command.contains(" --target TARGET"),
        "{command}"
    );
    let command = command.replace(" --target TARGET", &format!(" --target '{}'", s(&target)));
    let path_dir = t.path().join("bin");
    std::fs::create_dir_all(&path_dir).unwrap();
    std::os::unix::fs::symlink(common::bin(), path_dir.join("snapkeep")).unwrap();
    let path = format!(
        "{}:{}",
        s(&path_dir),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = target
        .join(format!("restored_{index}"))
        .join(folder)
        .join(file);
    assert_eq!(std::fs::read(&restored).unwrap(), more, "{command}");
    assert!(
        !target.join(other).exists() && !target.join(format!("restored_{other}")).exists(),
        "only the index asked for is restored"
    );
}

/// An encrypted repository (issue #19), from the edge and from a folder:
/// the page asks for the password, refuses a wrong one, then lists the
/// snapshots the CLI lists and downloads a file whose bytes match, all
/// decrypted in the page, sending the password nowhere.
#[test]
fn the_inspector_unlocks_an_encrypted_repository_with_its_password() {
    let browser = chromium();
    let server = edge(false);
    let host = format!("http://127.0.0.1:{}", server.port);
    let t = tempfile::tempdir().unwrap();
    let shots = repo_root().join("target/inspector-screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    let password = "inspector-secret-passphrase";
    let env = vec![("SNAPKEEP_PASSWORD".to_string(), password.to_string())];
    let local = t.path().join("secret");
    let data = t.path().join("data");
    two_snapshots_in(s(&local), &env, &data, &["--encryption"]);
    upload(&local, &format!("{host}/api/repos/secret"));
    let expected = expectations(s(&local), &env, &data, t.path());

    let target = |name: &str, url: String, folder: Option<&Path>| {
        json!({
            "name": name, "url": url, "folder": folder.map(s), "password": password,
            "snapshots": expected["snapshots"], "file": expected["file"],
        })
    };
    let config = json!({
        "chromium": browser,
        "screenshots": s(&shots.join("encrypted")),
        "encrypted": [
            target("encrypted-edge", format!("{host}/?repo=/api/repos/secret"), None),
            target("encrypted-folder", format!("{host}/"), Some(&local)),
        ],
    });
    run_browser(&config, t.path(), "encrypted");
}
