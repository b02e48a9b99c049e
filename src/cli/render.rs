//! Output: Elasticsearch-shaped JSON where a shape exists, short text otherwise.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::core::manifest::{IndexStats, Manifest, SnapshotSummary};

pub fn iso_time(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
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

pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON values serialize")
    );
}

pub fn manifest_text(m: &Manifest) -> String {
    let t = m.totals();
    let mut out = format!(
        "snapshot {} ({})\n  state      {}\n  started    {}\n  duration   {} ms\n  files      {} ({} read, {} unchanged)\n  size       {}\n  new data   {} ({} stored)\n",
        m.snapshot,
        m.uuid,
        m.state.as_str(),
        iso_time(m.start_time_in_millis),
        m.end_time_in_millis - m.start_time_in_millis,
        t.files,
        t.files_read,
        t.files - t.files_read,
        bytes(t.size_in_bytes),
        bytes(t.new_bytes),
        bytes(t.new_stored_bytes),
    );
    out.push_str("  indices:\n");
    for (name, s) in &m.indices {
        out.push_str(&format!(
            "    {name:<24} {:>8} files {:>12}  new {:>12}\n",
            s.files,
            bytes(s.size_in_bytes),
            bytes(s.new_bytes)
        ));
    }
    if let Some(g) = &m.global_state {
        out.push_str(&format!(
            "  global state: {} files, {}\n",
            g.files,
            bytes(g.size_in_bytes)
        ));
    }
    for (k, v) in &m.metadata {
        out.push_str(&format!("  metadata {k} = {v}\n"));
    }
    if !m.failures.is_empty() {
        out.push_str(&format!("  {} file(s) left out:\n", m.failures.len()));
        for f in &m.failures {
            out.push_str(&format!("    {}/{}: {}\n", f.index, f.path, f.reason));
        }
    }
    out
}
