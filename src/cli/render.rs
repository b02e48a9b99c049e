//! Output: Elasticsearch-shaped JSON where a shape exists, short text otherwise.

use serde_json::{json, Value};

use crate::cli::one_line;
use crate::core::elapsed::clock_text;
use crate::core::format::manifest::Manifest;
use crate::native::check::CheckReport;
pub use crate::repo::shapes::{iso_time, manifest_json};

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

/// Rows as left-aligned columns two spaces apart, trailing blanks cut.
pub fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON values serialize")
    );
    JSON_PRINTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether this process has printed a JSON document: a command that failed
/// after printing its own (a dry run's plan with its conflicts) gets no
/// second one, so stdout always parses as one document.
static JSON_PRINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn json_printed() -> bool {
    JSON_PRINTED.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn manifest_text(m: &Manifest) -> String {
    let t = m.totals();
    let mut out = format!(
        "snapshot {} ({})\n  state      {}\n  started    {}\n  duration   {}\n  files      {} ({} read, {} unchanged)\n  size       {}\n  new data   {} logical, {} stored\n",
        m.snapshot,
        m.uuid,
        m.state.as_str(),
        iso_time(m.start_time_in_millis),
        clock_text((m.end_time_in_millis - m.start_time_in_millis).max(0) as u64),
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
            "    {name:<24} {:>8} files {:>12}  new logical {:>12}\n",
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

/// `repo check`'s findings as text: a `problem:` line per problem, then a
/// `damaged:` line per file a bad blob affects.
pub fn check_lines(report: &CheckReport) -> Vec<String> {
    let problems = report
        .problem_lines()
        .into_iter()
        .map(|p| format!("problem: {}", one_line(&p)));
    let damaged = report.damaged().into_iter().map(|d| {
        format!(
            "damaged: snapshot [{}] index [{}] {}: blob {} {}",
            d.snapshot,
            d.index,
            if d.path.is_empty() { "(root)" } else { &d.path },
            &d.blob[..8],
            d.problem
        )
    });
    problems.chain(damaged).collect()
}

/// `repo check --json`: the report's counts and `findings`, the typed list
/// (kind, object, snapshots, files, detail), plus `problems` and `damaged`,
/// the same findings as the text lines and per-file records it always had.
pub fn check_json(report: &CheckReport) -> Value {
    let mut v = serde_json::to_value(report).expect("a check report serializes");
    v["problems"] = json!(report.problem_lines());
    v["damaged"] = json!(report.damaged());
    v
}
