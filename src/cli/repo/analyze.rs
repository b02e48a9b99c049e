//! `snapkeep repo analyze`: probe the storage's semantics snapkeep relies on.

use serde_json::json;

use crate::cli::args::RepoArgs;
use crate::cli::context::Ctx;
use crate::cli::render::print_json;
use crate::native::error::{Error, Result};
use crate::native::maintenance::analyze;
use crate::storage::StorageError;

pub fn run(ctx: &Ctx, a: RepoArgs) -> Result<()> {
    let repo = ctx.open(&a.repo)?;
    if repo.settings.readonly {
        // Every probe writes; say why they would all fail.
        return Err(StorageError::ReadOnly {
            location: repo.store.location(),
        }
        .into());
    }
    let probes = analyze(&repo);
    let failed = probes.iter().filter(|p| !p.ok).count();
    if a.json {
        print_json(&json!({"location": repo.store.location(), "probes": probes, "failed": failed}));
    } else {
        for p in &probes {
            ctx.say(format!(
                "{:<22} {:<6} {:>6} ms  {}",
                p.name,
                if p.ok { "ok" } else { "FAILED" },
                p.millis,
                p.detail
            ));
        }
    }
    if failed > 0 {
        return Err(Error::UnsafeStorage { failed });
    }
    Ok(())
}
