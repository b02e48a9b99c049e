//! `snapkeep retention plan`: what a lifecycle policy's retention would
//! keep and delete in a repository, with reasons, changing nothing. The
//! decisions are `core::slm::retention`'s, the same the node applies.

use std::path::Path;

use jiff::Timestamp;
use serde_json::{json, Value};

use crate::cli::args::{RetentionCommand, RetentionPlanArgs};
use crate::cli::context::Ctx;
use crate::cli::render::{iso_time, print_json};
use crate::core::es::slm_policy::SlmPolicy;
use crate::core::format::manifest::{SnapshotSummary, POLICY_METADATA_KEY};
use crate::core::slm::retention::{retention_plan, Candidate, Plan};
use crate::core::slm::watchdog::{self, needs_manifest};
use crate::native::clock::now_millis;
use crate::native::error::{Error, Result};
use crate::native::repo::Repo;
use crate::native::tz;

pub fn run(ctx: &Ctx, c: RetentionCommand) -> Result<()> {
    match c {
        RetentionCommand::Plan(a) => plan(ctx, a),
    }
}

fn plan(ctx: &Ctx, a: RetentionPlanArgs) -> Result<()> {
    let id = policy_id(&a)?;
    let now_ms = match &a.now {
        Some(t) => parse_instant(t)?,
        None => now_millis(),
    };
    let policy = read_policy(&a.policy, &id, now_ms)?;
    let bad = |reason: String| Error::BadPolicy {
        policy: id.clone(),
        reason,
    };
    let rules = policy
        .retention
        .clone()
        .ok_or_else(|| bad("has no retention section".into()))?;
    let zone = tz::zone(&policy.timezone)
        .ok_or_else(|| bad(format!("unknown time zone [{}]", policy.timezone)))?;
    let repo = ctx.open(&a.repo)?;
    let root = repo.root()?;
    let candidates = root
        .snapshots
        .iter()
        .map(|s| candidate(&repo, s))
        .collect::<Result<Vec<_>>>()?;
    let plan = retention_plan(&candidates, &id, &rules, &zone, now_ms);
    if a.json {
        print_json(&plan_json(&id, &plan, &candidates));
    } else {
        print_table(&id, &plan, &candidates);
    }
    Ok(())
}

fn policy_id(a: &RetentionPlanArgs) -> Result<String> {
    let stem = a.policy.file_stem().and_then(|s| s.to_str());
    a.id.clone()
        .or_else(|| stem.map(str::to_string))
        .ok_or_else(|| Error::Usage("name the policy with --id".into()))
}

fn parse_instant(text: &str) -> Result<i64> {
    text.parse::<Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| Error::Usage(format!("--now {text}: {e}")))
}

fn read_policy(path: &Path, id: &str, now_ms: i64) -> Result<SlmPolicy> {
    let bytes = std::fs::read(path).map_err(|e| Error::BadPolicy {
        policy: id.to_string(),
        reason: format!("cannot read {}: {e}", path.display()),
    })?;
    SlmPolicy::parse(id, &bytes, now_ms).map_err(|e| Error::BadPolicy {
        policy: id.to_string(),
        reason: e.reason,
    })
}

/// A root summary as retention sees it (`core::slm::watchdog::candidate`),
/// its policy read from the manifest where the root lost it.
fn candidate(repo: &Repo, s: &SnapshotSummary) -> Result<Candidate> {
    let from_manifest = if needs_manifest(s) {
        repo.manifest(s)?.metadata.get(POLICY_METADATA_KEY).cloned()
    } else {
        None
    };
    Ok(watchdog::candidate(s, from_manifest))
}

/// Each snapshot's start, looked up once per row rather than by a scan of
/// every candidate (a repository may hold 10,000).
fn starts(candidates: &[Candidate]) -> std::collections::HashMap<&str, i64> {
    candidates
        .iter()
        .map(|c| (c.name.as_str(), c.start_ms))
        .collect()
}

fn plan_json(id: &str, plan: &Plan, candidates: &[Candidate]) -> Value {
    let start = starts(candidates);
    let snapshots: Vec<Value> = plan
        .decisions
        .iter()
        .map(|d| {
            json!({
                "snapshot": d.name,
                "start_time": iso_time(start.get(d.name.as_str()).copied().unwrap_or(0)),
                "action": if d.keep { "keep" } else { "delete" },
                "reason": d.reason,
            })
        })
        .collect();
    json!({
        "policy": id,
        "now": iso_time(plan.now_ms),
        "keep": plan.decisions.iter().filter(|d| d.keep).count(),
        "delete": plan.deletions().count(),
        "future_dated": plan.future_dated,
        "snapshots": snapshots,
    })
}

/// The plan as a table; printed even with `--quiet`, as it is the answer.
fn print_table(id: &str, plan: &Plan, candidates: &[Candidate]) {
    let start = starts(candidates);
    println!(
        "{:<32} {:<24} {:<7} reason",
        "snapshot", "start_time", "action"
    );
    for d in &plan.decisions {
        println!(
            "{:<32} {:<24} {:<7} {}",
            d.name,
            iso_time(start.get(d.name.as_str()).copied().unwrap_or(0)),
            if d.keep { "keep" } else { "delete" },
            d.reason
        );
    }
    let kept = plan.decisions.iter().filter(|d| d.keep).count();
    println!(
        "policy {id} as of {}: keep {kept}, delete {}",
        iso_time(plan.now_ms),
        plan.deletions().count()
    );
    if !plan.future_dated.is_empty() {
        println!(
            "warning: {} snapshot(s) dated in the future were kept and not counted: {}",
            plan.future_dated.len(),
            plan.future_dated.join(", ")
        );
    }
}
