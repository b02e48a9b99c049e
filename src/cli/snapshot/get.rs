//! `snapkeep snapshot get`: one snapshot's manifest.

use serde_json::json;

use crate::cli::args::GetArgs;
use crate::cli::context::Ctx;
use crate::cli::render::{manifest_json, manifest_text, print_json};
use crate::native::error::{Error, Result};

pub fn run(ctx: &Ctx, a: GetArgs) -> Result<()> {
    let repo = ctx.open(&a.repo)?;
    let root = repo.root()?;
    let s = root
        .snapshot(&a.name)
        .ok_or_else(|| Error::SnapshotMissing(a.name.clone()))?;
    let m = repo.manifest(s)?;
    if a.json {
        print_json(&json!({"snapshots": [manifest_json(&m)], "total": 1, "remaining": 0}));
    } else {
        print!("{}", manifest_text(&m));
    }
    Ok(())
}
