//! `snapkeep repo settings`: show, or change, the repository's settings.

use serde_json::json;

use crate::cli::args::SettingsArgs;
use crate::cli::context::Ctx;
use crate::cli::render::{bytes, print_json};
use crate::core::format::root::{RepoSettings, RootChange};
use crate::native::error::Result;
use crate::native::repo::Repo;

pub fn run(ctx: &Ctx, a: SettingsArgs) -> Result<()> {
    // Unguarded: a read-only repository must still be switchable back.
    let repo = Repo::open_unguarded(ctx.location(&a.repo)?.open(false)?)
        .map_err(|e| crate::cli::context::as_typed(e, &a.repo))?;
    let settings = changed(repo.settings.clone(), &a);
    if changes_anything(&a) {
        repo.commit(&RootChange::Settings(settings.clone()))?;
    }
    if a.json {
        print_json(&json!({"settings": settings}));
    } else {
        let rate =
            |v: Option<u64>| v.map_or("unlimited".to_string(), |b| format!("{}/s", bytes(b)));
        ctx.say(format!(
            "readonly                     {}\nmax_snapshot_bytes_per_sec   {}\nmax_restore_bytes_per_sec    {}",
            settings.readonly,
            rate(settings.max_snapshot_bytes_per_sec),
            rate(settings.max_restore_bytes_per_sec)
        ));
    }
    Ok(())
}

fn changes_anything(a: &SettingsArgs) -> bool {
    a.readonly.is_some()
        || a.max_snapshot_bytes_per_sec.is_some()
        || a.max_restore_bytes_per_sec.is_some()
}

/// The settings with the command's changes applied; a rate of 0 means no limit.
fn changed(mut settings: RepoSettings, a: &SettingsArgs) -> RepoSettings {
    let limit = |v: u64| (v > 0).then_some(v);
    if let Some(r) = a.readonly {
        settings.readonly = r;
    }
    if let Some(v) = a.max_snapshot_bytes_per_sec {
        settings.max_snapshot_bytes_per_sec = limit(v);
    }
    if let Some(v) = a.max_restore_bytes_per_sec {
        settings.max_restore_bytes_per_sec = limit(v);
    }
    settings
}
