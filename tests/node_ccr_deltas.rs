//! Chunk deltas between two real node processes on 127.0.0.1: after a
//! pause, 64 KiB edits in the middle of files on the leader reach the
//! follower as about their own size (`bytes_read` in `_ccr/stats`), not
//! as the chunks around them; and the leader's `_ccr/deltas` endpoint
//! checks who asks and what.

mod common;

use std::fs;

use common::ccr::{bytes_read, followed_then_paused, post_ok, same_in_time, TOKEN};
use common::node::{start_with, Dirs};
use common::{noise, write};
use serde_json::json;

const EDIT: usize = 64 << 10;

#[test]
fn a_resume_after_edits_in_the_middle_reads_about_the_edits() {
    let (ld, fd) = (Dirs::new(), Dirs::new());
    let logs = ld.data().join("logs");
    // ~200 KiB files (one chunk each, as in bench/ccr.py) and 1 MiB ones.
    for i in 0..20u64 {
        write(&logs.join(format!("f{i:02}")), &noise(200 << 10, i));
    }
    for i in 0..3u64 {
        write(&logs.join(format!("big{i}")), &noise(1 << 20, 100 + i));
    }
    let (_leader, follower) = followed_then_paused(&ld, &fd);
    let copy = fd.data().join("copy");
    let before = bytes_read(&follower, &[], "copy");

    // The big files are edited below the chunker's minimum chunk size
    // (256 KiB), where no chunk boundary can move: an edit that moves one
    // sends more (see docs/ARCHITECTURE.md, chunk deltas).
    let mut edited = 0u64;
    let files = (0..20u64)
        .step_by(2)
        .map(|i| (format!("f{i:02}"), 80 << 10))
        .chain((0..3u64).map(|i| (format!("big{i}"), 100 << 10)));
    for (n, (name, at)) in files.enumerate() {
        let path = logs.join(name);
        let mut data = fs::read(&path).unwrap();
        data[at..at + EDIT].copy_from_slice(&noise(EDIT, 500 + n as u64));
        write(&path, &data);
        edited += EDIT as u64;
    }

    post_ok(&follower, "/copy/_ccr/resume_follow");
    same_in_time(&follower, &[], &logs, &copy);
    let read = bytes_read(&follower, &[], "copy") - before;
    let whole: u64 = 10 * (200 << 10) + 3 * (1 << 20);
    eprintln!(
        "resume: read {read} bytes for {edited} edited bytes in files of {whole} bytes ({:.3}x the edits)",
        read as f64 / edited as f64
    );
    assert!(read > 0);
    // Without deltas this is at least the 10 small files whole (2 MiB).
    assert!(
        read <= edited * 11 / 10 + (32 << 10),
        "read {read} > 1.1 x {edited} edited bytes"
    );
}

#[test]
fn the_delta_endpoint_wants_credentials_and_a_list_of_ids() {
    let ld = Dirs::new();
    write(&ld.data().join("logs/a"), b"a");
    let leader = start_with(&ld, &[], &[("SNAPKEEP_NODE_TOKEN", TOKEN)]);
    let id = "00".repeat(32);
    let asks = json!([{"id": id, "base": id}, {"id": id, "base": id}]).to_string();
    let bearer = format!("Bearer {TOKEN}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", bearer.as_str()),
    ];
    let call = |path: &str, headers: &[(&str, &str)], body: &str| {
        leader.call("POST", path, headers, Some(body.as_bytes()))
    };
    let (anonymous, authorized) = (&headers[..1], &headers[..]);

    let r = call("/logs/_ccr/deltas", anonymous, asks.as_str());
    assert_eq!(r.status, 401, "{}", r.text());
    let r = call("/nope/_ccr/deltas", authorized, asks.as_str());
    assert_eq!(r.status, 404, "{}", r.text());
    let r = call("/logs/_ccr/deltas", authorized, "{\"id\": 1}");
    assert_eq!(r.status, 400, "{}", r.text());
    let many = serde_json::to_string(&vec![json!({"id": id, "base": id}); 257]).unwrap();
    let r = call("/logs/_ccr/deltas", authorized, many.as_str());
    assert_eq!(r.status, 400, "{}", r.text());

    // Chunks the leader does not have (no checkpoint was even taken):
    // every ask is answered "no delta", in the batch framing.
    let r = call("/logs/_ccr/deltas", authorized, asks.as_str());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body, b"SKD1\x02\x00\x00\x00\x00\x00");
}
