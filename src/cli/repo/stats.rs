//! `snapkeep repo stats`: sizes, counts and the dedup ratio of a repository.

use serde_json::json;

use crate::cli::args::RepoArgs;
use crate::cli::context::Ctx;
use crate::cli::render::{bytes, print_json};
use crate::native::error::Result;
use crate::native::inspect::stats;

pub fn run(ctx: &Ctx, a: RepoArgs) -> Result<()> {
    let repo = ctx.open(&a.repo)?;
    let s = stats(&repo)?;
    if a.json {
        let mut v = serde_json::to_value(&s).unwrap();
        v["requests"] = json!(repo.requests.stats());
        print_json(&v);
    } else {
        let patches = match s.patch_blobs {
            0 => String::new(),
            n => format!(" ({n} stored as patches)"),
        };
        ctx.say(format!(
            "repository {}\n  generation     {}\n  snapshots      {}\n  logical bytes  {}\n  stored bytes   {}\n  dedup ratio    {:.2}x\n  packs          {} ({})\n  blobs          {}{}\n  index files    {}",
            s.location, s.generation, s.snapshots, bytes(s.logical_bytes), bytes(s.stored_bytes),
            s.dedup_ratio, s.packs, bytes(s.pack_bytes), s.blobs, patches, s.index_files
        ));
    }
    Ok(())
}
