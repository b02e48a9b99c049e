//! The edge Worker's Cron Trigger (the lifecycle watchdog), run for real:
//! `wrangler dev --test-scheduled` (scripts/edge-dev.sh) and a request to
//! `/__scheduled`. Repositories are made by the real CLI through the
//! Worker, with policy records in them; `GET /api/health` reports which
//! policies went too long without a SUCCESS snapshot, and a repository
//! that asks for retention at the edge loses exactly the snapshots the
//! CLI's `retention plan` deletes, and stays clean for `repo check`.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::servers::{edge, EDGE_WRITE_TOKEN};
use common::*;
use serde_json::Value;
use snapkeep::core::es::slm_policy::SlmPolicy;
use snapkeep::core::slm::stored::{policy_key, StoredPolicy};
use snapkeep::core::slm::watchdog::{EdgeSettings, EDGE_SETTINGS_KEY};
use snapkeep::storage::edge::EdgeStore;
use snapkeep::storage::{PutMode, Storage};

const CRON: &str = "*/15 * * * *";

fn write_env() -> Vec<(String, String)> {
    vec![("SNAPKEEP_TOKEN".into(), EDGE_WRITE_TOKEN.into())]
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn get(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let resp = reqwest::get(url).await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

fn health(host: &str) -> Value {
    let (status, body) = get(&format!("{host}/api/health"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Runs the Cron Trigger once, as Cloudflare would.
fn run_cron(host: &str) {
    let cron = CRON.replace(' ', "+");
    let (status, body) = get(&format!("{host}/__scheduled?cron={cron}"));
    assert_eq!(status, 200, "{body}");
}

/// Puts an object into a repository through the Worker's object API.
fn put_object(repo_url: &str, key: &str, bytes: Vec<u8>) {
    let store = EdgeStore::new(repo_url.to_string(), Some(EDGE_WRITE_TOKEN.into())).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(store.put(key, Bytes::from(bytes), PutMode::Overwrite))
        .unwrap();
}

/// Stores policy `id` (the body of `PUT /_slm/policy/<id>`) in the
/// repository, as last put at `modified_ms`.
fn put_policy(repo_url: &str, id: &str, body: &str, modified_ms: i64) {
    let policy = SlmPolicy::parse(id, body.as_bytes(), modified_ms).unwrap();
    let record = StoredPolicy::new(id, 1, modified_ms, &policy);
    put_object(repo_url, &policy_key(id), record.encode());
}

fn snapshot(repo: &str, src: &Path, name: &str, policy: Option<&str>) {
    write(&src.join("idx/changing"), name.as_bytes());
    let meta = policy.map(|p| format!("policy={p}"));
    let mut args = vec!["snapshot", "create", repo, name, "--source", s(src)];
    if let Some(m) = &meta {
        args.extend(["--metadata", m.as_str()]);
    }
    ok_env(&write_env(), &args);
}

fn names(repo: &str) -> BTreeSet<String> {
    let listed: Value =
        serde_json::from_str(&ok_env(&write_env(), &["snapshot", "list", repo, "--json"])).unwrap();
    listed["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["snapshot"].as_str().unwrap().to_string())
        .collect()
}

fn repository<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repository"] == name)
        .unwrap_or_else(|| panic!("{name} is not in {report}"))
}

fn policy<'a>(repo: &'a Value, id: &str) -> &'a Value {
    repo["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"] == id)
        .unwrap_or_else(|| panic!("{id} is not in {repo}"))
}

const NIGHTLY: &str = r#"{"name":"<nightly-{now/d}>","schedule":"0 30 1 * * ?",
    "repository":"prod","retention":{"max_count":2},"unhealthy_if_no_snapshot_within":"1h"}"#;

#[test]
fn the_cron_watchdog_reports_health_and_runs_opted_in_retention() {
    let server = edge(false);
    let host = format!("http://127.0.0.1:{}", server.port);
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("idx/big"), &noise(300_000, 7));

    // prod asks for retention at the edge: nightly keeps 2 of its 4
    // snapshots; stale's only snapshot is older than its 2 s threshold;
    // ghost never ran and was put two hours ago.
    let prod = format!("{host}/api/repos/prod");
    ok_env(&write_env(), &["repo", "init", &prod]);
    snapshot(&prod, &src, "stale-1", Some("stale"));
    for n in 1..=4 {
        snapshot(&prod, &src, &format!("nightly-{n}"), Some("nightly"));
    }
    snapshot(&prod, &src, "manual", None);
    put_policy(&prod, "nightly", NIGHTLY, now_ms());
    put_policy(
        &prod,
        "stale",
        r#"{"name":"stale","schedule":"30m","repository":"prod",
            "retention":{"max_count":1},"unhealthy_if_no_snapshot_within":"2s"}"#,
        now_ms() - 3_600_000,
    );
    put_policy(
        &prod,
        "ghost",
        r#"{"name":"ghost","schedule":"1h","repository":"prod",
            "unhealthy_if_no_snapshot_within":"1h"}"#,
        now_ms() - 2 * 3_600_000,
    );
    put_object(&prod, EDGE_SETTINGS_KEY, EdgeSettings::new(true).encode());

    // other has the same policy and did not ask: nothing is deleted there.
    let other = format!("{host}/api/repos/other");
    ok_env(&write_env(), &["repo", "init", &other]);
    for n in 1..=3 {
        snapshot(&other, &src, &format!("nightly-{n}"), Some("nightly"));
    }
    put_policy(&other, "nightly", NIGHTLY, now_ms());
    // A folder that is no repository is passed over.
    put_object(
        &format!("{host}/api/repos/stray"),
        "notes.txt",
        b"hi".to_vec(),
    );
    std::thread::sleep(Duration::from_secs(3));

    // Health is computed on request, before any cron run.
    let before = health(&host);
    assert_eq!(before["status"], "yellow", "{before}");
    assert_eq!(before["watchdog_last_run_millis"], Value::Null, "{before}");
    let listed: Vec<&str> = before["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["other", "prod"], "{before}");
    let p = repository(&before, "prod");
    assert_eq!(p["status"], "yellow");
    assert_eq!(p["watchdog"], Value::Null);
    let nightly = policy(p, "nightly");
    assert_eq!(nightly["healthy"], true, "{nightly}");
    assert_eq!(nightly["unhealthy_if_no_snapshot_within"], "1h");
    assert_eq!(nightly["last_success"]["snapshot_name"], "nightly-4");
    let stale = policy(p, "stale");
    assert_eq!(stale["healthy"], false, "{stale}");
    assert_eq!(stale["status"], "yellow");
    assert_eq!(stale["last_success"]["snapshot_name"], "stale-1");
    assert_eq!(stale["unhealthy_if_no_snapshot_within_millis"], 2000);
    let ghost = policy(p, "ghost");
    assert_eq!(ghost["healthy"], false, "{ghost}");
    assert_eq!(ghost["last_success"], Value::Null);
    assert_eq!(repository(&before, "other")["status"], "green");

    // What the CLI plans for prod's nightly, without a node.
    let policy_file = t.path().join("nightly.json");
    write(&policy_file, NIGHTLY.as_bytes());
    let plan: Value = serde_json::from_str(&ok_env(
        &write_env(),
        &[
            "retention",
            "plan",
            &prod,
            "--policy",
            s(&policy_file),
            "--json",
        ],
    ))
    .unwrap();
    let planned: BTreeSet<String> = plan["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["action"] == "delete")
        .map(|x| x["snapshot"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        planned,
        BTreeSet::from(["nightly-1".to_string(), "nightly-2".to_string()])
    );
    let prod_before = names(&prod);
    let other_before = names(&other);

    let started = now_ms();
    run_cron(&host);

    // Exactly the planned snapshots are gone; stale keeps its only
    // (newest SUCCESS) snapshot although max_count is 1 and it is
    // unhealthy; the manual snapshot and the other repository are
    // untouched.
    let prod_after = names(&prod);
    let gone: BTreeSet<String> = prod_before.difference(&prod_after).cloned().collect();
    assert_eq!(gone, planned, "left: {prod_after:?}");
    assert!(prod_after.contains("stale-1") && prod_after.contains("manual"));
    assert_eq!(names(&other), other_before);

    let after = health(&host);
    let last_run = after["watchdog_last_run_millis"].as_i64().unwrap();
    assert!(last_run >= started - 1000, "{after}");
    let p = repository(&after, "prod");
    let watchdog = &p["watchdog"];
    assert_eq!(watchdog["cron"], CRON, "{watchdog}");
    assert_eq!(watchdog["retention_enabled"], true);
    assert_eq!(watchdog["status"], "yellow");
    let runs = watchdog["retention"].as_array().unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r["policy"].as_str().unwrap()).collect();
    assert_eq!(ids, ["nightly", "stale"], "{watchdog}");
    let deleted: BTreeSet<String> = runs[0]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    assert_eq!(deleted, planned);
    assert_eq!(runs[1]["deleted"].as_array().unwrap().len(), 0);
    assert_eq!(policy(p, "nightly")["healthy"], true);
    let o = repository(&after, "other");
    assert_eq!(o["watchdog"]["retention_enabled"], false);
    assert_eq!(o["watchdog"]["retention"], serde_json::json!([]));

    // A second run finds nothing more to delete.
    run_cron(&host);
    assert_eq!(names(&prod), prod_after);

    // The repository is sound, and a node's cleanup (here the CLI's)
    // removes the data the edge left behind.
    ok_env(&write_env(), &["repo", "check", &prod, "--read-data"]);
    ok_env(&write_env(), &["repo", "cleanup", &prod, "--grace", "0s"]);
    ok_env(&write_env(), &["repo", "check", &prod, "--read-data"]);
}
