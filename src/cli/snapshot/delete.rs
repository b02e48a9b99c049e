//! `snapkeep snapshot delete`: delete snapshots and the data only they used.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::json;

use crate::cli::args::DeleteArgs;
use crate::cli::context::Ctx;
use crate::cli::render::{bytes, print_json};
use crate::core::policy::delete::{select_for_delete, DeleteSelectionError};
use crate::native::delete::{delete_snapshots, preview_delete, DeleteOutcome};
use crate::native::error::{Error, Result};
use crate::native::repo::Repo;

pub fn run(ctx: &Ctx, a: DeleteArgs) -> Result<()> {
    let repo = ctx.open(&a.repo)?;
    // Elasticsearch's comma lists, as well as separate arguments.
    let patterns: Vec<String> = a
        .names
        .iter()
        .flat_map(|n| n.split(','))
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    if patterns.is_empty() {
        return Err(Error::Usage("no snapshot names given".into()));
    }
    if a.dry_run {
        let out = preview_delete(&repo, &patterns)?;
        report(ctx, &a, &out, true);
        return Ok(());
    }
    if !a.yes {
        confirm_deleting_everything(&repo, &a.repo, &patterns)?;
    }
    let out = delete_snapshots(&repo, &patterns)?;
    report(ctx, &a, &out, false);
    Ok(())
}

/// Patterns that select every snapshot of the repository delete it all: a
/// person confirms on a terminal; a script must say `--yes`.
fn confirm_deleting_everything(repo: &Repo, location: &str, patterns: &[String]) -> Result<()> {
    if !patterns.iter().any(|p| p.contains('*')) {
        return Ok(());
    }
    let root = repo.root()?;
    let selected = select_for_delete(&root.snapshots, patterns)
        .map_err(|DeleteSelectionError::Missing(name)| Error::SnapshotMissing(name))?;
    if selected.len() < root.snapshots.len() {
        return Ok(());
    }
    let what = format!(
        "this deletes every snapshot of {location} ({})",
        root.snapshots.len()
    );
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(format!(
            "{what}; run again with --yes to do it"
        )));
    }
    eprint!("{what}. Delete them all? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::Usage(format!("no answer: {e}")))?;
    match answer.trim() {
        "y" | "Y" | "yes" => Ok(()),
        _ => Err(Error::Usage("nothing deleted".into())),
    }
}

fn report(ctx: &Ctx, a: &DeleteArgs, out: &DeleteOutcome, dry_run: bool) {
    if a.json {
        let mut v = serde_json::to_value(out).unwrap();
        v["acknowledged"] = json!(!dry_run);
        if dry_run {
            v["dry_run"] = json!(true);
            if let Some(o) = v.as_object_mut() {
                o.remove("packs_written");
                o.remove("deferred_to_cleanup");
            }
        }
        print_json(&v);
        return;
    }
    if dry_run {
        ctx.say(format!(
            "would delete {}; would free {} ({} packs deleted, {} repacked)",
            out.deleted.join(", "),
            bytes(out.bytes_freed),
            out.packs_deleted,
            out.packs_repacked,
        ));
        return;
    }
    ctx.say(format!(
        "deleted {}; freed {} ({} packs deleted, {} repacked)",
        out.deleted.join(", "),
        bytes(out.bytes_freed),
        out.packs_deleted,
        out.packs_repacked,
    ));
    if out.deferred_to_cleanup {
        ctx.say(
            "snapshots are running: unreferenced packs are left for `snapkeep repo cleanup`".into(),
        );
    }
}
