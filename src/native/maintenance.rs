//! Repository maintenance: `repo verify` (a write/read/list/delete probe),
//! `repo cleanup` (unreferenced objects) and `repo analyze` (the storage
//! semantics snapkeep relies on, with timings).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;

use crate::core::format::id::Id;
use crate::core::format::index::IndexFile;
use crate::core::format::keys;
use crate::core::format::root::Root;
use crate::native::backup::now_millis;
use crate::native::error::{Error, Result};
use crate::native::inflight;
use crate::native::repo::Repo;
use crate::native::runtime::block_on;
use crate::storage::local::abandoned_temporaries;
use crate::storage::{PutMode, Storage, StorageError};

/// Root generations kept besides the newest (readers that started from an
/// older hint can still finish).
const KEEP_OLD_ROOTS: u64 = 2;
/// Root generations younger than this are kept whatever the grace period:
/// a writer that read the newest root commits the next generation with a
/// create-only put, and that key must not be a removed one (the put would
/// succeed unseen, above a hole).
const ROOT_MIN_AGE: Duration = Duration::from_secs(15 * 60);
/// A local writer's temporary file this old is abandoned: a live one is
/// being written (its mtime moves) or renamed within moments.
pub const TEMP_MIN_AGE: Duration = Duration::from_secs(10 * 60);
/// Unreferenced objects younger than this are kept by default: they may be
/// parts of a snapshot that has not committed yet.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60 * 60);

fn probe_key(tag: &str) -> String {
    format!("verify/{tag}-{}", uuid::Uuid::new_v4())
}

/// Writes, reads back, lists and deletes a probe object.
pub fn verify(store: &Arc<dyn Storage>) -> Result<Duration> {
    let started = Instant::now();
    let key = probe_key("probe");
    let body = Bytes::from(format!("snapkeep verify {}", now_millis()));
    block_on(store.put(&key, body.clone(), PutMode::Create))?;
    let back = block_on(store.get(&key, None))?;
    let listed = block_on(store.list("verify/"))?
        .iter()
        .any(|m| m.key == key);
    block_on(store.delete(&key))?;
    let gone = block_on(store.head(&key))
        .err()
        .is_some_and(|e| e.is_not_found());
    if back != body || !listed || !gone {
        return Err(Error::ProbeMisbehaved {
            read_back: back == body,
            listed,
            deleted: gone,
        });
    }
    Ok(started.elapsed())
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanupReport {
    pub dry_run: bool,
    /// Unreferenced objects removed (or that would be, with --dry-run).
    pub objects: usize,
    pub bytes: u64,
    /// Unreferenced objects kept because they are younger than the grace
    /// period or than the oldest running snapshot.
    pub kept_young: usize,
    pub keys: Vec<String>,
}

/// The latest time an object with this modification time can have been
/// written. S3 and Azure list times in whole seconds, truncated: an object
/// written at 12:00:00.900 lists as 12:00:00, and would look older than a
/// cleanup that started at 12:00:00.700 and must not touch it.
fn latest_possible(modified_ms: i64) -> i64 {
    if modified_ms.rem_euclid(1000) == 0 {
        modified_ms + 999
    } else {
        modified_ms
    }
}

/// Removes objects no snapshot needs. Kept besides what the newest root
/// references:
/// - objects modified after `now - grace`, or after the start of the oldest
///   live snapshot or delete: they may be uploads not yet committed;
/// - everything the roots from the oldest running snapshot's base
///   generation onwards reference: that snapshot may deduplicate against
///   it, even if a delete has since dropped it from the newest root;
/// - the last few root generations, and any younger than `ROOT_MIN_AGE` or
///   `grace` (a writer that read a root a moment ago commits the next
///   generation, and that key must never have existed).
///
/// Cleanup refuses to run while `index.latest` names a lost generation,
/// and keeps every unreferenced object written after the newest root (a
/// lost root's snapshot, or a commit on its way).
///
/// Markers of dead processes are removed once older than `grace`, and in a
/// local repository the temporary files of killed writers once older than
/// `grace` and [`TEMP_MIN_AGE`].
pub fn cleanup(repo: &Repo, grace: Duration, dry_run: bool) -> Result<CleanupReport> {
    let local = crate::native::guard::local_root(repo).filter(|_| !dry_run);
    if let Some(root) = &local {
        crate::native::reserve::release_if_tight(root);
    }
    let report = cleanup_objects(repo, grace, dry_run);
    if let Some(root) = &local {
        crate::native::reserve::ensure(root);
    }
    report
}

fn cleanup_objects(repo: &Repo, grace: Duration, dry_run: bool) -> Result<CleanupReport> {
    if repo.settings.readonly && !dry_run {
        return Err(StorageError::ReadOnly {
            location: repo.store.location(),
        }
        .into());
    }
    let now = now_millis();
    let mut cutoff = now - grace.as_millis() as i64;
    let markers = inflight::scan(repo, now)?;
    if let Some(oldest) = markers.oldest_start() {
        cutoff = cutoff.min(oldest - 60_000);
    }
    let (latest, _) = repo.root_and_index_files()?;
    repo.refuse_lost_root(latest.generation)?;
    let protect_from = markers
        .oldest_snapshot_base()
        .unwrap_or(latest.generation)
        .min(latest.generation);
    let live = referenced_since(repo, protect_from, &latest)?;
    let stale_markers: HashSet<&str> = markers
        .stale
        .iter()
        .filter(|(_, beat)| *beat < now - grace.as_millis() as i64)
        .map(|(k, _)| k.as_str())
        .collect();
    let referenced = |key: &str| -> bool {
        if key == keys::CONFIG || key == keys::LATEST {
            return true;
        }
        if key.starts_with(inflight::PREFIX) {
            return !stale_markers.contains(key);
        }
        if let Some(n) = keys::parse_root(key) {
            return n + KEEP_OLD_ROOTS >= latest.generation || n >= protect_from;
        }
        if let Some(p) = keys::parse_pack(key) {
            return live.packs.contains(&p);
        }
        if let Some(id) = key
            .strip_prefix(keys::INDEX_PREFIX)
            .and_then(|h| h.parse::<Id>().ok())
        {
            return live.index_files.contains(&id);
        }
        if key.starts_with(keys::SNAPSHOT_PREFIX) {
            return live.manifests.contains(key);
        }
        // Not one of ours (e.g. a stray verify probe, or someone else's
        // object under the prefix): never touched.
        !key.starts_with("verify/")
    };
    let mut report = CleanupReport {
        dry_run,
        ..Default::default()
    };
    let young_root_since = now - grace.max(ROOT_MIN_AGE).as_millis() as i64;
    let listing = block_on(repo.store.list(""))?;
    // Nothing written after the newest root is garbage of a generation
    // cleanup knows: it may belong to a newer root that was lost, or to a
    // commit still on its way.
    let newest_root_ms = listing
        .iter()
        .find(|m| m.key == keys::root(latest.generation))
        .and_then(|m| m.modified_ms);
    for meta in listing {
        if referenced(&meta.key) {
            continue;
        }
        let modified = meta.modified_ms.map(latest_possible);
        if newest_root_ms.is_some_and(|r| modified.is_none_or(|m| m > r)) {
            report.kept_young += 1;
            continue;
        }
        if keys::parse_root(&meta.key).is_some() && modified.is_none_or(|m| m >= young_root_since) {
            report.kept_young += 1;
            continue;
        }
        let stale_marker = stale_markers.contains(meta.key.as_str());
        let old = modified.map_or(grace.is_zero(), |m| m < cutoff);
        if !old && !stale_marker {
            report.kept_young += 1;
            continue;
        }
        if !dry_run {
            block_on(repo.store.delete(&meta.key))?;
        }
        report.objects += 1;
        report.bytes += meta.size;
        report.keys.push(meta.key);
    }
    // Half-written files of killed writers in a local repository (no object
    // store has them: an interrupted multipart upload is aborted by its
    // writer or expired by the bucket's lifecycle rules).
    if let Some(root) = repo.store.location().strip_prefix("file://") {
        let older_than = now - grace.max(TEMP_MIN_AGE).as_millis() as i64;
        let root = std::path::Path::new(root);
        let found = abandoned_temporaries(root, older_than).map_err(|e| Error::io(root, e))?;
        for (path, size) in found {
            if !dry_run {
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::io(&path, e))
                    }
                    _ => {}
                }
            }
            report.objects += 1;
            report.bytes += size;
            let rel = path.strip_prefix(root).unwrap_or(&path);
            report.keys.push(rel.display().to_string());
        }
    }
    Ok(report)
}

/// What the roots from generation `from` up to `latest` reference.
#[derive(Default)]
struct Referenced {
    packs: HashSet<Id>,
    index_files: HashSet<Id>,
    manifests: HashSet<String>,
}

fn referenced_since(repo: &Repo, from: u64, latest: &Root) -> Result<Referenced> {
    let mut out = Referenced::default();
    let mut roots = vec![latest.clone()];
    for generation in from.max(1)..latest.generation {
        match repo.root_at(generation) {
            Ok(r) => roots.push(r),
            // Removed by an earlier cleanup, before it mattered.
            Err(Error::Storage(e)) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    for root in &roots {
        out.manifests
            .extend(root.snapshots.iter().map(|s| keys::manifest(&s.uuid)));
        for id in &root.index_files {
            if !out.index_files.insert(*id) {
                continue;
            }
            let key = keys::index_file(id);
            let bytes = match block_on(repo.store.get(&key, None)) {
                Ok(b) => b,
                // Only an older root can name a removed index file.
                Err(e) if e.is_not_found() && root.generation != latest.generation => continue,
                Err(e) => return Err(e.into()),
            };
            let file = IndexFile::decode(&bytes).map_err(|e| Error::format(&key, e))?;
            out.packs.extend(file.packs.iter().map(|(p, _)| *p));
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub name: &'static str,
    pub ok: bool,
    pub millis: u64,
    pub detail: String,
}

/// Tests the storage semantics snapkeep relies on.
pub fn analyze(store: &Arc<dyn Storage>) -> Vec<Probe> {
    let mut out = Vec::new();
    let mut run = |name: &'static str, f: &dyn Fn() -> std::result::Result<String, String>| {
        let t = Instant::now();
        let r = f();
        out.push(Probe {
            name,
            ok: r.is_ok(),
            millis: t.elapsed().as_millis() as u64,
            detail: r.unwrap_or_else(|e| e),
        });
    };
    let s = |e: StorageError| e.to_string();
    let body = |n: usize, seed: u8| {
        Bytes::from(
            (0..n)
                .map(|i| (i as u8).wrapping_mul(31) ^ seed)
                .collect::<Vec<u8>>(),
        )
    };

    run("read-after-write", &|| {
        let key = probe_key("raw");
        let data = body(1 << 20, 1);
        block_on(store.put(&key, data.clone(), PutMode::Overwrite)).map_err(s)?;
        let back = block_on(store.get(&key, None)).map_err(s)?;
        let size = block_on(store.head(&key)).map_err(s)?.size;
        let _ = block_on(store.delete(&key));
        if back == data && size == data.len() as u64 {
            Ok("1 MiB written and read back".into())
        } else {
            Err("read back different bytes".into())
        }
    });
    run("list-after-write", &|| {
        let dir = probe_key("list");
        let keys: Vec<String> = (0..5).map(|i| format!("{dir}/{i}")).collect();
        for k in &keys {
            block_on(store.put(k, body(10, 2), PutMode::Overwrite)).map_err(s)?;
        }
        let listed = block_on(store.list(&format!("{dir}/"))).map_err(s)?.len();
        for k in &keys {
            let _ = block_on(store.delete(k));
        }
        if listed == keys.len() {
            Ok("5 new objects listed at once".into())
        } else {
            Err(format!("listed {listed} of {}", keys.len()))
        }
    });
    run("range-reads", &|| {
        let key = probe_key("range");
        let data = body(100_000, 3);
        block_on(store.put(&key, data.clone(), PutMode::Overwrite)).map_err(s)?;
        let checks = [
            (0u64, 1u64),
            (500, 600),
            (99_990, 100_000),
            (99_990, 200_000),
        ];
        let mut bad = Vec::new();
        for (a, b) in checks {
            let got = block_on(store.get(&key, Some(a..b))).map_err(s)?;
            if got != data.slice(a as usize..(b as usize).min(data.len())) {
                bad.push(format!("{a}..{b}"));
            }
        }
        let _ = block_on(store.delete(&key));
        if bad.is_empty() {
            Ok("exact bytes for 4 ranges".into())
        } else {
            Err(format!("wrong bytes for {}", bad.join(", ")))
        }
    });
    run("create-only-conflicts", &|| {
        let mut failures = Vec::new();
        for round in 0..5 {
            let key = probe_key("cas");
            let results: Vec<_> = block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for i in 0..2u8 {
                    let (store, key) = (store.clone(), key.clone());
                    set.spawn(async move {
                        store
                            .put(&key, Bytes::from(vec![i; 1024]), PutMode::Create)
                            .await
                    });
                }
                set.join_all().await
            });
            let wins = results.iter().filter(|r| r.is_ok()).count();
            let conflicts = results
                .iter()
                .filter(|r| matches!(r, Err(StorageError::AlreadyExists { .. })))
                .count();
            if wins != 1 || conflicts != 1 {
                failures.push(format!(
                    "round {round}: {wins} winners, {conflicts} conflicts"
                ));
            }
            let _ = block_on(store.delete(&key));
        }
        if failures.is_empty() {
            Ok("two concurrent creators: exactly one wins, 5 of 5 rounds".into())
        } else {
            Err(failures.join("; "))
        }
    });
    run("large-upload", &|| {
        let key = probe_key("large");
        let data = body(24 << 20, 4);
        block_on(store.put(&key, data.clone(), PutMode::Overwrite)).map_err(s)?;
        let back = block_on(store.get(&key, None)).map_err(s)?;
        let _ = block_on(store.delete(&key));
        if back == data {
            Ok("24 MiB (multipart where the service supports it) read back".into())
        } else {
            Err("read back different bytes".into())
        }
    });
    run("delete", &|| {
        let key = probe_key("del");
        block_on(store.put(&key, body(10, 5), PutMode::Overwrite)).map_err(s)?;
        block_on(store.delete(&key)).map_err(s)?;
        match block_on(store.head(&key)) {
            Err(e) if e.is_not_found() => Ok("deleted objects are gone".into()),
            Ok(_) => Err("object still there after delete".into()),
            Err(e) => Err(e.to_string()),
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use async_trait::async_trait;

    use super::*;
    use crate::core::format::config::RepoConfig;
    use crate::storage::memory::MemoryStore;
    use crate::storage::ObjectMeta;

    /// Lists modification times truncated to whole seconds, as S3 and Azure
    /// do, and lets another writer put an object just before the full
    /// listing (after cleanup took its start time).
    #[derive(Debug)]
    struct CoarseClockStore {
        inner: MemoryStore,
        intruder: String,
    }

    #[async_trait]
    impl Storage for CoarseClockStore {
        fn location(&self) -> String {
            self.inner.location()
        }
        async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
            self.inner.get(key, range).await
        }
        async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> StorageResult<()> {
            self.inner.put(key, data, mode).await
        }
        async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
            if prefix.is_empty() {
                let data = Bytes::from_static(b"uploaded by a snapshot that just started");
                self.inner
                    .put(&self.intruder, data, PutMode::Overwrite)
                    .await?;
            }
            let mut all = self.inner.list(prefix).await?;
            for m in &mut all {
                m.modified_ms = m.modified_ms.map(|t| t - t.rem_euclid(1000));
            }
            Ok(all)
        }
        async fn delete(&self, key: &str) -> StorageResult<()> {
            self.inner.delete(key).await
        }
        async fn head(&self, key: &str) -> StorageResult<ObjectMeta> {
            self.inner.head(key).await
        }
    }

    use crate::storage::StorageResult;

    #[test]
    fn an_object_written_after_cleanup_started_survives_whole_second_timestamps() {
        let intruder = keys::pack(&Id::of(b"a pack of a snapshot in flight"));
        let store = Arc::new(CoarseClockStore {
            inner: MemoryStore::new(),
            intruder: intruder.clone(),
        });
        let repo = Repo::init_in(store.clone(), RepoConfig::new("t".into(), 0)).unwrap();
        // Whatever the sub-second phase, the intruder is written after
        // cleanup's start and must be judged young, even with no grace.
        for _ in 0..20 {
            let report = cleanup(&repo, Duration::ZERO, false).unwrap();
            assert!(!report.keys.contains(&intruder), "{:?}", report.keys);
            block_on(store.inner.head(&intruder)).unwrap();
            std::thread::sleep(Duration::from_millis(37));
        }
    }

    #[test]
    fn whole_second_times_are_read_as_the_end_of_their_second() {
        assert_eq!(latest_possible(5_000), 5_999);
        assert_eq!(latest_possible(5_321), 5_321);
        assert_eq!(latest_possible(-1_000), -1);
    }
}
