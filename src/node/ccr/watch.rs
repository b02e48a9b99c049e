//! Change notification for the leader (`notify`: inotify on Linux): a
//! follower's read waiting on an unchanged index wakes within
//! milliseconds of a write into it, instead of at the next periodic
//! rescan, which stays as the fallback (a watch that cannot be set up, a
//! lost event, a queue overflow). An event only wakes a read; what changed
//! is still decided by comparing the index with its newest checkpoint, so
//! a spurious wake-up costs one comparison and a missed one costs the
//! rescan interval, never correctness.
//!
//! Each followed index is watched (recursively) from its first read on,
//! and a counter of its events is published on a `tokio::sync::watch`
//! channel that its reads subscribe to before they compare, so an event
//! between the comparison and the wait is not lost.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::watch;

/// After a first event, further events within this quiet time are taken
/// with it (a file written in several calls, a rename and its folder's
/// change), so one checkpoint covers the burst ...
const QUIET: Duration = Duration::from_millis(20);
/// ... but a steady stream of writes does not hold the checkpoint back
/// longer than this.
const QUIET_AT_MOST: Duration = Duration::from_millis(100);

type Counters = Arc<Mutex<BTreeMap<String, watch::Sender<u64>>>>;
/// Indices whose folder itself was removed or renamed away (a restore
/// over it, say): the watch is on the old folder, so the next read
/// watches the folder now at the path.
type Stale = Arc<Mutex<BTreeSet<String>>>;

/// The node's one watcher over the indices followers read.
#[derive(Default)]
pub struct Watches {
    inner: Mutex<Inner>,
    counters: Counters,
    stale: Stale,
}

#[derive(Default)]
struct Inner {
    /// `None` until the first read; then the watcher, or why there is none.
    watcher: Option<Result<RecommendedWatcher, String>>,
    /// Index folders under watch.
    watched: BTreeSet<String>,
}

impl std::fmt::Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watches")
            .field("watched", &self.inner().watched)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether an event can mean a change of the index: reads (the leader's
/// own comparisons and checkpoints open every folder) cannot.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The index (first folder under `data`) that `path` is in.
fn index_of(data: &Path, path: &Path) -> Option<String> {
    match path.strip_prefix(data).ok()?.components().next()? {
        Component::Normal(name) => name.to_str().map(str::to_string),
        _ => None,
    }
}

/// Whether `event` removes or renames the folder of an index itself.
fn gone_folder(data: &Path, event: &Event) -> Option<String> {
    let moved = matches!(
        event.kind,
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
    );
    let root = event.paths.iter().find(|p| p.parent() == Some(data))?;
    moved.then(|| index_of(data, root)).flatten()
}

/// Counts `event` for the index it is in; an error (the kernel's queue
/// overflowed: events were lost) counts for every index.
fn on_event(data: &Path, counters: &Counters, stale: &Stale, event: notify::Result<Event>) {
    if let Some(index) = event.as_ref().ok().and_then(|e| gone_folder(data, e)) {
        lock(stale).insert(index);
    }
    let all = lock(counters);
    let bump = |index: &str| {
        if let Some(tx) = all.get(index) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    };
    match event {
        Ok(e) if is_change(&e.kind) => {
            let indices: BTreeSet<String> =
                e.paths.iter().filter_map(|p| index_of(data, p)).collect();
            indices.iter().for_each(|i| bump(i));
        }
        Ok(_) => {}
        Err(_) => all.keys().for_each(|i| bump(i)),
    }
}

impl Watches {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// A subscription to `index`'s changes under `data`, watching it from
    /// now on; `None` where no watch can be set up (the read then relies
    /// on its rescan).
    pub fn subscribe(&self, data: &Path, index: &str) -> Option<watch::Receiver<u64>> {
        // Events name absolute paths: a relative `--data` would match none.
        let data = &absolute(data);
        let rx = lock(&self.counters)
            .entry(index.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        let folder: PathBuf = data.join(index);
        let mut inner = self.inner();
        if lock(&self.stale).remove(index) && inner.watched.remove(index) {
            if let Some(Ok(w)) = inner.watcher.as_mut() {
                let _ = w.unwatch(&folder);
            }
        }
        if inner.watched.contains(index) {
            return Some(rx);
        }
        let (counters, stale, root) = (
            self.counters.clone(),
            self.stale.clone(),
            data.to_path_buf(),
        );
        let watcher = inner.watcher.get_or_insert_with(|| {
            notify::recommended_watcher(move |e| on_event(&root, &counters, &stale, e))
                .map_err(|e| e.to_string())
        });
        let started = match watcher {
            Ok(w) => w
                .watch(&folder, RecursiveMode::Recursive)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        match started {
            Ok(()) => {
                inner.watched.insert(index.to_string());
                Some(rx)
            }
            Err(reason) => {
                eprintln!(
                    "snapkeep node: no change notification for [{index}] ({reason}); \
                     its followers' reads rescan it periodically"
                );
                None
            }
        }
    }

    /// Stops watching `index` (this node no longer leads it; its folder
    /// may be swapped by a follower's apply, and the next read, if it
    /// leads again, watches the folder then in place).
    pub fn forget(&self, data: &Path, index: &str) {
        let data = &absolute(data);
        let mut inner = self.inner();
        if inner.watched.remove(index) {
            if let Some(Ok(w)) = inner.watcher.as_mut() {
                let _ = w.unwatch(&data.join(index));
            }
        }
    }
}

fn absolute(data: &Path) -> PathBuf {
    std::path::absolute(data).unwrap_or_else(|_| data.to_path_buf())
}

/// Waits up to `wait` for a change signalled on `rx` (then for the burst
/// to end, see [`QUIET`]); whether one came. Without `rx`, or when its
/// sender is gone, simply sleeps.
pub async fn changed_within(rx: Option<&mut watch::Receiver<u64>>, wait: Duration) -> bool {
    let Some(rx) = rx else {
        tokio::time::sleep(wait).await;
        return false;
    };
    match tokio::time::timeout(wait, rx.changed()).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => {
            tokio::time::sleep(wait).await;
            return false;
        }
        Err(_) => return false,
    }
    let first = Instant::now();
    while first.elapsed() < QUIET_AT_MOST {
        let left = QUIET_AT_MOST.saturating_sub(first.elapsed());
        match tokio::time::timeout(QUIET.min(left), rx.changed()).await {
            Ok(Ok(())) => continue,
            _ => break,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_count_for_the_index_they_are_in() {
        let data = Path::new("/d");
        assert_eq!(
            index_of(data, Path::new("/d/logs/a/b")),
            Some("logs".into())
        );
        assert_eq!(index_of(data, Path::new("/d/logs")), Some("logs".into()));
        assert_eq!(index_of(data, Path::new("/elsewhere/x")), None);
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Remove(
            notify::event::RemoveKind::File
        )));
    }

    #[test]
    fn a_write_into_a_watched_folder_is_seen_within_milliseconds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs/sub")).unwrap();
        std::fs::create_dir_all(dir.path().join("other")).unwrap();
        let w = Watches::default();
        let mut rx = w.subscribe(dir.path(), "logs").expect("inotify works here");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            std::fs::write(dir.path().join("other/x"), b"not followed").unwrap();
            assert!(!changed_within(Some(&mut rx), Duration::from_millis(150)).await);
            let t0 = Instant::now();
            std::fs::write(dir.path().join("logs/sub/new"), b"a change").unwrap();
            assert!(changed_within(Some(&mut rx), Duration::from_secs(5)).await);
            assert!(
                t0.elapsed() < Duration::from_millis(500),
                "{:?}",
                t0.elapsed()
            );
            // Reads are not changes.
            let _ = std::fs::read(dir.path().join("logs/sub/new")).unwrap();
            let _ = std::fs::read_dir(dir.path().join("logs")).unwrap().count();
            assert!(!changed_within(Some(&mut rx), Duration::from_millis(150)).await);
            // The folder replaced by another (a restore over it): the next
            // subscription watches the new one.
            let logs = dir.path().join("logs");
            std::fs::rename(&logs, dir.path().join("old-logs")).unwrap();
            std::fs::create_dir(&logs).unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut rx = w.subscribe(dir.path(), "logs").unwrap();
            std::fs::write(logs.join("in-the-new-folder"), b"x").unwrap();
            assert!(changed_within(Some(&mut rx), Duration::from_secs(5)).await);
        });
    }
}
