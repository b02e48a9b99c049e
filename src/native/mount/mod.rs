//! `snapkeep mount`: a snapshot as a read-only FUSE filesystem. Files are
//! read lazily through the bounded [`DiskCache`] (shared by every mount of
//! the repository), the snapshot is pinned against deletion while the
//! mount lives, and the mount runs in the foreground until it is
//! unmounted (`umount`, `fusermount3 -u`) or interrupted.

mod fs;
mod overlay;
mod pin;
mod prewarm;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::core::lazy::cache::CacheStats;
use crate::core::lazy::inodes::Inodes;
use crate::native::error::{Error, Result};
use crate::native::lazy::DiskCache;
use crate::native::repo::Repo;
use crate::native::runtime::{block_on, handle};
use fs::SnapshotFs;
use pin::PinGuard;

/// Elasticsearch's two storage options of a mounted index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MountStorage {
    /// Only the bounded cache: reads fetch what they miss.
    #[default]
    #[value(name = "shared_cache")]
    SharedCache,
    /// Every chunk of the mounted indices is copied into the cache in the
    /// background (no bound), after which reads never touch the repository.
    #[value(name = "full_copy")]
    FullCopy,
}

/// What to mount and how.
#[derive(Debug, Clone)]
pub struct MountOptions {
    pub snapshot: String,
    pub mountpoint: PathBuf,
    /// Indices to show; empty for all. Exactly one: its content is the
    /// mount point itself.
    pub indices: Vec<String>,
    pub cache_dir: PathBuf,
    pub cache_size: u64,
    pub storage: MountStorage,
    /// Fill the cache in the background (always with `full_copy`).
    pub prewarm: bool,
    /// Let other users (a service's own account) read the mount.
    pub allow_other: bool,
    /// A writable layer (overlayfs) whose changes go to this folder.
    pub upper: Option<PathBuf>,
}

/// How a mount went, said when it ends.
#[derive(Debug, Clone, Serialize)]
pub struct MountSummary {
    pub snapshot: String,
    pub mountpoint: PathBuf,
    pub entries: usize,
    pub cache: CacheStats,
    pub failed_reads: u64,
}

/// Mounts, serves until unmounted or signalled, unmounts, and says how it
/// went. `ready` is called once the filesystem answers.
pub fn mount(repo: &Repo, opts: &MountOptions, ready: impl FnOnce(usize)) -> Result<MountSummary> {
    check_mountpoint(&opts.mountpoint)?;
    // The pin goes first: a delete that has not seen it yet may still
    // remove the snapshot, which the reads below then report.
    let pin = PinGuard::start(repo, &opts.snapshot, &opts.mountpoint)?;
    let (root, index) = repo.root_and_index()?;
    let manifest = block_on(crate::repo::views::manifest_named(
        repo.reader(),
        &root,
        &opts.snapshot,
    ))?;
    let indices = selected(&manifest, &opts.indices)?;
    let roots: Vec<_> = indices
        .iter()
        .filter_map(|i| manifest.indices.get(i).and_then(|s| s.tree))
        .collect();
    let trees = block_on(repo.reader().load_trees(&index, &roots))?;
    let inodes = Inodes::build(&manifest, &indices, &trees, opts.indices.len() == 1)
        .map_err(|e| Error::Usage(e.to_string()))?;
    drop(trees);
    let inodes = Arc::new(inodes);
    let bound = match opts.storage {
        MountStorage::SharedCache => opts.cache_size,
        MountStorage::FullCopy => u64::MAX / 2,
    };
    let cache = Arc::new(DiskCache::open(
        &opts.cache_dir,
        bound,
        repo.config.pack_size,
    )?);
    let index = Arc::new(index);
    let fs = SnapshotFs::new(
        inodes.clone(),
        repo.reader().clone(),
        index.clone(),
        cache.clone(),
        handle().handle().clone(),
    );
    let failed = fs.failed_reads.clone();
    let layers = match &opts.upper {
        Some(dir) => Some(overlay::Layers::prepare(
            dir,
            &manifest.uuid,
            &manifest.snapshot,
        )?),
        None => None,
    };
    let fuse_at = layers.as_ref().map_or(&opts.mountpoint, |l| &l.lower);
    // Before the mount: a signal from then on unmounts cleanly.
    let mut signals = Signals::install()?;
    let session =
        fuser::spawn_mount(fs, fuse_at, &config(opts)).map_err(|e| Error::io(fuse_at, e))?;
    // Dropped before the session: the overlay goes first.
    let writable = match &layers {
        Some(l) => Some(overlay::Overlay::mount(l, &opts.mountpoint)?),
        None => None,
    };
    ready(inodes.len());
    let warm = (opts.prewarm || opts.storage == MountStorage::FullCopy)
        .then(|| prewarm::start(repo.reader().clone(), cache.clone(), index, inodes.clone()));
    let signalled = block_on(signals.wait_for_end(&session, writable.as_ref()));
    if let Some(w) = warm {
        w.abort();
    }
    drop(writable);
    if signalled {
        // Lazily detached: files still open keep working until closed.
        session
            .umount_and_join()
            .map_err(|e| Error::io(&opts.mountpoint, e))?;
    } else {
        let _ = session.join();
    }
    drop(pin);
    Ok(MountSummary {
        snapshot: manifest.snapshot,
        mountpoint: opts.mountpoint.clone(),
        entries: inodes.len(),
        cache: cache.stats(),
        failed_reads: failed.load(Ordering::Relaxed),
    })
}

fn check_mountpoint(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_dir() {
        return Err(Error::Usage(format!(
            "mount point {} is not a folder",
            path.display()
        )));
    }
    Ok(())
}

/// The indices to show: the ones asked for (each must exist), or all.
fn selected(
    manifest: &crate::core::format::manifest::Manifest,
    asked: &[String],
) -> Result<Vec<String>> {
    if asked.is_empty() {
        return Ok(manifest.indices.keys().cloned().collect());
    }
    for name in asked {
        if !manifest.indices.contains_key(name) {
            let known: Vec<&str> = manifest.indices.keys().map(String::as_str).collect();
            return Err(Error::NotFound(format!(
                "index [{name}] in snapshot [{}] (it has: {})",
                manifest.snapshot,
                known.join(", ")
            )));
        }
    }
    Ok(asked.to_vec())
}

fn config(opts: &MountOptions) -> fuser::Config {
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::RO,
        fuser::MountOption::FSName(format!("snapkeep:{}", opts.snapshot)),
        fuser::MountOption::Subtype("snapkeep".into()),
        // The kernel checks modes and owners as the snapshot recorded them.
        fuser::MountOption::DefaultPermissions,
    ];
    // Through a writable layer the service's own account reads the lower
    // folder too.
    if opts.allow_other || opts.upper.is_some() {
        config.acl = fuser::SessionACL::All;
    }
    config
}

/// SIGINT and SIGTERM, caught from before the mount on.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let _runtime = handle().enter();
        let failed = |e| Error::Usage(format!("cannot catch signals for the mount: {e}"));
        Ok(Signals {
            int: signal(SignalKind::interrupt()).map_err(failed)?,
            term: signal(SignalKind::terminate()).map_err(failed)?,
        })
    }

    /// Waits until SIGINT or SIGTERM (true) or until the filesystem was
    /// unmounted from outside (false).
    async fn wait_for_end(
        &mut self,
        session: &fuser::BackgroundSession,
        overlay: Option<&overlay::Overlay>,
    ) -> bool {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = self.int.recv() => return true,
                _ = self.term.recv() => return true,
                _ = tick.tick() => {
                    if session.guard.is_finished() {
                        return false;
                    }
                    // The overlay unmounted from outside: the lower mount
                    // has no more use.
                    if overlay.is_some_and(|o| !o.is_mounted()) {
                        return true;
                    }
                }
            }
        }
    }
}
