//! `snapkeep snapshot copy`: snapshots into another repository, moving only
//! what it lacks; prints what moved per snapshot.

use serde_json::json;

use crate::cli::args::CopyArgs;
use crate::cli::context::{as_typed, Ctx};
use crate::cli::render::{bytes, print_json};
use crate::native::copy::{copy_snapshots, Copied};
use crate::native::error::{Error, Result};
use crate::native::password::FromUnlock;
use crate::native::repo::Repo;

pub fn run(ctx: &Ctx, a: CopyArgs) -> Result<()> {
    let names: Vec<String> = a
        .names
        .iter()
        .flat_map(|n| n.split(','))
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Err(Error::Usage("no snapshot names given".into()));
    }
    let from = FromUnlock::new(a.from_password_command, a.from_password_file)
        .map_err(|e| Error::Password(e.to_string()))?;
    let source = Repo::open_unlocked_by(&ctx.location(&a.source)?, &from)
        .map_err(|e| as_typed(e, &a.source))?;
    let destination = ctx.open(&a.destination)?;
    let copied = copy_snapshots(&source, &destination, &names)?;
    if a.json {
        let sum = |f: fn(&Copied) -> u64| copied.iter().map(f).sum::<u64>();
        print_json(&json!({
            "snapshots": copied,
            "copied": copied.iter().filter(|c| c.status == "copied").count(),
            "skipped": copied.iter().filter(|c| c.status == "skipped").count(),
            "blobs_moved": sum(|c| c.blobs_moved),
            "data_bytes_moved": sum(|c| c.data_bytes_moved),
            "tree_bytes_moved": sum(|c| c.tree_bytes_moved),
            "bytes_fetched": sum(|c| c.bytes_fetched),
            "bytes_uploaded": sum(|c| c.bytes_uploaded),
            "requests": {"source": source.requests.stats(), "destination": destination.requests.stats()},
        }));
        return Ok(());
    }
    for c in &copied {
        if c.status == "skipped" {
            ctx.say(format!(
                "skipped [{}]: the destination already holds it (uuid {})",
                c.snapshot, c.uuid
            ));
        } else {
            ctx.say(format!(
                "copied [{}]: moved {} blobs ({} of data, {} of trees; {} uploaded), {} blobs already there",
                c.snapshot,
                c.blobs_moved,
                bytes(c.data_bytes_moved),
                bytes(c.tree_bytes_moved),
                bytes(c.bytes_uploaded),
                c.blobs_present
            ));
        }
    }
    Ok(())
}
