//! `repo cleanup`: removes what no snapshot needs, by the keep rule of
//! [`crate::core::policy::keep`]: this module reads the values the rule
//! judges by (markers, roots, the listing) and removes what it lets go.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;

use crate::core::format::id::Id;
use crate::core::format::index::IndexFile;
use crate::core::format::keys;
use crate::core::format::root::Root;
use crate::core::policy::keep::{self, KeepRule, Unreferenced};
use crate::native::clock::now_millis;
use crate::native::error::{Error, Result};
use crate::native::inflight;
use crate::native::repo::Repo;
use crate::native::runtime::block_on;
use crate::storage::{ObjectMeta, StorageError};

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

impl CleanupReport {
    fn removed(&mut self, meta: ObjectMeta) {
        self.objects += 1;
        self.bytes += meta.size;
        self.keys.push(meta.key);
    }
}

/// Removes objects no snapshot needs: everything the newest root does not
/// reference and the keep rule ([`crate::core::policy::keep`]) lets go.
///
/// Cleanup refuses to run while `index.latest` names a lost generation.
/// Markers of dead processes are removed once older than `grace`, and the
/// leftovers of killed writers (a local repository's temporary files) once
/// older than `grace` and [`keep::TEMP_MIN_AGE`].
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
    let markers = inflight::scan(repo, now)?;
    let (latest, _) = repo.root_and_index_files()?;
    repo.refuse_lost_root(latest.generation)?;
    let protect_from = keep::protected_from(markers.oldest_snapshot_base(), latest.generation);
    let live = referenced_since(repo, protect_from, &latest)?;
    let listing = block_on(repo.store.list(""))?;
    let rule = KeepRule {
        now_ms: now,
        grace,
        oldest_live_start_ms: markers.oldest_start(),
        latest_generation: latest.generation,
        protect_from,
        newest_root_ms: listing
            .iter()
            .find(|m| m.key == keys::root(latest.generation))
            .and_then(|m| m.modified_ms),
    };
    let expired_markers: HashSet<&str> = markers
        .stale
        .iter()
        .filter(|(_, beat)| rule.marker_expired(*beat))
        .map(|(k, _)| k.as_str())
        .collect();
    let mut report = CleanupReport {
        dry_run,
        ..Default::default()
    };
    for meta in listing {
        if live.keeps(&meta.key, &rule, &expired_markers) {
            continue;
        }
        let object = Unreferenced {
            modified_ms: meta.modified_ms,
            is_root: keys::parse_root(&meta.key).is_some(),
            expired_marker: expired_markers.contains(meta.key.as_str()),
        };
        if rule.keeps(&object) {
            report.kept_young += 1;
            continue;
        }
        if !dry_run {
            block_on(repo.store.delete(&meta.key))?;
        }
        report.removed(meta);
    }
    remove_leftovers(repo, &rule, dry_run, &mut report)?;
    Ok(report)
}

/// Half-written files of killed writers, which only a local repository has
/// (an interrupted multipart upload is aborted by its writer or expired by
/// the bucket's lifecycle rules).
fn remove_leftovers(
    repo: &Repo,
    rule: &KeepRule,
    dry_run: bool,
    report: &mut CleanupReport,
) -> Result<()> {
    for leftover in block_on(repo.store.leftovers(rule.leftovers_before()))? {
        if !dry_run {
            block_on(repo.store.remove_leftover(&leftover.key))?;
        }
        report.removed(leftover);
    }
    Ok(())
}

/// What the roots from generation `from` up to `latest` reference.
#[derive(Default)]
struct Referenced {
    packs: HashSet<Id>,
    index_files: HashSet<Id>,
    manifests: HashSet<String>,
}

impl Referenced {
    /// Whether the object at `key` is needed, or not cleanup's to judge.
    fn keeps(&self, key: &str, rule: &KeepRule, expired_markers: &HashSet<&str>) -> bool {
        if key == keys::CONFIG || key == keys::LATEST {
            return true;
        }
        if key.starts_with(inflight::PREFIX) {
            return !expired_markers.contains(key);
        }
        if let Some(n) = keys::parse_root(key) {
            return rule.keeps_root_generation(n);
        }
        if let Some(p) = keys::parse_pack(key) {
            return self.packs.contains(&p);
        }
        if let Some(id) = key
            .strip_prefix(keys::INDEX_PREFIX)
            .and_then(|h| h.parse::<Id>().ok())
        {
            return self.index_files.contains(&id);
        }
        if key.starts_with(keys::SNAPSHOT_PREFIX) {
            return self.manifests.contains(key);
        }
        // Not one of ours (e.g. a stray verify probe, or someone else's
        // object under the prefix): never touched.
        !key.starts_with("verify/")
    }
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

#[cfg(test)]
mod tests {
    use std::ops::Range;
    use std::sync::Arc;

    use async_trait::async_trait;
    use bytes::Bytes;

    use super::*;
    use crate::core::format::config::RepoConfig;
    use crate::storage::memory::MemoryStore;
    use crate::storage::{Capabilities, PutMode, Storage, StorageResult};

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
        fn capabilities(&self) -> Capabilities {
            self.inner.capabilities()
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
}
