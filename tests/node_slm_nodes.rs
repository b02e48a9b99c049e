//! Several node processes holding one lifecycle policy on one repository:
//! each slot is run by one of them, through claims in the repository and
//! the slot fence at the root commit, while nodes are killed with SIGKILL
//! and restarted and one node's clock runs behind. The repository is the
//! only coordinator. Counts come from the repository (the CLI reads it).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::node::{start, Node};
use common::{s, write};
use serde_json::{json, Value};

struct Cluster {
    root: tempfile::TempDir,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }
    fn backups(&self) -> PathBuf {
        self.root.path().join("backups")
    }
    fn location(&self) -> PathBuf {
        self.backups().join("r")
    }

    /// Node `i`: its own state folder, the shared data and `path.repo`.
    fn start(&self, i: usize, extra: &[&str]) -> Node {
        let dirs = common::node::Dirs::new();
        let state = self.root.path().join(format!("state-{i}"));
        let config = self.root.path().join(format!("node-{i}.toml"));
        let text = format!(
            "data = {:?}\nstate = {:?}\npath.repo = [{:?}]\n",
            self.data(),
            state,
            self.backups()
        );
        std::fs::write(&config, text).unwrap();
        let mut args = vec!["--config", s(&config), "--slm-minimum-interval", "1s"];
        args.extend(extra);
        start(&dirs, &args)
    }
}

fn setup(node: &Node, cluster: &Cluster) {
    let reg = json!({"type": "fs", "settings": {"location": cluster.location()}});
    let r = node.send("PUT", "/_snapshot/r", &reg.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let policy = json!({"name": "<tick-{now/d}>", "schedule": "1s", "repository": "r",
        "missed": "skip", "overlap": "skip"});
    let r = node.send("PUT", "/_slm/policy/tick", &policy.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Every stored snapshot's slot (from its manifest's metadata), by name.
fn slots(location: &Path) -> BTreeMap<String, i64> {
    let listed = common::json(&["snapshot", "list", s(location), "--size", "10000"]);
    let mut out = BTreeMap::new();
    for snap in listed["snapshots"].as_array().unwrap() {
        let name = snap["snapshot"].as_str().unwrap();
        let got = common::json(&["snapshot", "get", s(location), name]);
        let meta: &Value = &got["snapshots"][0]["metadata"];
        assert_eq!(meta["policy"], "tick", "{got}");
        let slot = meta["slm_slot"]
            .as_str()
            .expect("a scheduled run records its slot");
        out.insert(name.to_string(), slot.parse().unwrap());
    }
    out
}

#[test]
fn three_nodes_run_each_slot_once_through_kills_and_a_clock_behind() {
    let cluster = Cluster {
        root: tempfile::tempdir().unwrap(),
    };
    write(&cluster.data().join("a/data"), b"index a");
    std::fs::create_dir_all(cluster.backups()).unwrap();
    // Node 2's clock is 20 s behind: it computes the same slot ids, late.
    let extra: [&[&str]; 3] = [&[], &[], &["--test-clock-offset", "-20000"]];
    let mut nodes: Vec<Option<Node>> = (0..3).map(|i| Some(cluster.start(i, extra[i]))).collect();
    for n in nodes.iter().flatten() {
        setup(n, &cluster);
    }

    // 40 s of one-second slots; every 4 s one node (in turn) is killed
    // with SIGKILL and started again 1.5 s later. Nodes 0 and 1 are never
    // down together, so a node with a true clock always holds the policy.
    let began = Instant::now();
    let mut round = 0;
    while began.elapsed() < Duration::from_secs(40) {
        std::thread::sleep(Duration::from_secs(4));
        let victim = round % 3;
        round += 1;
        if let Some(mut node) = nodes[victim].take() {
            node.child.kill().unwrap();
            node.child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(1500));
        nodes[victim] = Some(cluster.start(victim, extra[victim]));
    }
    let window = began.elapsed();
    for n in nodes.iter().flatten() {
        assert_eq!(n.send("POST", "/_slm/stop", "").status, 200);
    }
    // Runs started before the stop finish (or are abandoned with their
    // node) within a few seconds.
    std::thread::sleep(Duration::from_secs(5));
    drop(nodes);

    let by_name = slots(&cluster.location());
    let mut seen: BTreeMap<i64, &str> = BTreeMap::new();
    for (name, slot) in &by_name {
        if let Some(first) = seen.insert(*slot, name) {
            panic!("slot {slot} was committed twice: {first} and {name}");
        }
    }
    let expected = window.as_secs() as usize;
    // One schedule: every node anchors the interval where the repository's
    // policy record says, so all slot ids fall on one phase of the second
    // and no second holds two runs.
    let phases: std::collections::BTreeSet<i64> = seen.keys().map(|s| s % 1000).collect();
    assert_eq!(phases.len(), 1, "slots of several anchors: {seen:?}");
    assert!(
        by_name.len() <= expected + 6,
        "{} runs in {expected} s",
        by_name.len()
    );
    // Most seconds of the window got their snapshot: slots overlapping a
    // run, or lost with a killed node mid-run, are skipped, never doubled.
    eprintln!(
        "{} slots committed once each in a {expected} s window",
        by_name.len()
    );
    assert!(
        by_name.len() * 2 >= expected,
        "{} snapshots in a {expected} s window: {by_name:?}",
        by_name.len()
    );
    common::ok(&["repo", "check", s(&cluster.location()), "--read-data"]);
}
