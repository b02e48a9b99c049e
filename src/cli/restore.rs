//! `snapkeep restore`: restore indices (and global state) from a snapshot,
//! or with `--dry-run` / `--plan-out` say what a restore would do.

use serde_json::json;

use super::args::RestoreArgs;
use super::context::Ctx;
use super::render::{bytes, print_json};
use crate::core::plan::restore::{PlanSummary, RestorePlan};
use crate::core::policy::include::PathFilter;
use crate::core::policy::selection::Rename;
use crate::native::error::{Error, Result};
use crate::native::progress::ProgressMode;
use crate::native::repo::Repo;
use crate::native::restore::{plan, restore, RestoreOptions, RestoreOutcome};

pub fn run(ctx: &Ctx, a: RestoreArgs) -> Result<()> {
    let mut opts = options(ctx, &a)?;
    let repo = ctx.open(&a.repo)?;
    opts.cache = cache_dir(a.cache.as_ref(), a.no_cache, &repo)?;
    // The command's limit wins over the repository's; 0 means none.
    let down = a
        .max_restore_bytes_per_sec
        .or(repo.settings.max_restore_bytes_per_sec)
        .filter(|v| *v > 0);
    let repo = repo.with_limits(None, down);
    if a.dry_run || a.plan_out.is_some() {
        let plan = plan(&repo, &opts)?.plan;
        if let Some(path) = &a.plan_out {
            let body = serde_json::to_vec_pretty(&plan).expect("plans serialize");
            std::fs::write(path, body).map_err(|e| Error::io(path, e))?;
        }
        if a.dry_run {
            return report_dry_run(ctx, &opts, &plan, a.json);
        }
    }
    let out = restore(&repo, &opts)?;
    if a.json {
        print_outcome_json(&repo, &out);
    } else {
        print_outcome_text(ctx, &out);
    }
    Ok(())
}

fn options(ctx: &Ctx, a: &RestoreArgs) -> Result<RestoreOptions> {
    let rename = match (&a.rename_pattern, &a.rename_replacement) {
        (Some(p), Some(r)) => Some(Rename::new(p, r)?),
        _ => None,
    };
    Ok(RestoreOptions {
        snapshot: a.snapshot.clone(),
        target: a.target.clone(),
        selection: crate::cli::context::selection(a.indices.as_deref())?,
        rename,
        include_global_state: a.include_global_state,
        include: include(&a.include)?,
        overwrite: a.overwrite,
        update_in_place: a.overwrite && !a.replace_files,
        // -q silences progress in every form, JSON events included.
        progress: if ctx.quiet {
            ProgressMode::Quiet
        } else if a.json {
            ProgressMode::Json
        } else {
            ProgressMode::Bar
        },
        concurrency: a.concurrency,
        ..Default::default()
    })
}

/// The chunk cache to take chunks from: `--cache` (which must exist), or
/// the mounts' default cache of the repository if there is one.
pub(super) fn cache_dir(
    cache: Option<&std::path::PathBuf>,
    no_cache: bool,
    repo: &Repo,
) -> Result<Option<std::path::PathBuf>> {
    if no_cache {
        return Ok(None);
    }
    match cache {
        Some(dir) if !dir.is_dir() => Err(Error::Usage(format!(
            "--cache {}: no such folder (give a mount's --cache folder)",
            dir.display()
        ))),
        Some(dir) => Ok(Some(dir.clone())),
        // The default is a help, never a failure: a folder this user
        // cannot list is left out.
        None => Ok(Some(super::mount::default_cache(&repo.config.id))
            .filter(|d| std::fs::read_dir(d).is_ok())),
    }
}

/// `--include`'s globs, checked before the repository is read.
fn include(patterns: &[String]) -> Result<Option<PathFilter>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    PathFilter::new(patterns)
        .map(Some)
        .map_err(|e| Error::Usage(e.to_string()))
}

/// Prints what the restore would do; fails if it would be refused.
fn report_dry_run(ctx: &Ctx, opts: &RestoreOptions, plan: &RestorePlan, json: bool) -> Result<()> {
    let s = &plan.summary;
    if json {
        print_json(&crate::repo::shapes::plan_summary_json(
            &opts.snapshot,
            plan,
        ));
    } else {
        ctx.say(format!(
            "restore of [{}] would write {} files ({}), {} folders and {} symlinks, fetching {} in {} range request(s) ({} blobs)",
            opts.snapshot, s.files, bytes(s.bytes), s.dirs, s.symlinks, bytes(s.bytes_to_fetch), s.requests, s.blobs
        ));
        if s.bytes_in_place > 0 || s.bytes_copied_locally > 0 {
            ctx.say(reuse_line(s));
        }
        if s.bytes_from_cache > 0 {
            ctx.say(format!(
                "  and would take {} ({} chunks) from the chunk cache",
                bytes(s.bytes_from_cache),
                s.blobs_from_cache
            ));
        }
        if !plan.deletes.is_empty() {
            ctx.say(format!(
                "  and would delete {} path(s) the snapshot does not have: {}",
                plan.deletes.len(),
                some_paths(&plan.deletes)
            ));
        }
        for c in &plan.conflicts {
            ctx.say(format!("  conflict: {}", serde_json::to_string(c).unwrap()));
        }
    }
    if !plan.conflicts.is_empty() {
        return Err(Error::RestoreConflicts {
            count: plan.conflicts.len(),
        });
    }
    Ok(())
}

/// What a plan over an existing target keeps: `  and would keep 1.2 GiB
/// already in place (990 file(s) complete, 2 updated in place) and copy
/// 3 MiB from other files there`.
fn reuse_line(s: &PlanSummary) -> String {
    let mut kept = vec![format!("{} file(s) complete", s.files_unchanged)];
    if s.files_updated_in_place > 0 {
        kept.push(format!("{} updated in place", s.files_updated_in_place));
    }
    let mut line = format!(
        "  and would keep {} already in place ({})",
        bytes(s.bytes_in_place),
        kept.join(", ")
    );
    if s.bytes_copied_locally > 0 {
        line.push_str(&format!(
            " and copy {} from other files there",
            bytes(s.bytes_copied_locally)
        ));
    }
    line
}

fn print_outcome_json(repo: &Repo, out: &RestoreOutcome) {
    print_json(&json!({"snapshot": {
        "snapshot": out.snapshot,
        "indices": out.indices.iter().map(|(_, t)| t).collect::<Vec<_>>(),
        "renamed": out.indices.iter().map(|(f, t)| json!({"from": f, "to": t})).collect::<Vec<_>>(),
        "global_state": out.global_state,
        "files": out.files, "dirs": out.dirs, "symlinks": out.symlinks, "size_in_bytes": out.bytes,
        "plan": out.plan, "requests": repo.requests.stats(), "notes": out.notes,
        "deleted": out.deleted, "cache": out.cache,
    }}));
}

fn print_outcome_text(ctx: &Ctx, out: &RestoreOutcome) {
    for note in &out.notes {
        eprintln!("note: {note}");
    }
    let names: Vec<String> = out
        .indices
        .iter()
        .map(|(f, t)| {
            if f == t {
                f.clone()
            } else {
                format!("{f} as {t}")
            }
        })
        .collect();
    ctx.say(format!(
        "restored {} from [{}]: {} files, {} dirs, {} symlinks, {}{}",
        names.join(", "),
        out.snapshot,
        out.files,
        out.dirs,
        out.symlinks,
        bytes(out.bytes),
        if out.global_state {
            " (with global state)"
        } else {
            ""
        }
    ));
    if out.plan.files_updated_in_place > 0 {
        ctx.say(format!(
            "updated {} changed file(s) in place: only their changed chunks were written",
            out.plan.files_updated_in_place
        ));
    }
    if let Some(c) = &out.cache {
        ctx.say(format!(
            "took {} ({} chunks) from the chunk cache{}{}",
            bytes(c.bytes),
            c.chunks,
            c.dir
                .as_ref()
                .map_or_else(String::new, |d| format!(" {}", d.display())),
            if c.refetched > 0 {
                format!("; {} missing or corrupt there were fetched", c.refetched)
            } else {
                String::new()
            }
        ));
    }
    if !out.deleted.is_empty() {
        ctx.say(format!(
            "deleted {} path(s) the snapshot does not have (--overwrite): {}",
            out.deleted.len(),
            some_paths(&out.deleted)
        ));
    }
}

/// The first few of `paths`, and how many more.
fn some_paths(paths: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = paths
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        text.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    text
}
