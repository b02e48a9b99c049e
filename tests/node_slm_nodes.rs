//! Several node processes holding one lifecycle policy on one repository,
//! on a local folder and on S3 (moto): each slot is run by one of them,
//! through claims in the repository and the slot fence at the root commit,
//! while nodes are killed with SIGKILL and restarted and one node's clock
//! runs two minutes behind, and retention deletes all but the newest few
//! every 3 s. The repository is the only coordinator.
//! Counts come from the repository (the CLI reads it).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::node::{start_with, Node};
use common::s;
use common::servers::Server;
use serde_json::{json, Value};
use snapkeep::core::seeded::Rng;

/// How long the policy runs: one-second slots, so at least 60 of them.
const WINDOW: Duration = Duration::from_secs(64);
/// Retention's `max_count`.
const KEEP: usize = 8;
/// Retention runs every 3 s (`slm.retention_schedule`).
const RETENTION_EVERY: &str = "*/3 * * * * ?";
/// Node 2's clock, behind the others'.
const BEHIND_MS: &str = "-120000";

/// Where the repository lives, and what the nodes and the CLI need for it.
struct Backend {
    /// Registration settings.
    settings: Value,
    /// The CLI's location.
    location: String,
    env: Vec<(String, String)>,
    cli_options: Vec<String>,
    _server: Option<Server>,
}

fn local(root: &Path) -> Backend {
    let location = root.join("backups/r");
    Backend {
        settings: json!({"type": "fs", "settings": {"location": location}}),
        location: location.display().to_string(),
        env: Vec::new(),
        cli_options: Vec::new(),
        _server: None,
    }
}

fn s3(_root: &Path) -> Backend {
    let server = common::servers::moto();
    common::servers::create_bucket(server.port, "soak");
    let endpoint = format!("http://127.0.0.1:{}", server.port);
    Backend {
        settings: json!({"type": "s3", "settings": {"bucket": "soak", "base_path": "r",
            "endpoint": endpoint}}),
        location: "s3://soak/r".into(),
        env: common::servers::s3_env(server.port),
        cli_options: common::servers::s3_options(server.port)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        _server: Some(server),
    }
}

struct Cluster {
    root: tempfile::TempDir,
    backend: Backend,
}

impl Cluster {
    /// Node `i`: its own state folder, the shared data and `path.repo`.
    fn start(&self, i: usize) -> Node {
        let state = self.root.path().join(format!("state-{i}"));
        let config = self.root.path().join(format!("node-{i}.toml"));
        let text = format!(
            "data = {:?}\nstate = {:?}\npath.repo = [{:?}]\n",
            self.root.path().join("data"),
            state,
            self.root.path().join("backups")
        );
        std::fs::write(&config, text).unwrap();
        let mut args = vec![
            "--config",
            s(&config),
            "--slm-minimum-interval",
            "1s",
            "--slm-retention-schedule",
            RETENTION_EVERY,
        ];
        if i == 2 {
            args.extend(["--test-clock-offset", BEHIND_MS]);
        }
        let env: Vec<(&str, &str)> = self
            .backend
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        start_with(&common::node::Dirs::new(), &args, &env)
    }

    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all: Vec<&str> = args.to_vec();
        all.insert(2, &self.backend.location);
        for o in &self.backend.cli_options {
            all.extend(["--storage-option", o]);
        }
        all.push("--json");
        all
    }

    fn cli(&self, args: &[&str]) -> Value {
        serde_json::from_str(&common::ok_env(&self.backend.env, &self.args(args))).unwrap()
    }

    /// The CLI's answer, or `None` when it fails (a snapshot that
    /// retention deleted between a listing and a read).
    fn try_cli(&self, args: &[&str]) -> Option<Value> {
        let out = common::run_env(&self.backend.env, &self.args(args));
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    /// Adds every snapshot the repository holds now to `seen` (name →
    /// slot, from its manifest's `metadata.slm_slot`), and returns the
    /// names it holds.
    fn observe(&self, seen: &mut BTreeMap<String, i64>) -> BTreeSet<String> {
        let Some(listed) = self.try_cli(&["snapshot", "list", "--size", "10000"]) else {
            return BTreeSet::new();
        };
        let names: BTreeSet<String> = listed["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["snapshot"].as_str().unwrap().to_string())
            .collect();
        let new: Vec<&String> = names.iter().filter(|n| !seen.contains_key(*n)).collect();
        for name in new {
            let Some(got) = self.try_cli(&["snapshot", "get", name]) else {
                continue;
            };
            let meta: &Value = &got["snapshots"][0]["metadata"];
            assert_eq!(meta["policy"], "tick", "{got}");
            let slot = meta["slm_slot"].as_str().expect("a run records its slot");
            seen.insert(name.clone(), slot.parse().unwrap());
        }
        names
    }

    /// Observes the repository about every 300 ms for `d`.
    fn watch(&self, d: Duration, seen: &mut BTreeMap<String, i64>) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.observe(seen);
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn setup(node: &Node, backend: &Backend) {
    let r = node.send("PUT", "/_snapshot/r", &backend.settings.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let policy = json!({"name": "<tick-{now/d}>", "schedule": "1s", "repository": "r",
        "missed": "skip", "overlap": "skip", "retention": {"max_count": KEEP}});
    let r = node.send("PUT", "/_slm/policy/tick", &policy.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Three nodes, one policy of one-second slots for [`WINDOW`]; every 2 to
/// 6 s a random node is killed with SIGKILL and started again 0.5 to 3 s
/// later, so nodes 0 and 1 (true clocks) are never down together.
fn soak(backend: impl FnOnce(&Path) -> Backend) {
    let root = tempfile::tempdir().unwrap();
    let backend = backend(root.path());
    common::write(&root.path().join("data/a/data"), b"index a");
    std::fs::create_dir_all(root.path().join("backups")).unwrap();
    let cluster = Cluster { root, backend };
    let mut nodes: Vec<Option<Node>> = (0..3).map(|i| Some(cluster.start(i))).collect();
    for n in nodes.iter().flatten() {
        setup(n, &cluster.backend);
    }
    // Random kills (seed printed, and fixed by SOAK_SEED to replay): one
    // node at a time, so a true-clock node is always up.
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::process::id() as u64 ^ now_ms() as u64);
    eprintln!("soak seed {seed} (SOAK_SEED={seed} replays the kills)");
    let mut rng = Rng::new(seed);
    let began = Instant::now();
    // Every snapshot ever committed: retention deletes all but the newest
    // KEEP within seconds, and each lives for at least KEEP slots, so an
    // observation every 300 ms sees every one.
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    while began.elapsed() < WINDOW {
        cluster.watch(Duration::from_millis(2000 + rng.below(4000)), &mut seen);
        let victim = rng.below(3) as usize;
        if let Some(mut node) = nodes[victim].take() {
            node.child.kill().unwrap();
            node.child.wait().unwrap();
        }
        cluster.watch(Duration::from_millis(500 + rng.below(2500)), &mut seen);
        nodes[victim] = Some(cluster.start(victim));
    }
    let window = began.elapsed().as_secs() as usize;
    for n in nodes.iter().flatten() {
        assert_eq!(n.send("POST", "/_slm/stop", "").status, 200);
    }
    // Runs started before the stop end (or die with their node) meanwhile.
    cluster.watch(Duration::from_secs(5), &mut seen);
    let decided = decided_slots(&nodes);
    drop(nodes);
    let left = cluster.observe(&mut seen);

    let mut by_slot: BTreeMap<i64, &str> = BTreeMap::new();
    for (name, slot) in &seen {
        if let Some(first) = by_slot.insert(*slot, name) {
            panic!("slot {slot} was committed twice: {first} and {name}");
        }
    }
    eprintln!(
        "{}: {} slots committed once each in a {window} s window, {} left after retention",
        cluster.backend.location,
        seen.len(),
        left.len()
    );
    // One schedule: every node anchors the interval where the repository's
    // policy record says, so all slot ids share one phase of the second.
    let phases: BTreeSet<i64> = by_slot.keys().map(|s| s % 1000).collect();
    assert_eq!(phases.len(), 1, "slots of several anchors: {by_slot:?}");
    assert!(
        seen.len() <= window + 6,
        "{} runs in {window} s",
        seen.len()
    );
    // Slots overlapping a run, or lost with a node killed mid-run, are
    // skipped (`missed`/`overlap: skip`), never doubled. On a quiet
    // machine nearly every slot gets its run (61 and 62 of 64 here); the
    // bound leaves room for a loaded CI machine, where runs take longer.
    assert!(seen.len() * 2 >= window, "{seen:?}");
    // Nothing missed beyond the rules: every slot between the first and
    // the last committed one was committed, or some node recorded what it
    // decided for it (a skip under `missed`/`overlap`, a slot another
    // node ran or committed first, a failed run). A kill mid-run leaves
    // its slot to another node's takeover, which records one of those.
    let (first, last) = (
        *by_slot.keys().next().unwrap(),
        *by_slot.keys().last().unwrap(),
    );
    let gaps: Vec<i64> = (0..)
        .map(|i| first + i * 1000)
        .take_while(|s| *s <= last)
        .filter(|s| !by_slot.contains_key(s))
        .collect();
    eprintln!(
        "{} slot(s) not run in between, each decided by a rule",
        gaps.len()
    );
    let silent: Vec<&i64> = gaps.iter().filter(|s| !decided.contains(s)).collect();
    assert!(
        silent.is_empty(),
        "slots neither run nor decided: {silent:?}"
    );
    // Retention ran through the kills and deleted only what its plan
    // (`max_count`) gives up: the newest KEEP slots ever committed are all
    // still there, and the rest went.
    let newest: Vec<&str> = by_slot.values().rev().take(KEEP).copied().collect();
    for name in &newest {
        assert!(
            left.contains(*name),
            "retention deleted [{name}], one of the newest {KEEP}: left {left:?}"
        );
    }
    assert!(
        left.len() <= KEEP + 8,
        "retention kept {} of {}: {left:?}",
        left.len(),
        seen.len()
    );
    // Exits non-zero on any problem.
    cluster.cli(&["repo", "check", "--read-data"]);
}

/// Every slot some node's history records a decision for: a run (its
/// slot), or skipped slots (the newest, and the `count` before it that
/// the reason names).
fn decided_slots(nodes: &[Option<Node>]) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    for n in nodes.iter().flatten() {
        let h = n.get("/_slm/policy/tick/_history").json();
        for e in h["history"].as_array().unwrap() {
            let Some(slot) = e["slot"].as_i64() else {
                continue;
            };
            let reason = e["reason"].as_str().unwrap_or("");
            let count = if reason.starts_with("missed ") || reason.contains("due while a run") {
                reason
                    .split(|c: char| !c.is_ascii_digit())
                    .find(|w| !w.is_empty())
                    .and_then(|w| w.parse::<i64>().ok())
                    .unwrap_or(1)
            } else {
                1
            };
            out.extend((0..count).map(|i| slot - i * 1000));
        }
    }
    out
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[test]
fn three_nodes_on_a_local_folder_run_each_slot_once_through_kills() {
    soak(local);
}

#[test]
fn three_nodes_on_s3_run_each_slot_once_through_kills() {
    soak(s3);
}
