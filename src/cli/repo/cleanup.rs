//! `snapkeep repo cleanup`: delete objects no snapshot references.

use crate::cli::args::CleanupArgs;
use crate::cli::context::Ctx;
use crate::cli::render::{bytes, print_json};
use crate::native::error::Result;
use crate::native::maintenance::cleanup;

pub fn run(ctx: &Ctx, a: CleanupArgs) -> Result<()> {
    let repo = ctx.open(&a.repo)?;
    let r = cleanup(&repo, a.grace, a.dry_run)?;
    if a.json {
        print_json(&serde_json::to_value(&r).unwrap());
    } else {
        let verb = if a.dry_run { "would delete" } else { "deleted" };
        ctx.say(format!(
            "{verb} {} unreferenced object(s), {}; kept {} younger than the grace period",
            r.objects,
            bytes(r.bytes),
            r.kept_young
        ));
    }
    Ok(())
}
