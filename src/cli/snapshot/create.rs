//! `snapkeep snapshot create`: snapshot a data directory into a repository.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use crate::cli::args::CreateArgs;
use crate::cli::context::Ctx;
use crate::cli::render::{bytes, manifest_json, manifest_text, print_json};
use crate::core::format::manifest::SnapshotState;
use crate::core::policy::exclude::{patterns_of_file, Excludes};
use crate::native::backup::interrupted::Kept;
use crate::native::backup::status::SnapshotProgress;
use crate::native::backup::{create_snapshot, SnapshotOptions};
use crate::native::error::{Error, Result};
use crate::native::interrupt::StopOnSignals;
use crate::native::job::Abort;

pub fn run(ctx: &Ctx, a: CreateArgs) -> Result<()> {
    let repo = ctx.open(&a.repo)?;
    // The command's limit wins over the repository's; 0 means none.
    let up = a
        .max_snapshot_bytes_per_sec
        .or(repo.settings.max_snapshot_bytes_per_sec)
        .filter(|v| *v > 0);
    let repo = repo.with_limits(up, None);
    refuse_empty_source(&a.source)?;
    let json = a.json;
    let abort = Abort::new();
    let status = Arc::new(SnapshotProgress::new());
    let _signals = StopOnSignals::install(abort.clone(), "snapshot");
    let opts = SnapshotOptions {
        name: a.name,
        source: a.source,
        selection: crate::cli::context::selection(a.indices.as_deref())?,
        extra_indices: a.extra,
        include_global_state: !a.no_global_state,
        partial: a.partial,
        metadata: a.metadata.into_iter().collect::<BTreeMap<_, _>>(),
        progress: !json && !ctx.quiet,
        exclude: excludes(&a.exclude, &a.exclude_file)?,
        one_file_system: a.one_file_system,
        abort,
        keep_uploads_on_stop: true,
        status: Some(status.clone()),
        ..Default::default()
    };
    let out = match create_snapshot(&repo, &opts) {
        Err(e @ Error::Aborted(_)) => {
            report_stop(ctx, &opts.name, status.kept());
            return Err(e);
        }
        other => other?,
    };
    for path in out.skipped.iter().filter(|_| !ctx.quiet) {
        eprintln!(
            "note: {} was left out: it is a snapkeep repository",
            path.display()
        );
    }
    if json {
        let mut snap = manifest_json(&out.manifest);
        if !out.skipped.is_empty() {
            snap["skipped"] = json!(out.skipped);
        }
        snap["storage"] = json!({
            "packs_written": out.packs_written,
            "bytes_uploaded": out.bytes_uploaded,
            "requests": repo.requests.stats(),
        });
        print_json(&json!({"snapshot": snap}));
    } else {
        ctx.say(manifest_text(&out.manifest));
    }
    match out.manifest.failures.first() {
        Some(f) if out.manifest.state == SnapshotState::Partial => Err(Error::Partial {
            snapshot: out.manifest.snapshot.clone(),
            failures: out.manifest.failures.len(),
            first: format!("[{}] {}: {}", f.index, f.path, f.reason),
        }),
        _ => Ok(()),
    }
}

/// Says what a stopped snapshot left behind (the error line follows).
fn report_stop(ctx: &Ctx, name: &str, kept: Option<Kept>) {
    let kept = kept.unwrap_or_default();
    let detail = if kept.packs == 0 {
        "nothing was uploaded yet".to_string()
    } else if kept.listed {
        format!(
            "the {} pack(s) ({}) uploaded so far are kept: running the same command again uploads only the rest",
            kept.packs,
            bytes(kept.bytes)
        )
    } else {
        format!(
            "the {} pack(s) ({}) uploaded so far are left to `repo cleanup`",
            kept.packs,
            bytes(kept.bytes)
        )
    };
    if !ctx.quiet {
        eprintln!("stopped: snapshot [{name}] was not taken; {detail}");
    }
}

/// `--exclude` patterns and those of every `--exclude-file`.
fn excludes(patterns: &[String], files: &[std::path::PathBuf]) -> Result<Excludes> {
    let mut all = patterns.to_vec();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Error::Usage(format!("cannot read exclude file {}: {e}", file.display()))
        })?;
        all.extend(patterns_of_file(&text));
    }
    Excludes::new(&all).map_err(|e| Error::Usage(e.to_string()))
}

/// A source folder with nothing in it is a mistake in a cron job (a mount
/// that did not come up, say), not a snapshot of nothing.
fn refuse_empty_source(source: &std::path::Path) -> Result<()> {
    let Ok(mut entries) = std::fs::read_dir(source) else {
        return Ok(()); // the snapshot names what is wrong with it
    };
    if entries.next().is_none() {
        return Err(Error::Source {
            path: source.to_path_buf(),
            detail: "is empty: there is nothing to snapshot".into(),
        });
    }
    Ok(())
}
