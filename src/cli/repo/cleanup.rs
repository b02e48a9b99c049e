//! `snapkeep repo cleanup`: delete objects no snapshot references.

use crate::cli::args::CleanupArgs;
use crate::cli::context::Ctx;
use crate::cli::render::{bytes, print_json};
use crate::core::elapsed::clock_text;
use crate::native::error::Result;
use crate::native::maintenance::cleanup;
use crate::repo::cleanup::KeptCounts;

/// Why unreferenced objects stay, naming each rule that kept some.
fn kept_text(k: &KeptCounts, grace: std::time::Duration) -> String {
    let grace = clock_text(grace.as_millis() as u64);
    let parts: Vec<String> = [
        (
            k.grace_period,
            format!("younger than the grace period ({grace})"),
        ),
        (
            k.live_operation,
            "written since a running snapshot or delete started (its in-flight marker is live)"
                .into(),
        ),
        (k.after_newest_root, "written after the newest root".into()),
        (k.recent_roots, "recent root generations".into()),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, why)| format!("{n} {why}"))
    .collect();
    if parts.is_empty() {
        "kept none".into()
    } else {
        format!("kept {}", parts.join(", "))
    }
}

pub fn run(ctx: &Ctx, a: CleanupArgs) -> Result<()> {
    let repo = ctx.open(&a.repo)?;
    let r = cleanup(&repo, a.grace, a.dry_run)?;
    if a.json {
        print_json(&serde_json::to_value(&r).unwrap());
    } else {
        let verb = if a.dry_run { "would delete" } else { "deleted" };
        ctx.say(format!(
            "{verb} {} unreferenced object(s), {}; {}",
            r.objects,
            bytes(r.bytes),
            kept_text(&r.kept, a.grace)
        ));
    }
    Ok(())
}
