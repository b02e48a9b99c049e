//! `snapkeep snapshot get`: one snapshot's manifest, or, while another
//! writer creates it, that it is IN_PROGRESS.

use serde_json::{json, Value};

use crate::cli::args::GetArgs;
use crate::cli::context::Ctx;
use crate::cli::render::{iso_time, manifest_json, manifest_text, print_json};
use crate::native::clock::now_millis;
use crate::native::error::{Error, Result};
use crate::native::inflight::{scan, Marker};

pub fn run(ctx: &Ctx, a: GetArgs) -> Result<()> {
    let repo = ctx.open(&a.repo)?;
    let root = repo.root()?;
    let Some(s) = root.snapshot(&a.name) else {
        let markers = scan(&repo, now_millis())?;
        let running = markers.running_snapshots(&|n| root.snapshot(n).is_some());
        let m = running
            .into_iter()
            .find(|m| m.snapshot == a.name)
            .ok_or_else(|| Error::SnapshotMissing(a.name.clone()))?;
        if a.json {
            print_json(&json!({"snapshots": [in_progress_json(m)], "total": 1, "remaining": 0}));
        } else {
            println!(
                "snapshot {} is IN_PROGRESS: started {}, last heartbeat {}",
                m.snapshot,
                iso_time(m.started_ms),
                iso_time(m.heartbeat_ms)
            );
        }
        return Ok(());
    };
    let m = repo.manifest(s)?;
    if a.json {
        print_json(&json!({"snapshots": [manifest_json(&m)], "total": 1, "remaining": 0}));
    } else {
        print!("{}", manifest_text(&m));
    }
    Ok(())
}

/// A snapshot another writer is creating, in the shape Elasticsearch lists
/// a running one.
pub fn in_progress_json(m: &Marker) -> Value {
    json!({
        "snapshot": m.snapshot,
        "uuid": m.uuid,
        "state": "IN_PROGRESS",
        "start_time": iso_time(m.started_ms),
        "start_time_in_millis": m.started_ms,
        "heartbeat_in_millis": m.heartbeat_ms,
    })
}
