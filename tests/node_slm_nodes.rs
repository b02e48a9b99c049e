//! Several node processes holding one lifecycle policy on one repository,
//! on a local folder and on S3 (moto): each slot is run by one of them,
//! through claims in the repository and the slot fence at the root commit,
//! while nodes are killed with SIGKILL and restarted and one node's clock
//! runs two minutes behind. The repository is the only coordinator.
//! Counts come from the repository (the CLI reads it).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::node::{start_with, Node};
use common::s;
use common::servers::Server;
use serde_json::{json, Value};

/// How long the policy runs: one-second slots, so at least 60 of them.
const WINDOW: Duration = Duration::from_secs(64);
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
        let mut args = vec!["--config", s(&config), "--slm-minimum-interval", "1s"];
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

    fn cli(&self, args: &[&str]) -> Value {
        let mut all: Vec<&str> = args.to_vec();
        all.insert(2, &self.backend.location);
        for o in &self.backend.cli_options {
            all.extend(["--storage-option", o]);
        }
        all.push("--json");
        serde_json::from_str(&common::ok_env(&self.backend.env, &all)).unwrap()
    }

    /// Every stored snapshot's slot (its manifest's `metadata.slm_slot`).
    fn slots(&self) -> BTreeMap<String, i64> {
        let listed = self.cli(&["snapshot", "list", "--size", "10000"]);
        let mut out = BTreeMap::new();
        for snap in listed["snapshots"].as_array().unwrap() {
            let name = snap["snapshot"].as_str().unwrap();
            let got = self.cli(&["snapshot", "get", name]);
            let meta: &Value = &got["snapshots"][0]["metadata"];
            assert_eq!(meta["policy"], "tick", "{got}");
            let slot = meta["slm_slot"].as_str().expect("a run records its slot");
            out.insert(name.to_string(), slot.parse().unwrap());
        }
        out
    }
}

fn setup(node: &Node, backend: &Backend) {
    let r = node.send("PUT", "/_snapshot/r", &backend.settings.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let policy = json!({"name": "<tick-{now/d}>", "schedule": "1s", "repository": "r",
        "missed": "skip", "overlap": "skip"});
    let r = node.send("PUT", "/_slm/policy/tick", &policy.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Three nodes, one policy of one-second slots for [`WINDOW`]; every 4 s
/// one node (in turn) is killed with SIGKILL and started again 1.5 s
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
    let began = Instant::now();
    let mut round = 0;
    while began.elapsed() < WINDOW {
        std::thread::sleep(Duration::from_secs(4));
        let victim = round % 3;
        round += 1;
        if let Some(mut node) = nodes[victim].take() {
            node.child.kill().unwrap();
            node.child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(1500));
        nodes[victim] = Some(cluster.start(victim));
    }
    let window = began.elapsed().as_secs() as usize;
    for n in nodes.iter().flatten() {
        assert_eq!(n.send("POST", "/_slm/stop", "").status, 200);
    }
    // Runs started before the stop end (or die with their node) meanwhile.
    std::thread::sleep(Duration::from_secs(5));
    drop(nodes);

    let by_name = cluster.slots();
    let mut seen: BTreeMap<i64, &str> = BTreeMap::new();
    for (name, slot) in &by_name {
        if let Some(first) = seen.insert(*slot, name) {
            panic!("slot {slot} was committed twice: {first} and {name}");
        }
    }
    eprintln!(
        "{}: {} slots committed once each in a {window} s window",
        cluster.backend.location,
        by_name.len()
    );
    // One schedule: every node anchors the interval where the repository's
    // policy record says, so all slot ids share one phase of the second.
    let phases: BTreeSet<i64> = seen.keys().map(|s| s % 1000).collect();
    assert_eq!(phases.len(), 1, "slots of several anchors: {seen:?}");
    assert!(
        by_name.len() <= window + 6,
        "{} runs in {window} s",
        by_name.len()
    );
    // Slots overlapping a run, or lost with a node killed mid-run, are
    // skipped (`missed`/`overlap: skip`), never doubled. On a quiet
    // machine nearly every slot gets its run (61 and 62 of 64 here); the
    // bound leaves room for a loaded CI machine, where runs take longer.
    assert!(by_name.len() * 2 >= window, "{by_name:?}");
    // Exits non-zero on any problem.
    cluster.cli(&["repo", "check", "--read-data"]);
}

#[test]
fn three_nodes_on_a_local_folder_run_each_slot_once_through_kills() {
    soak(local);
}

#[test]
fn three_nodes_on_s3_run_each_slot_once_through_kills() {
    soak(s3);
}
