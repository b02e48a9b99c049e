//! `snapkeep repo init`: create a repository with its chunker and compression.

use serde_json::json;

use crate::cli::args::{CompressionArg, InitArgs};
use crate::cli::context::Ctx;
use crate::cli::render::print_json;
use crate::core::chunker::ChunkerParams;
use crate::core::format::codec::Compression;
use crate::core::format::config::RepoConfig;
use crate::native::clock::now_millis;
use crate::native::error::{Error, Result};
use crate::native::repo::Repo;

pub fn run(ctx: &Ctx, a: InitArgs) -> Result<()> {
    let config = config(&a)?;
    let repo = Repo::init(&ctx.location(&a.repo)?, config)?;
    if a.json {
        print_json(&json!({"acknowledged": true, "config": repo.config}));
    } else {
        ctx.say(format!(
            "initialised repository {} ({})",
            repo.store.location(),
            repo.config.id
        ));
    }
    Ok(())
}

/// A fresh repository's configuration from the command's options.
fn config(a: &InitArgs) -> Result<RepoConfig> {
    let chunker = ChunkerParams {
        min: a.chunk_min,
        avg: a.chunk_avg,
        max: a.chunk_max,
        normalization: a.chunk_normalization,
    };
    chunker
        .validate()
        .map_err(|e| Error::Usage(e.to_string()))?;
    let mut config = RepoConfig::new(uuid::Uuid::new_v4().to_string(), now_millis());
    config.chunker = chunker;
    config.compression = match a.compression {
        CompressionArg::Zstd => Compression::Zstd,
        CompressionArg::None => Compression::None,
    };
    Ok(config)
}
