//! A client snapkeep did not write: the OpenSearch Python client
//! (opensearch-py, installed by scripts/test.sh) drives a real node through
//! repository registration, snapshot create/get/status, a renamed restore
//! and delete (tests/clients/opensearch_client.py checks each answer); the
//! restored index must then be byte-identical to its source.

mod common;

use std::process::Command;

use common::node::{start, Dirs};
use common::{assert_same_tree, s, write};

#[test]
fn opensearch_py_snapshots_and_restores_through_the_node() {
    let dirs = Dirs::new();
    let config = dirs.config("[[auth.tokens]]\ntoken = \"manage-token\"\nrole = \"manage\"\n");
    let node = start(&dirs, &["--config", s(&config)]);
    for i in 0..8u8 {
        write(&dirs.data().join(format!("logs/seg-{i}")), &vec![i; 40_000]);
    }
    write(&dirs.data().join("logs/meta/state"), b"state");
    write(&dirs.data().join("users/u"), b"alice");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/opensearch_client.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("http://127.0.0.1:{}", node.port))
        .arg(dirs.backups().join("r"))
        .arg("manage-token")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "opensearch-py: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_tree(
        &dirs.data().join("logs"),
        &dirs.data().join("restored_logs"),
    );
}
