//! Elasticsearch's JSON shapes for snapshots, shared by the CLI's `--json`
//! output and the edge API, so both answer alike.

use serde_json::{json, Map, Value};

use crate::core::format::manifest::{IndexStats, Manifest, SnapshotSummary};
use crate::core::format::tree::{NodeType, Tree};
use crate::core::plan::restore::RestorePlan;
use crate::core::policy::listing::Page;

/// `2026-11-25T12:08:05.556Z` for milliseconds since the Unix epoch (times
/// before it are shown as the epoch).
pub fn iso_time(ms: i64) -> String {
    let ms = ms.max(0);
    let (secs, millis) = (ms / 1000, ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn stats_json(s: &IndexStats) -> Value {
    json!({
        "files": s.files,
        "dirs": s.dirs,
        "size_in_bytes": s.size_in_bytes,
        "new_bytes": s.new_bytes,
        "new_stored_bytes": s.new_stored_bytes,
        "files_read": s.files_read,
    })
}

/// The snapshot object of Elasticsearch's snapshot APIs, from a summary.
pub fn summary_json(s: &SnapshotSummary) -> Value {
    json!({
        "snapshot": s.snapshot,
        "uuid": s.uuid,
        "version": "1",
        "indices": s.indices,
        "include_global_state": s.include_global_state,
        "state": s.state.as_str(),
        "start_time": iso_time(s.start_time_in_millis),
        "start_time_in_millis": s.start_time_in_millis,
        "end_time": iso_time(s.end_time_in_millis),
        "end_time_in_millis": s.end_time_in_millis,
        "duration_in_millis": s.duration_in_millis(),
        "stats": {
            "files": s.files,
            "size_in_bytes": s.size_in_bytes,
            "new_bytes": s.new_bytes,
            "new_stored_bytes": s.new_stored_bytes,
        },
        "failure_count": s.failures,
        "data_streams": [],
        "feature_states": [],
    })
}

/// The full snapshot object, with per-index details, metadata and failures.
pub fn manifest_json(m: &Manifest) -> Value {
    let mut v = summary_json(&m.summary());
    let obj = v.as_object_mut().unwrap();
    let details: Map<String, Value> = m
        .indices
        .iter()
        .map(|(n, s)| (n.clone(), stats_json(s)))
        .collect();
    obj.insert("index_details".into(), Value::Object(details));
    if let Some(g) = &m.global_state {
        obj.insert("global_state_details".into(), stats_json(g));
    }
    obj.insert("metadata".into(), json!(m.metadata));
    // Elasticsearch counts shards; an index is snapkeep's unit, and one
    // with left-out files (a PARTIAL snapshot) counts as failed.
    let failed: std::collections::BTreeSet<&str> = m
        .failures
        .iter()
        .map(|f| f.index.as_str())
        .filter(|i| m.indices.contains_key(*i))
        .collect();
    obj.insert(
        "shards".into(),
        json!({
            "total": m.indices.len(),
            "failed": failed.len(),
            "successful": m.indices.len() - failed.len(),
        }),
    );
    obj.insert(
        "failures".into(),
        Value::Array(
            m.failures
                .iter()
                .map(|f| json!({"index": f.index, "path": f.path, "reason": f.reason}))
                .collect(),
        ),
    );
    v
}

/// A page of `GET _snapshot/REPO/*`: snapshots, total, remaining, and the
/// cursor of the next page.
pub fn page_json(page: &Page) -> Value {
    let mut v = json!({
        "snapshots": page.snapshots.iter().map(summary_json).collect::<Vec<_>>(),
        "total": page.total,
        "remaining": page.remaining,
    });
    if let Some(n) = &page.next {
        v["next"] = json!(n);
    }
    v
}

/// A restore plan's summary: what a restore would fetch, reuse and write.
pub fn plan_summary_json(snapshot: &str, plan: &RestorePlan) -> Value {
    let mut v = json!({
        "snapshot": snapshot,
        "dry_run": true,
        "indices": plan.indices.iter().map(|(f, t)| json!({"from": f, "to": t})).collect::<Vec<_>>(),
        "global_state": plan.global_state,
        "summary": plan.summary,
        "conflicts": plan.conflicts,
    });
    // What an overwriting restore removes, by name (only when it does).
    if !plan.deletes.is_empty() {
        v["deletes"] = json!(plan.deletes);
    }
    v
}

/// One folder level: name, type, size, mode (octal), mtime, and the
/// symlink target or number of chunks.
pub fn tree_entries_json(tree: &Tree) -> Vec<Value> {
    tree.nodes
        .iter()
        .map(|n| {
            let mut e = json!({
                "name": n.name,
                "type": n.kind,
                "size": n.size,
                "mode": format!("{:o}", n.mode),
                "mtime": iso_time(n.mtime_ns.div_euclid(1_000_000)),
                "mtime_ns": n.mtime_ns,
            });
            if let Some(t) = n.target() {
                e["target"] = json!(t);
            }
            if n.kind == NodeType::File {
                e["chunks"] = json!(n.chunks.len());
            }
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(1_764_072_485_556), "2025-11-25T12:08:05.556Z");
        assert_eq!(iso_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso_time(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(iso_time(-5), "1970-01-01T00:00:00.000Z");
    }
}
