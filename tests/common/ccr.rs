//! Helpers for cross-cluster replication tests between two node
//! processes: the leader's token, a remote, a follow, the follower's
//! stats, and waiting for two folders to hold the same tree.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::node::{start, start_with, Dirs, Node};

/// The token the leader nodes of these tests accept.
pub const TOKEN: &str = "leader-token-c41e";

/// Every file and folder under `root` (relative paths), with file bytes.
pub fn tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                pending.push(p);
                out.insert(rel, None);
            } else {
                out.insert(rel, Some(fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// Waits until folders `l` and `f` hold the same tree; `node`'s stats
/// (over `auth`, when the node wants a token) explain a failure.
pub fn same_in_time(node: &Node, auth: &[(&str, &str)], l: &Path, f: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while tree(l) != tree(f) {
        if Instant::now() > deadline {
            let names = |t: BTreeMap<String, Option<Vec<u8>>>| t.into_keys().collect::<Vec<_>>();
            panic!(
                "no convergence: leader {:?} follower {:?}; {}",
                names(tree(l)),
                names(tree(f)),
                node.call("GET", "/_ccr/stats", auth, None).text()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The one shard of follower `index` in `GET /<index>/_ccr/stats`.
/// Waits for what an apply leaves beside follower index `index` in the
/// data folder `data` after it switched: nothing, or the next apply's stage
/// linked ahead from the live folder (each file the live one's inode, no
/// restore's staging folder in it). A killed apply's stage is never left.
pub fn stage_is_linked_or_absent(data: &Path, index: &str) {
    wait_for_stage(data, index, false);
}

/// [`stage_is_linked_or_absent`], with the stage required: a follower
/// node links it ahead after each apply.
pub fn stage_is_linked(data: &Path, index: &str) {
    wait_for_stage(data, index, true);
}

fn wait_for_stage(data: &Path, index: &str, required: bool) {
    let (live, stage) = (data.join(index), data.join(format!(".ccr-next-{index}")));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let entries: Vec<String> = fs::read_dir(&stage)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let linked = entries == [index.to_string()] && inodes(&stage.join(index)) == inodes(&live);
        if linked || (!required && !stage.exists()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the stage beside [{index}] is not the live folder's linked copy: {entries:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Each path under `root` with its inode (0 for what is not a file).
fn inodes(root: &Path) -> BTreeMap<String, u64> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut walk = vec![root.to_path_buf()];
    while let Some(dir) = walk.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = fs::symlink_metadata(e.path()) else {
                continue;
            };
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            if meta.is_dir() {
                walk.push(e.path());
            }
            out.insert(rel, if meta.is_file() { meta.ino() } else { 0 });
        }
    }
    out
}

pub fn shard_stats(node: &Node, auth: &[(&str, &str)], index: &str) -> Value {
    let r = node.call("GET", &format!("/{index}/_ccr/stats"), auth, None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["indices"][0]["shards"][0].clone()
}

/// Bytes the follower read from checkpoint repositories so far.
pub fn bytes_read(node: &Node, auth: &[(&str, &str)], index: &str) -> u64 {
    let s = shard_stats(node, auth, index);
    s["bytes_read"]
        .as_u64()
        .unwrap_or_else(|| panic!("no bytes_read: {s}"))
}

/// Makes `leader` the remote `leader` of `follower`, with [`TOKEN`].
pub fn add_remote(follower: &Node, leader: &Node) {
    let addr = format!("127.0.0.1:{}", leader.port);
    let r = follower.send(
        "PUT",
        "/_cluster/settings",
        &json!({"persistent": {"cluster": {"remote": {
            "leader": {"mode": "proxy", "proxy_address": addr, "credentials": TOKEN},
        }}}})
        .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// `PUT /<index>/_ccr/follow` with `body`, expected to succeed.
pub fn follow(node: &Node, auth: &[(&str, &str)], index: &str, body: Value) {
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend_from_slice(auth);
    let r = node.call(
        "PUT",
        &format!("/{index}/_ccr/follow"),
        &headers,
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// `POST <path>` with no body, expected to succeed.
pub fn post_ok(node: &Node, path: &str) {
    let r = node.send("POST", path, "");
    assert_eq!(r.status, 200, "{path}: {}", r.text());
}

/// Starts a leader node (with [`TOKEN`]) on `ld` and a follower node on
/// `fd`, makes follower index `copy` follow leader index `logs` (already
/// written) until it holds it, then pauses it, past any poll the pause
/// cut short (up to `read_poll_timeout`, after which the leader takes no
/// checkpoint). Returns (leader, follower).
pub fn followed_then_paused(ld: &Dirs, fd: &Dirs) -> (Node, Node) {
    let leader = start_with(ld, &[], &[("SNAPKEEP_NODE_TOKEN", TOKEN)]);
    let follower = start(fd, &[]);
    add_remote(&follower, &leader);
    follow(
        &follower,
        &[],
        "copy",
        json!({"remote_cluster": "leader", "leader_index": "logs", "read_poll_timeout": "1s"}),
    );
    same_in_time(
        &follower,
        &[],
        &ld.data().join("logs"),
        &fd.data().join("copy"),
    );
    post_ok(&follower, "/copy/_ccr/pause_follow");
    std::thread::sleep(Duration::from_millis(2500));
    (leader, follower)
}
