//! `snapkeep mount`: a snapshot as a read-only folder, read lazily through
//! a bounded cache, until unmounted or interrupted.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::context::Ctx;
use super::mount_daemon;
use super::render::{bytes, print_json};
use crate::native::error::Result;
use crate::native::mount::{mount, MountOptions, MountStorage, WritableLayer};

/// `snapkeep mount --help`: on the command's variant in `args.rs`, since
/// clap shows a variant's own doc line otherwise.
pub const LONG_ABOUT: &str =
    "Mount a snapshot as a read-only FUSE filesystem. The selected indices appear as \
    folders (with exactly one --index, its content is the mount point itself), with the \
    snapshot's modes, owners, mtimes, sizes, symlinks, hard links and extended attributes.\n\n\
    Reads are lazy: a read fetches only the chunks that cover it (sequential reads fetch ahead), \
    verifies each chunk's hash and keeps it in a disk cache shared by every mount of the \
    repository, bounded by --cache-size (plus at most one pack while files are open).\n\n\
    While the mount lives the snapshot is pinned: `snapshot delete`, retention and cleanup \
    refuse to remove it and name the mount. The pin is refreshed every minute; a killed \
    mount's pin stops counting 10 minutes after its last refresh.\n\n\
    With --writable --upper DIR the mount takes writes, so a service can start on the \
    backup at once: the first writable mount lays the snapshot out in DIR with every file \
    sparse, and a file's blocks are copied from the snapshot when first read or written \
    (--writable-layer overlayfs instead copies a file whole when it is first opened for \
    writing). Changes stay in DIR and carry over to the next writable mount of the same \
    snapshot; `snapkeep materialize` turns them into a plain folder.\n\n\
    Runs in the foreground until the folder is unmounted (`umount DIR` or `fusermount3 -u DIR`) \
    or the process gets SIGINT/SIGTERM, then unmounts and prints the cache's figures. With \
    --daemon it runs in the background instead: the command returns once the mount is live \
    (printing the background process's pid and its log, where the figures go at the end), or \
    fails with the mount's own error and exit status; `umount DIR` or `kill PID` ends it. The \
    background process has no terminal: an encrypted repository's password must come from \
    --password-command, SNAPKEEP_PASSWORD_FILE or SNAPKEEP_PASSWORD. Needs \
    /dev/fuse; as a user other than root, Debian's fuse3 package (fusermount3).";

#[derive(Debug, Args)]
pub struct MountArgs {
    /// Repository location (see REPO in `snapkeep --help`).
    pub repo: String,
    /// The snapshot to mount.
    pub snapshot: String,
    /// An existing empty folder to mount on.
    pub mountpoint: PathBuf,
    /// Show only this index (repeatable; default: every index of the snapshot).
    #[arg(long = "index", value_name = "NAME")]
    pub indices: Vec<String>,
    /// Folder of the chunk cache [default: ~/.cache/snapkeep/chunks/<repository id>].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Most bytes the cache keeps (e.g. 10GiB).
    #[arg(long, value_name = "SIZE", default_value = "10GiB", value_parser = parse_bytes)]
    pub cache_size: u64,
    /// shared_cache: only the bounded cache; full_copy: copy every chunk into the
    /// cache in the background, after which reads never touch the repository.
    #[arg(long, value_enum, default_value_t = MountStorage::SharedCache)]
    pub storage: MountStorage,
    /// Fill the cache in the background up to its bound. With a writable
    /// block layer: fill every block the layer's files owe, so the layer
    /// becomes a complete local folder while the mount serves.
    #[arg(long)]
    pub prewarm: bool,
    /// Let other users read the mount (e.g. a service's own account).
    #[arg(long)]
    pub allow_other: bool,
    /// Make the mount writable: changes go to DIR (kept after unmount,
    /// reused by the next writable mount of the same snapshot); the
    /// repository is never written. Needs root.
    #[arg(long, requires = "upper")]
    pub writable: bool,
    /// Folder for the writable layer's changes (with --writable).
    #[arg(long, value_name = "DIR", requires = "writable")]
    pub upper: Option<PathBuf>,
    /// How the writable layer keeps changes: blocks (a file's blocks are
    /// copied from the snapshot as they are read or written, so a service
    /// that opens a 1 GiB file to change one page copies one block) or
    /// overlayfs (Linux overlayfs over the read-only mount: a file is copied
    /// whole when first opened for writing; its folder is a plain overlayfs
    /// upper folder) [default: what --upper already holds, else blocks].
    #[arg(long, value_enum, value_name = "KIND", requires = "writable")]
    pub writable_layer: Option<WritableLayer>,
    /// Run in the background: return once the mount is live, printing its
    /// pid (errors before that are this command's, with its exit status).
    #[arg(long)]
    pub daemon: bool,
    /// The background mount's log (with --daemon)
    /// [default: ~/.cache/snapkeep/logs/mount<mount point>.log].
    #[arg(long, value_name = "FILE", requires = "daemon")]
    pub log: Option<PathBuf>,
    /// Print JSON lines instead of text (mounted, then the summary).
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, a: MountArgs) -> Result<()> {
    let background = a.daemon && mount_daemon::is_child();
    if a.daemon && !background {
        return mount_daemon::start(ctx, &a.mountpoint, a.log.as_deref(), a.json);
    }
    // The background process writes only to its log (stderr) once it has
    // said it is ready.
    let say = |text: String| {
        if background {
            eprintln!("{text}");
        } else {
            ctx.say(text);
        }
    };
    let repo = ctx.open(&a.repo)?;
    let cache_dir = a
        .cache
        .clone()
        .unwrap_or_else(|| default_cache(&repo.config.id));
    let opts = MountOptions {
        snapshot: a.snapshot.clone(),
        mountpoint: a.mountpoint.clone(),
        indices: a.indices.clone(),
        cache_dir,
        cache_size: a.cache_size,
        storage: a.storage,
        prewarm: a.prewarm,
        allow_other: a.allow_other,
        upper: a.upper.clone(),
        layer: a.writable_layer,
    };
    let json = a.json;
    let summary = mount(&repo, &opts, |entries| {
        if background {
            mount_daemon::say_ready(&opts.mountpoint, &opts.snapshot, entries);
        }
        if json {
            let line =
                json!({"mounted": opts.mountpoint, "snapshot": opts.snapshot, "entries": entries});
            say(line.to_string());
        } else {
            say(format!(
                "mounted snapshot [{}] at {} ({entries} entries); unmount with `umount {}` or Ctrl-C",
                opts.snapshot,
                opts.mountpoint.display(),
                opts.mountpoint.display()
            ));
        }
    })?;
    if json && !background {
        print_json(&json!({ "unmounted": summary }));
    } else if json {
        say(json!({ "unmounted": summary }).to_string());
    } else {
        let c = &summary.cache;
        say(format!(
            "unmounted {}: {} hits, {} misses, {} from the cache, {} from the repository, {} evictions, {} failed reads",
            summary.mountpoint.display(),
            c.hits,
            c.misses,
            bytes(c.bytes_read_from_cache),
            bytes(c.bytes_read_from_repository),
            c.evictions,
            summary.failed_reads
        ));
    }
    Ok(())
}

/// `$XDG_CACHE_HOME` or `~/.cache`, then `snapkeep/chunks/<repository id>`.
pub(super) fn default_cache(repo_id: &str) -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("snapkeep").join("chunks").join(repo_id)
}

/// Sizes like `512MiB`, `10GiB`, `4096`.
fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    match super::args::parse_limit(s) {
        Ok(0) => Err(format!("the cache size must be above 0, got {s:?}")),
        Ok(n) => Ok(n),
        Err(e) => Err(e.replace("rate", "size")),
    }
}
