//! `snapkeep snapshot delete`: delete snapshots and the data only they used.

use serde_json::json;

use crate::cli::args::DeleteArgs;
use crate::cli::context::Ctx;
use crate::cli::render::{bytes, print_json};
use crate::native::delete::delete_snapshots;
use crate::native::error::Result;

pub fn run(ctx: &Ctx, a: DeleteArgs) -> Result<()> {
    let out = delete_snapshots(&ctx.open(&a.repo)?, &a.names)?;
    if a.json {
        let mut v = serde_json::to_value(&out).unwrap();
        v["acknowledged"] = json!(true);
        print_json(&v);
    } else {
        ctx.say(format!(
            "deleted {}; freed {} ({} packs deleted, {} repacked)",
            out.deleted.join(", "),
            bytes(out.bytes_freed),
            out.packs_deleted,
            out.packs_repacked,
        ));
        if out.deferred_to_cleanup {
            ctx.say(
                "snapshots are running: unreferenced packs are left for `snapkeep repo cleanup`"
                    .into(),
            );
        }
    }
    Ok(())
}
