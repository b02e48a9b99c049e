//! `snapkeep repo check`: verify a repository's structure, optionally its data.

use crate::cli::args::CheckArgs;
use crate::cli::context::Ctx;
use crate::cli::render::{bytes, check_json, check_lines, print_json};
use crate::native::check::{check, CheckReport, ReadData};
use crate::native::error::{Error, Result};

pub fn run(ctx: &Ctx, a: CheckArgs) -> Result<()> {
    let read_data = match (a.read_data, a.read_data_subset) {
        (true, _) => ReadData::All,
        (false, Some(f)) => ReadData::Subset(f),
        (false, None) => ReadData::None,
    };
    let report = check(&ctx.open(&a.repo)?, read_data, !a.json && !ctx.quiet)?;
    if a.json {
        print_json(&check_json(&report));
    } else {
        print_text(ctx, &report, read_data);
    }
    if !report.is_ok() {
        return Err(Error::CheckFailed(report.problem_count()));
    }
    if !a.json {
        ctx.say("no problems found".into());
    }
    Ok(())
}

/// The summary on stdout; every problem and damaged blob on stderr.
fn print_text(ctx: &Ctx, report: &CheckReport, read_data: ReadData) {
    ctx.say(format!(
        "checked generation {}: {} snapshots, {} trees, {} blobs in {} packs{}",
        report.generation,
        report.snapshots,
        report.trees_checked,
        report.blobs,
        report.packs,
        if read_data != ReadData::None {
            format!(
                ", read {} in {} packs",
                bytes(report.bytes_read),
                report.packs_read
            )
        } else {
            String::new()
        }
    ));
    if report.unindexed_packs > 0 {
        ctx.say(format!(
            "  note: {} pack(s) are not referenced by the index (left by interrupted work)",
            report.unindexed_packs
        ));
    }
    for note in &report.notes {
        ctx.say(format!("  note: {}", note.detail));
    }
    for line in check_lines(report) {
        eprintln!("{line}");
    }
}
