//! `snapkeep materialize`: a writable mount's folder (the snapshot plus
//! the changes made through the mount) as a plain local folder.

use std::path::PathBuf;

use clap::Args;

use super::context::Ctx;
use super::render::{bytes, print_json};
use crate::native::error::Result;
use crate::native::mount::materialize::{materialize, MaterializeOptions};
use crate::native::progress::ProgressMode;
use crate::native::restore::RestoreOptions;

/// `snapkeep materialize --help`.
pub const LONG_ABOUT: &str =
    "Turn what a writable mount (`mount --writable --upper DIR`) showed into a plain local \
    folder, once the mount is stopped.\n\n\
    A block layer (the default kind) holds the whole tree: the blocks its files still owe \
    the snapshot are filled, taking every chunk the mount's cache holds instead of fetching \
    it, and the tree is copied into --target (which must be empty, or --overwrite empties \
    it). The layer then owes nothing, and still works for the next writable mount.\n\n\
    An overlayfs layer (`--writable-layer overlayfs`): the snapshot is restored into \
    --target, taking every chunk the mount's cache holds (as `restore --cache`), then the \
    changes kept in DIR are laid over it: new and changed files, folders and links replace \
    what the snapshot had, deleted paths (overlayfs whiteouts) are removed, and folders \
    deleted and made again through the mount (opaque folders) replace the snapshot's whole. \
    The layer's folder is only read. A layer holding overlayfs redirects or metadata-only \
    copies (made by another overlay mount; snapkeep's turns both off) is refused before \
    anything is written. Needs root to read the layer's overlayfs attributes.\n\n\
    Give the same --index options as the mount: with exactly one, the mount showed that \
    index's content at its root, and the changes go over --target/INDEX; otherwise over \
    --target.";

#[derive(Debug, Args)]
pub struct MaterializeArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// The snapshot the writable mount showed.
    pub snapshot: String,
    /// Folder to write into (index folders are created inside it, as by restore).
    #[arg(long)]
    pub target: PathBuf,
    /// The writable mount's --upper folder.
    #[arg(long, value_name = "DIR")]
    pub upper: PathBuf,
    /// The mount's --index options (repeatable; default: every index).
    #[arg(long = "index", value_name = "NAME")]
    pub indices: Vec<String>,
    /// The mount's chunk cache folder [default: the mounts' default cache of the
    /// repository, when it exists].
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache: Option<PathBuf>,
    /// Fetch every chunk from the repository.
    #[arg(long)]
    pub no_cache: bool,
    /// Write into existing index folders (as `restore --overwrite`).
    #[arg(long)]
    pub overwrite: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, a: MaterializeArgs) -> Result<()> {
    let repo = ctx.open(&a.repo)?;
    let selection = if a.indices.is_empty() {
        None
    } else {
        Some(a.indices.join(","))
    };
    let opts = MaterializeOptions {
        restore: RestoreOptions {
            snapshot: a.snapshot.clone(),
            target: a.target.clone(),
            selection: crate::cli::context::selection(selection.as_deref())?,
            overwrite: a.overwrite,
            cache: super::restore::cache_dir(a.cache.as_ref(), a.no_cache, &repo)?,
            progress: if ctx.quiet || a.json {
                ProgressMode::Quiet
            } else {
                ProgressMode::Bar
            },
            ..Default::default()
        },
        upper: a.upper.clone(),
        indices: a.indices.clone(),
        single_index: (a.indices.len() == 1).then(|| a.indices[0].clone()),
    };
    let done = materialize(&repo, &opts)?;
    if a.json {
        print_json(&serde_json::json!({ "materialized": done }));
        return Ok(());
    }
    let l = &done.layer;
    let restore_notes = done.restore.iter().flat_map(|r| &r.notes);
    for note in restore_notes.chain(&l.notes) {
        eprintln!("note: {note}");
    }
    let first = match &done.restore {
        Some(r) => format!(
            "restored {} files ({}, {} of it from the chunk cache), then ",
            r.files,
            bytes(r.bytes),
            bytes(r.cache.as_ref().map_or(0, |c| c.bytes))
        ),
        None => format!(
            "filled {} the layer's files still owed the snapshot, then copied ",
            bytes(l.filled_bytes)
        ),
    };
    ctx.say(format!(
        "materialized [{}] into {}: {first}the writable layer: {} files, {} folders, {} links, \
         {} deletions, {} folders replaced",
        a.snapshot,
        a.target.display(),
        l.files,
        l.dirs,
        l.symlinks,
        l.deleted,
        l.replaced_dirs
    ));
    Ok(())
}
