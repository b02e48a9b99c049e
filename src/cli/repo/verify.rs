//! `snapkeep repo verify`: prove the storage can write, read, list and delete.

use serde_json::json;

use crate::cli::args::RepoArgs;
use crate::cli::context::Ctx;
use crate::cli::render::print_json;
use crate::native::error::Result;
use crate::native::maintenance::verify;

pub fn run(ctx: &Ctx, a: RepoArgs) -> Result<()> {
    let repo = ctx.open(&a.repo)?;
    let took = verify(&repo)?;
    if a.json {
        print_json(&json!({"verified": true, "millis": took.as_millis() as u64}));
    } else {
        ctx.say(format!(
            "{}: write, read, list and delete work ({} ms)",
            repo.store.location(),
            took.as_millis()
        ));
    }
    Ok(())
}
