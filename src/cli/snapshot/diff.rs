//! `snapkeep snapshot diff`: what changed between two snapshots.

use crate::cli::args::DiffArgs;
use crate::cli::context::Ctx;
use crate::cli::render::{bytes, print_json};
use crate::core::plan::diff::{Change, ChangeKind};
use crate::native::error::Result;
use crate::native::inspect::diff;

pub fn run(ctx: &Ctx, a: DiffArgs) -> Result<()> {
    let d = diff(&ctx.open(&a.repo)?, &a.from, &a.to)?;
    if a.json {
        print_json(&serde_json::to_value(&d).unwrap());
    } else {
        // The changes are the answer, printed even with `--quiet`.
        for c in &d.changes {
            println!("{}", change_line(c));
        }
        ctx.say(format!(
            "{} added, {} removed, {} modified, {} metadata-only",
            d.added, d.removed, d.modified, d.metadata
        ));
    }
    Ok(())
}

/// `M path  old -> new`: a mark for the kind of change, the path, the sizes.
fn change_line(c: &Change) -> String {
    let mark = match c.change {
        ChangeKind::Added => "+",
        ChangeKind::Removed => "-",
        ChangeKind::Modified => "M",
        ChangeKind::Metadata => "U",
    };
    let size = match (c.old_size, c.new_size) {
        (Some(o), Some(n)) if o != n => format!("  {} -> {}", bytes(o), bytes(n)),
        (_, Some(n)) | (Some(n), None) => format!("  {}", bytes(n)),
        _ => String::new(),
    };
    format!("{mark} {}{size}", c.path)
}
