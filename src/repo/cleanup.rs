//! `repo cleanup`: removes what no snapshot needs, by the keep rule of
//! [`crate::core::policy::keep`]: this module reads the values the rule
//! judges by (markers, roots, the listing) and removes what it lets go.
//! The native shell adds the local disk's reserve around it.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;

use crate::core::format::id::Id;
use crate::core::format::index::IndexFile;
use crate::core::format::keys;
use crate::core::format::root::Root;
use crate::core::policy::inflight::PREFIX as MARKER_PREFIX;
use crate::core::policy::keep::{self, KeepReason, KeepRule, Unreferenced};
use crate::core::policy::pins::PREFIX as PIN_PREFIX;
use crate::error::{Error, Result};
use crate::repo::inflight::scan;
use crate::repo::pins;
use crate::repo::RepoReader;
use crate::storage::{ObjectMeta, StorageError};

#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanupReport {
    pub dry_run: bool,
    /// Unreferenced objects removed (or that would be, with --dry-run).
    pub objects: usize,
    pub bytes: u64,
    /// Unreferenced objects kept because they are younger than the grace
    /// period or than the oldest running snapshot (all of `kept`).
    pub kept_young: usize,
    /// The same objects by the reason they are kept.
    pub kept: KeptCounts,
    pub keys: Vec<String>,
}

/// Unreferenced objects kept, by [`KeepReason`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeptCounts {
    /// Younger than the grace period.
    pub grace_period: usize,
    /// Written since the oldest running snapshot or delete started (its
    /// in-flight marker is live).
    pub live_operation: usize,
    /// Written after the newest root.
    pub after_newest_root: usize,
    /// Recent root generations.
    pub recent_roots: usize,
}

impl KeptCounts {
    fn count(&mut self, reason: KeepReason) {
        match reason {
            KeepReason::Grace => self.grace_period += 1,
            KeepReason::LiveOperation => self.live_operation += 1,
            KeepReason::AfterNewestRoot => self.after_newest_root += 1,
            KeepReason::RecentRoot => self.recent_roots += 1,
        }
    }
}

impl CleanupReport {
    fn removed(&mut self, meta: ObjectMeta) {
        self.objects += 1;
        self.bytes += meta.size;
        self.keys.push(meta.key);
    }
}

/// Removes objects no snapshot needs: everything the newest root does not
/// reference and the keep rule ([`crate::core::policy::keep`]) lets go, as
/// of `now_ms`.
///
/// Cleanup refuses to run while `index.latest` names a lost generation, and
/// on a read-only repository unless it is a dry run. Markers of dead
/// processes are removed once older than `grace`, and the leftovers of
/// killed writers (a local repository's temporary files) once older than
/// `grace` and [`keep::TEMP_MIN_AGE`].
pub async fn cleanup(
    reader: &RepoReader,
    readonly: bool,
    now_ms: i64,
    grace: Duration,
    dry_run: bool,
) -> Result<CleanupReport> {
    if readonly && !dry_run {
        return Err(StorageError::ReadOnly {
            location: reader.store.location(),
        }
        .into());
    }
    let now = now_ms;
    let markers = scan(reader.store.as_ref(), now).await?;
    let (latest, _) = reader.root_and_index_files().await?;
    reader.refuse_lost_root(latest.generation)?;
    let protect_from = keep::protected_from(markers.oldest_snapshot_base(), latest.generation);
    let live = referenced_since(reader, protect_from, &latest).await?;
    let listing = reader.store.list("").await?;
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
    // Owned keys: a set of borrowed ones held across the awaits below
    // would make this future Send for one lifetime only, which a server's
    // spawned task cannot use.
    let mut expired_markers: HashSet<String> = markers
        .stale
        .iter()
        .filter(|(_, beat)| rule.marker_expired(*beat))
        .map(|(k, _)| k.clone())
        .collect();
    // Pins of killed mounts block nothing once stale; they go at once.
    expired_markers.extend(pins::scan(reader.store.as_ref(), now).await?.stale);
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
        if let Some(reason) = rule.keep_reason(&object) {
            report.kept_young += 1;
            report.kept.count(reason);
            continue;
        }
        if !dry_run {
            reader.store.delete(&meta.key).await?;
        }
        report.removed(meta);
    }
    remove_leftovers(reader, &rule, dry_run, &mut report).await?;
    Ok(report)
}

/// Half-written files of killed writers, which only a local repository has
/// (an interrupted multipart upload is aborted by its writer or expired by
/// the bucket's lifecycle rules).
async fn remove_leftovers(
    reader: &RepoReader,
    rule: &KeepRule,
    dry_run: bool,
    report: &mut CleanupReport,
) -> Result<()> {
    for leftover in reader.store.leftovers(rule.leftovers_before()).await? {
        if !dry_run {
            reader.store.remove_leftover(&leftover.key).await?;
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
    fn keeps(&self, key: &str, rule: &KeepRule, expired_markers: &HashSet<String>) -> bool {
        if key == keys::CONFIG || key == keys::LATEST {
            return true;
        }
        if key.starts_with(MARKER_PREFIX) || key.starts_with(PIN_PREFIX) {
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

async fn referenced_since(reader: &RepoReader, from: u64, latest: &Root) -> Result<Referenced> {
    let mut out = Referenced::default();
    let mut roots = vec![latest.clone()];
    for generation in from.max(1)..latest.generation {
        match reader.root_at(generation).await {
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
            let bytes = match reader.store.get(&key, None).await {
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
