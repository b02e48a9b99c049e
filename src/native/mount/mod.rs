//! `snapkeep mount`: a snapshot as a read-only FUSE filesystem. Files are
//! read lazily through the bounded [`DiskCache`] (shared by every mount of
//! the repository), the snapshot is pinned against deletion while the
//! mount lives, and the mount runs in the foreground until it is
//! unmounted (`umount`, `fusermount3 -u`) or interrupted.

pub mod blocks;
pub mod fs;
pub mod materialize;
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
use crate::repo::RepoReader;
use crate::storage::Storage;
use fs::SnapshotFs;
use pin::PinGuard;

/// Elasticsearch's two storage options of a mounted index.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, serde::Deserialize,
)]
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
    /// A writable layer whose changes go to this folder.
    pub upper: Option<PathBuf>,
    /// How the writable layer keeps changes (`None`: what the folder
    /// already holds, else blocks).
    pub layer: Option<WritableLayer>,
}

/// How a writable mount keeps its changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WritableLayer {
    /// snapkeep's own: the mount is writable, and a file's blocks are
    /// copied from the snapshot as they are read or written.
    Blocks,
    /// Linux overlayfs over the read-only mount: a file is copied whole
    /// the first time it is opened for writing.
    Overlayfs,
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

/// Where a mount reads from: the repository's reader, the store its pin
/// goes to (below any rate limit), and its pack size (the cache's slack).
#[derive(Clone)]
pub struct Source {
    pub reader: RepoReader,
    pub control: Arc<dyn Storage>,
}

impl Source {
    pub fn of(repo: &Repo) -> Source {
        Source {
            reader: repo.reader().clone(),
            control: repo.control_store(),
        }
    }
}

/// The cache folder and bound `opts` ask for (`full_copy`: no bound).
pub fn open_cache(source: &Source, opts: &MountOptions) -> Result<Arc<DiskCache>> {
    let bound = match opts.storage {
        MountStorage::SharedCache => opts.cache_size,
        MountStorage::FullCopy => u64::MAX / 2,
    };
    let cache = DiskCache::open(&opts.cache_dir, bound, source.reader.config.pack_size)?;
    Ok(Arc::new(cache.keyed_by(source.reader.sealing().ids())))
}

/// A live mount: the FUSE session, its optional writable layer, its
/// prewarm and its pin.
pub struct Mounted {
    // Dropped in this order: the overlay before the session under it.
    writable: Option<overlay::Overlay>,
    session: fuser::BackgroundSession,
    /// A block layer's lock, released once the session is gone.
    in_use: Option<blocks::InUse>,
    warm: Option<tokio::task::JoinHandle<()>>,
    pin: PinGuard,
    inodes: Arc<Inodes>,
    cache: Arc<DiskCache>,
    counters: Arc<fs::Counters>,
    snapshot: String,
    mountpoint: PathBuf,
}

impl Mounted {
    /// Pins the snapshot, builds its inode table and mounts it, reading
    /// through `cache`. Works from async code (the node) and, through
    /// `block_on`, from the CLI.
    pub async fn start(
        source: &Source,
        opts: &MountOptions,
        cache: Arc<DiskCache>,
    ) -> Result<Mounted> {
        check_mountpoint(&opts.mountpoint)?;
        // The pin goes first: a delete that has not seen it yet may still
        // remove the snapshot, which the reads below then report.
        let pin = PinGuard::start(source.control.clone(), &opts.snapshot, &opts.mountpoint).await?;
        let reader = &source.reader;
        let shown = Shown::load(reader, &opts.snapshot, &opts.indices).await?;
        let (manifest, inodes, index) = (shown.manifest, shown.inodes, shown.index);
        let mut tree_fill = None;
        let (session, writable, counters, in_use) = match &opts.upper {
            Some(dir) => {
                let kind = layer_kind(dir, opts.layer)?;
                overlay::stamp(dir, &manifest.uuid, &manifest.snapshot)?;
                match kind {
                    WritableLayer::Blocks => {
                        let lower = blocks::Lower {
                            inodes: inodes.clone(),
                            repo: reader.clone(),
                            index: index.clone(),
                            cache: cache.clone(),
                        };
                        let in_use = blocks::InUse::take(dir, &opts.mountpoint)?;
                        let (session, counters, fill) = mount_blocks(dir, lower, opts)?;
                        tree_fill = Some(fill);
                        (session, None, counters, Some(in_use))
                    }
                    WritableLayer::Overlayfs => {
                        let layers = overlay::Layers::prepare(dir)?;
                        let fs = snapshot_fs(&inodes, reader, &index, &cache);
                        let counters = fs.counters.clone();
                        let session = fuser::spawn_mount(fs, &layers.lower, &config(opts))
                            .map_err(|e| Error::io(&layers.lower, e))?;
                        let writable = overlay::Overlay::mount(&layers, &opts.mountpoint)?;
                        (session, Some(writable), counters, None)
                    }
                }
            }
            None => {
                let fs = snapshot_fs(&inodes, reader, &index, &cache);
                let counters = fs.counters.clone();
                let session = fuser::spawn_mount(fs, &opts.mountpoint, &config(opts))
                    .map_err(|e| Error::io(&opts.mountpoint, e))?;
                (session, None, counters, None)
            }
        };
        // A block layer fills its tree (and so the cache); otherwise the
        // cache is filled.
        let warm =
            (opts.prewarm || opts.storage == MountStorage::FullCopy).then(|| match tree_fill {
                Some((tree, fills)) => blocks::prewarm::start(tree, fills),
                None => prewarm::start(reader.clone(), cache.clone(), index, inodes.clone()),
            });
        Ok(Mounted {
            writable,
            session,
            in_use,
            warm,
            pin,
            inodes,
            cache,
            counters,
            snapshot: manifest.snapshot,
            mountpoint: opts.mountpoint.clone(),
        })
    }

    /// Entries the mount shows.
    pub fn entries(&self) -> usize {
        self.inodes.len()
    }

    /// What its readers did.
    pub fn counters(&self) -> &fs::Counters {
        &self.counters
    }

    pub fn cache(&self) -> &Arc<DiskCache> {
        &self.cache
    }

    /// Whether it was unmounted from outside (`umount`).
    pub fn gone(&self) -> bool {
        self.session.guard.is_finished() || self.writable.as_ref().is_some_and(|o| !o.is_mounted())
    }

    /// The figures so far.
    pub fn summary(&self) -> MountSummary {
        MountSummary {
            snapshot: self.snapshot.clone(),
            mountpoint: self.mountpoint.clone(),
            entries: self.inodes.len(),
            cache: self.cache.stats(),
            failed_reads: self.counters.failed_reads.load(Ordering::Relaxed),
        }
    }

    /// Unmounts (lazily: files still open keep working until closed, and
    /// this waits for them), removes the pin and says how it went.
    /// Blocking: from async code, call it on a blocking thread.
    pub fn stop(self) -> Result<MountSummary> {
        let summary = self.summary();
        let Mounted {
            writable,
            session,
            in_use,
            warm,
            pin,
            cache,
            ..
        } = self;
        if let Some(w) = warm {
            w.abort();
        }
        drop(writable);
        let unmounted = if session.guard.is_finished() {
            session.join()
        } else {
            session.umount_and_join()
        };
        drop(in_use);
        pin.finish();
        // Chunks still queued for the folder: the next mount finds them.
        cache.flush();
        unmounted.map_err(|e| Error::io(&summary.mountpoint, e))?;
        Ok(summary)
    }
}

/// Mounts, serves until unmounted or signalled, unmounts, and says how it
/// went (the CLI's foreground mount). `ready` is called once the
/// filesystem answers.
pub fn mount(repo: &Repo, opts: &MountOptions, ready: impl FnOnce(usize)) -> Result<MountSummary> {
    let source = Source::of(repo);
    let cache = open_cache(&source, opts)?;
    // Before the mount: a signal from then on unmounts cleanly.
    let mut signals = Signals::install()?;
    let mounted = block_on(Mounted::start(&source, opts, cache))?;
    ready(mounted.entries());
    block_on(signals.wait_for_end(&mounted));
    mounted.stop()
}

/// What a mount of `indices` of a snapshot shows, and the repository
/// index its reads go through.
pub struct Shown {
    pub manifest: crate::core::format::manifest::Manifest,
    pub inodes: Arc<Inodes>,
    pub index: Arc<crate::core::format::index::RepoIndex>,
}

impl Shown {
    pub async fn load(reader: &RepoReader, snapshot: &str, indices: &[String]) -> Result<Shown> {
        let (root, index) = reader.root_and_index().await?;
        let manifest = crate::repo::views::manifest_named(reader, &root, snapshot).await?;
        let chosen = selected(&manifest, indices)?;
        let roots: Vec<_> = chosen
            .iter()
            .filter_map(|i| manifest.indices.get(i).and_then(|s| s.tree))
            .collect();
        let trees = reader.load_trees(&index, &roots).await?;
        let inodes = Inodes::build(&manifest, &chosen, &trees, indices.len() == 1)
            .map_err(|e| Error::Usage(e.to_string()))?;
        Ok(Shown {
            manifest,
            inodes: Arc::new(inodes),
            index: Arc::new(index),
        })
    }
}

fn snapshot_fs(
    inodes: &Arc<Inodes>,
    reader: &RepoReader,
    index: &Arc<crate::core::format::index::RepoIndex>,
    cache: &Arc<DiskCache>,
) -> SnapshotFs {
    SnapshotFs::new(
        inodes.clone(),
        reader.clone(),
        index.clone(),
        cache.clone(),
        handle().handle().clone(),
    )
}

/// A block layer's tree and the fill states its prewarm shares.
type TreeFill = (PathBuf, Arc<blocks::hydrate::Fills>);

/// The block layer in `dir` (laid out the first time), mounted writable.
fn mount_blocks(
    dir: &Path,
    lower: blocks::Lower,
    opts: &MountOptions,
) -> Result<(fuser::BackgroundSession, Arc<fs::Counters>, TreeFill)> {
    let tree = blocks::prepare(dir, &lower.inodes)?;
    let fs = blocks::LayerFs::new(&tree, lower, handle().handle().clone())
        .map_err(|e| Error::io(&tree, e))?;
    let counters = fs.counters.clone();
    let fills = fs.fills();
    let mut config = config(opts);
    config
        .mount_options
        .retain(|o| *o != fuser::MountOption::RO);
    config.mount_options.push(fuser::MountOption::RW);
    let session = fuser::spawn_mount(fs, &opts.mountpoint, &config)
        .map_err(|e| Error::io(&opts.mountpoint, e))?;
    Ok((session, counters, (tree, fills)))
}

/// The kind of writable layer `dir` holds, or `asked` (blocks by
/// default) for a new one; a folder holding the other kind is refused.
fn layer_kind(dir: &Path, asked: Option<WritableLayer>) -> Result<WritableLayer> {
    let held = if blocks::is_block_layer(dir) || blocks::tree_of(dir).is_dir() {
        Some(WritableLayer::Blocks)
    } else if overlay::Layers::at(dir).upper.is_dir() {
        Some(WritableLayer::Overlayfs)
    } else {
        None
    };
    match (held, asked) {
        (Some(h), Some(a)) if h != a => Err(Error::Usage(format!(
            "--upper {} holds a {} layer, not {}: give another folder for a new layer",
            dir.display(),
            layer_name(h),
            layer_name(a)
        ))),
        (Some(h), _) => Ok(h),
        (None, a) => Ok(a.unwrap_or(WritableLayer::Blocks)),
    }
}

fn layer_name(kind: WritableLayer) -> &'static str {
    match kind {
        WritableLayer::Blocks => "blocks",
        WritableLayer::Overlayfs => "overlayfs",
    }
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

    /// Waits until SIGINT or SIGTERM, or until the mount was unmounted
    /// from outside.
    async fn wait_for_end(&mut self, mounted: &Mounted) {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = self.int.recv() => return,
                _ = self.term.recv() => return,
                _ = tick.tick() => {
                    if mounted.gone() {
                        return;
                    }
                }
            }
        }
    }
}
