//! `GET /<index>` and `HEAD /<index>` through real HTTP: clients ask
//! whether an index exists before restoring over it or deleting it.

mod common;

use common::node::{start, Dirs};
use common::write;
use serde_json::json;

#[test]
fn indices_are_described_and_a_missing_one_is_index_not_found() {
    let dirs = Dirs::new();
    write(&dirs.data().join("logs/part-1"), b"one");
    write(&dirs.data().join("users/u"), b"two");
    let node = start(&dirs, &[]);

    let logs = node.get("/logs");
    assert_eq!(logs.status, 200, "{}", logs.text());
    assert_eq!(
        logs.json(),
        json!({"logs": {"aliases": {}, "mappings": {}, "settings": {"index": {
            "number_of_shards": "1", "number_of_replicas": "0", "provided_name": "logs"}}}})
    );
    let both = node.get("/*?flat_settings=true").json();
    assert_eq!(both["users"]["settings"]["index.provided_name"], "users");
    assert_eq!(both.as_object().unwrap().len(), 2, "{both}");

    let missing = node.get("/nope");
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(missing.json()["error"]["type"], "index_not_found_exception");
    assert_eq!(missing.json()["error"]["index"], "nope");
    let skipped = node.get("/nope,logs?ignore_unavailable=true").json();
    assert_eq!(skipped.as_object().unwrap().len(), 1, "{skipped}");

    assert_eq!(node.call("HEAD", "/logs", &[], None).status, 200);
    let head = node.call("HEAD", "/nope", &[], None);
    assert_eq!(head.status, 404);
    assert!(head.body.is_empty());

    assert_eq!(node.send("POST", "/logs/_close", "").status, 200);
    let closed = node.get("/logs").json();
    assert_eq!(
        closed["logs"]["settings"]["index"]["verified_before_close"],
        "true"
    );
    let unknown = node.get("/logs?pretty_please=1");
    assert_eq!(unknown.status, 400, "{}", unknown.text());
}
