//! Cloning a snapshot (Elasticsearch's `_clone`): a new snapshot that
//! names some indices of an existing one. Only metadata is written (a new
//! manifest and a root naming it): the clone's trees are the source's, so
//! no data is copied and no pack is added.
//!
//! Safety against a concurrent delete: the clone commits with the source
//! root's index files as its base, so a delete that rewrote the index
//! meanwhile (and may have dropped the source's blobs) makes the commit
//! conflict; the clone then starts again from the newer root, where the
//! source is either gone (missing) or still whole.

use crate::core::format::manifest::Manifest;
use crate::core::format::root::{RootChange, RootConflict};
use crate::core::policy::selection::Selection;
use crate::error::{Error, Result};
use crate::repo::RepoWriter;

/// Attempts when deletes keep rewriting the index under the clone.
const ATTEMPTS: u32 = 10;

/// One clone: names, the indices it keeps, and what it is stamped with.
pub struct CloneSnapshot<'a> {
    pub source: &'a str,
    pub target: &'a str,
    /// Which of the source's indices the clone names (at least one).
    pub indices: &'a Selection,
    /// The clone's uuid, fresh per clone.
    pub uuid: &'a str,
    /// The clone's start and end time.
    pub now_ms: i64,
}

/// Commits the clone and returns its manifest. A taken target name is a
/// [`RootConflict::DuplicateSnapshot`], a missing source
/// [`Error::SnapshotMissing`], a selection naming an index the source
/// lacks (or none) an [`Error::Selection`].
pub async fn clone_snapshot(writer: &RepoWriter, c: &CloneSnapshot<'_>) -> Result<Manifest> {
    let reader = writer.reader();
    for _ in 0..ATTEMPTS {
        let root = reader.root().await?;
        if root.snapshots.iter().any(|s| s.snapshot == c.target) {
            return Err(RootConflict::DuplicateSnapshot(c.target.to_string()).into());
        }
        let source = root
            .snapshots
            .iter()
            .find(|s| s.snapshot == c.source)
            .ok_or_else(|| Error::SnapshotMissing(c.source.to_string()))?;
        let manifest = cloned(&reader.manifest(source).await?, c)?;
        let hash = writer.put_manifest(&manifest).await?;
        let mut summary = manifest.summary();
        summary.manifest = Some(hash);
        let change = RootChange::AddSnapshot {
            summary,
            index_file: None,
            base_index_files: root.index_files.clone(),
            slot: None,
        };
        match writer.commit(&change).await {
            Ok(_) => return Ok(manifest),
            Err(Error::Conflict(conflict)) => {
                // Refused for sure: no root names this manifest.
                writer.forget_manifest(c.uuid).await;
                if conflict != RootConflict::IndexRewritten {
                    return Err(conflict.into());
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::CommitContention(ATTEMPTS))
}

/// The clone's manifest: the selected indices of `source` with their
/// trees, none of its global state, and no bytes of its own (it added
/// none to the repository).
fn cloned(source: &Manifest, c: &CloneSnapshot<'_>) -> Result<Manifest> {
    let available: Vec<String> = source.indices.keys().cloned().collect();
    let chosen = c.indices.select(&available)?;
    let indices: std::collections::BTreeMap<_, _> = chosen
        .into_iter()
        .map(|name| {
            let mut stats = source.indices[name].clone();
            stats.new_bytes = 0;
            stats.new_stored_bytes = 0;
            stats.files_read = 0;
            (name.clone(), stats)
        })
        .collect();
    Ok(Manifest {
        version: source.version,
        snapshot: c.target.to_string(),
        uuid: c.uuid.to_string(),
        state: source.state,
        start_time_in_millis: c.now_ms,
        end_time_in_millis: c.now_ms,
        failures: source
            .failures
            .iter()
            .filter(|f| indices.contains_key(&f.index))
            .cloned()
            .collect(),
        indices,
        global_state: None,
        metadata: source.metadata.clone(),
    })
}
