//! `snapkeep repo init`: create a repository with its chunker and compression.

use serde_json::json;

use crate::cli::args::{CompressionArg, InitArgs};
use crate::cli::context::Ctx;
use crate::cli::render::print_json;
use crate::core::chunker::ChunkerParams;
use crate::core::chunking::Chunking;
use crate::core::crypto::slot::Argon2Params;
use crate::core::format::codec::Compression;
use crate::core::format::config::{RepoConfig, PAGE_GROUP_RANGE};
use crate::native::clock::now_millis;
use crate::native::error::{Error, Result};
use crate::native::location::Location;
use crate::native::password::{new_password, PASSWORD_ENV};
use crate::native::repo::Repo;

pub fn run(ctx: &Ctx, a: InitArgs) -> Result<()> {
    let mut config = config(&a)?;
    // restic's option: a repository that `snapshot copy` shares data with.
    if let Some(from) = &a.copy_chunker_params_from {
        let other = ctx.open(from)?.config;
        config.chunker = other.chunker;
        // A repository from before chunking modes cuts every file by content.
        config.chunking = Some(other.chunking.unwrap_or(Chunking::Cdc));
        config.page_group = Some(other.cutting().page_group);
        config.chunking_rules = other.chunking_rules;
    }
    let location = ctx.location(&a.repo)?;
    if let (Location::Local(path), false) = (&location, a.force) {
        refuse_occupied_folder(path)?;
    }
    let repo = if a.encryption {
        let password = new_password(None, PASSWORD_ENV, "password")?;
        Repo::init_encrypted(&location, config, &password, Argon2Params::DEFAULT)?
    } else {
        Repo::init(&location, config)?
    };
    let encrypted = repo.sealing().is_encrypted();
    if a.json {
        print_json(&json!({"acknowledged": true, "encrypted": encrypted, "config": repo.config}));
    } else {
        ctx.say(format!(
            "initialised {}repository {} ({})",
            if encrypted { "encrypted " } else { "" },
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
    if !PAGE_GROUP_RANGE.contains(&a.page_group) {
        return Err(Error::Usage(format!(
            "--page-group {} is outside 4KiB..=8MiB",
            a.page_group
        )));
    }
    config.chunking = Some(a.chunking);
    config.page_group = Some(a.page_group);
    config.chunking_rules = a.chunking_rules.clone();
    config.compression = match a.compression {
        CompressionArg::Zstd => Compression::Zstd,
        CompressionArg::None => Compression::None,
    };
    Ok(config)
}

/// A repository shares its folder with nothing else (borg refuses too):
/// cleanup would see others' files among its own, and a mistyped path
/// would scatter repository objects through someone's data. An existing
/// repository is left to `init`, which names it.
fn refuse_occupied_folder(path: &std::path::Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(path) else {
        return Ok(()); // new, or init reports what is wrong with it
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() || names.iter().any(|n| n == "config") {
        return Ok(());
    }
    names.sort();
    Err(Error::Usage(format!(
        "{} already holds {} other file(s) (e.g. {}): give a new or empty folder, or --force",
        path.display(),
        names.len(),
        names[0]
    )))
}
