//! The structural steps of a check: index files, pack sizes, manifests,
//! trees and their shapes. Each adds to what the [`Checker`] has learnt.

use std::collections::{HashMap, HashSet};

use crate::core::format::blob::{BlobEntry, BlobKind};
use crate::core::format::id::Id;
use crate::core::format::index::{IndexFile, RepoIndex};
use crate::core::format::keys;
use crate::core::format::manifest::{Manifest, GLOBAL_STATE};
use crate::core::format::pack::TRAILER_LEN;
use crate::core::format::root::Root;
use crate::core::format::tree::Tree;
use crate::core::plan::shape::{check_declared, EntryProblem, ShapeError, Shapes};
use crate::error::{Error, Result};
use crate::repo::findings::{FileRef, Finding, FindingKind};
use crate::repo::RepoReader;

use super::CheckReport;

/// A blob found bad: missing or damaged, and why.
pub(super) type BadBlob = (FindingKind, String);

/// What a check has learnt so far; each step adds to it.
pub(super) struct Checker<'a> {
    pub(super) reader: &'a RepoReader,
    pub(super) report: CheckReport,
    pub(super) index: RepoIndex,
    /// Every pack the index files list, with their entries.
    pub(super) pack_tables: HashMap<Id, Vec<BlobEntry>>,
    /// Packs on storage and their sizes.
    pub(super) stored: HashMap<Id, u64>,
    /// Blobs found missing or damaged, and why.
    pub(super) bad_blobs: HashMap<Id, BadBlob>,
    pub(super) manifests: Vec<Manifest>,
    pub(super) trees: HashMap<Id, Tree>,
    unreadable: HashSet<Id>,
    /// Snapshots whose trees a restore would refuse (not expanded).
    pub(super) misshapen: HashSet<String>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(reader: &'a RepoReader, report: CheckReport) -> Checker<'a> {
        Checker {
            reader,
            report,
            index: RepoIndex::new(),
            pack_tables: HashMap::new(),
            stored: HashMap::new(),
            bad_blobs: HashMap::new(),
            manifests: Vec::new(),
            trees: HashMap::new(),
            unreadable: HashSet::new(),
            misshapen: HashSet::new(),
        }
    }

    pub(super) async fn load_index_files(&mut self, root: &Root) {
        for id in &root.index_files {
            let key = keys::index_file(id);
            let loaded = self
                .reader
                .get(&key)
                .await
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    if Id::of(&b) != *id {
                        return Err("content does not match its name".to_string());
                    }
                    IndexFile::decode(&b).map_err(|e| e.to_string())
                });
            match loaded {
                Ok(f) => {
                    self.index.merge(&f);
                    for (p, entries) in f.packs {
                        self.pack_tables.entry(p).or_default().extend(entries);
                    }
                }
                Err(e) => {
                    let detail = format!("index file {key}: {e}");
                    let found = Finding::new(FindingKind::IndexFileUnreadable, key, detail);
                    self.report.findings.push(found);
                }
            }
        }
        self.report.blobs = self.index.blob_count();
        self.report.packs = self.pack_tables.len();
    }

    /// Packs exist and are long enough for their blobs.
    pub(super) async fn check_pack_sizes(&mut self) -> Result<()> {
        self.stored = self
            .reader
            .store
            .list(keys::PACK_PREFIX)
            .await?
            .into_iter()
            .filter_map(|m| keys::parse_pack(&m.key).map(|id| (id, m.size)))
            .collect();
        self.report.unindexed_packs = self
            .stored
            .keys()
            .filter(|p| !self.pack_tables.contains_key(p))
            .count();
        for (pack, entries) in &self.pack_tables {
            match self.stored.get(pack) {
                None => {
                    self.report.findings.push(Finding::new(
                        FindingKind::PackMissing,
                        keys::pack(pack),
                        format!(
                            "pack {} is in the index but missing from storage",
                            pack.short()
                        ),
                    ));
                    for e in entries {
                        let why = format!("its pack {} is missing", pack.short());
                        self.bad_blobs.insert(e.id, (missing(e), why));
                    }
                }
                Some(&size) => {
                    for e in entries
                        .iter()
                        .filter(|e| e.end().saturating_add(TRAILER_LEN as u64) > size)
                    {
                        let why = format!("lies past the end of pack {}", pack.short());
                        self.bad_blobs.insert(e.id, (damaged(e), why));
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) async fn load_manifests(&mut self, root: &Root) {
        for s in &root.snapshots {
            match self.reader.manifest(s).await {
                Ok(m) => self.manifests.push(m),
                Err(e) => self.report.findings.push(
                    Finding::new(
                        FindingKind::SnapshotUnreadable,
                        keys::manifest(&s.uuid),
                        format!("snapshot [{}]: {e}", s.snapshot),
                    )
                    .in_snapshots([s.snapshot.clone()]),
                ),
            }
        }
    }

    /// Every distinct tree the manifests reach; every chunk they name must
    /// be indexed.
    pub(super) async fn load_trees(&mut self) {
        let mut stack: Vec<Id> = self
            .manifests
            .iter()
            .flat_map(|m| m.roots())
            .map(|(_, t)| t)
            .collect();
        while let Some(id) = stack.pop() {
            if self.trees.contains_key(&id)
                || self.unreadable.contains(&id)
                || self.bad_blobs.contains_key(&id)
            {
                continue;
            }
            match self.reader.tree(&self.index, &id).await {
                Ok(t) => {
                    for n in &t.nodes {
                        for c in &n.chunks {
                            if let Some(why) = self.unreadable_chunk(c) {
                                let bad = (FindingKind::BlobMissing, why);
                                self.bad_blobs.entry(*c).or_insert(bad);
                            }
                        }
                        stack.extend(n.subtree);
                    }
                    self.trees.insert(id, t);
                }
                Err(e) => {
                    self.unreadable.insert(id);
                    let kind = match e {
                        Error::BlobMissing { .. } => FindingKind::TreeMissing,
                        Error::Storage(ref s) if s.is_not_found() => FindingKind::TreeMissing,
                        _ => FindingKind::TreeDamaged,
                    };
                    let why = format!("tree unreadable: {e}");
                    self.bad_blobs.insert(id, (kind, why));
                }
            }
        }
        self.report.trees_checked = self.trees.len() + self.unreadable.len();
    }

    /// Why chunk `c` cannot be read, if it cannot: it is not indexed, or
    /// it is a patch whose base is not indexed or is in a missing pack.
    fn unreadable_chunk(&self, c: &Id) -> Option<String> {
        if !self.index.contains(c) {
            return Some("not in the repository index".into());
        }
        let base = self.index.base_of(c)?;
        if !self.index.contains(&base) {
            return Some(format!(
                "its base {} is not in the repository index",
                base.short()
            ));
        }
        let (_, why) = self.bad_blobs.get(&base)?;
        Some(format!("its base {}: {why}", base.short()))
    }

    /// What restore would refuse, per snapshot and index: unsafe entries,
    /// sizes that disagree with their chunks, trees that expand past what
    /// the manifest declares or past the limits. Only snapshots that pass
    /// are later expanded path by path.
    pub(super) fn check_shapes(&mut self) {
        let mut shapes = Shapes::new();
        let lookup = |id: &Id| self.trees.get(id);
        let chunk_len = |id: &Id| self.index.get(id).map(|l| l.raw_len as u64);
        for m in &self.manifests {
            let declared = m
                .indices
                .iter()
                .map(|(n, s)| (n.as_str(), s))
                .chain(m.global_state.as_ref().map(|g| (GLOBAL_STATE, g)));
            for (name, stats) in declared {
                let Some(root) = stats.tree else { continue };
                if self.unreadable.contains(&root) || self.bad_blobs.contains_key(&root) {
                    continue;
                }
                shapes.of(root, &lookup, &chunk_len);
                if let Err(e) = check_declared(&shapes, &root, stats.files, stats.dirs) {
                    self.misshapen.insert(m.uuid.clone());
                    self.report.findings.push(shape_finding(m, name, &root, e));
                }
            }
        }
    }
}

/// What `check_declared` refused in one index of a snapshot.
fn shape_finding(m: &Manifest, index: &str, root: &Id, e: ShapeError) -> Finding {
    let (kind, object, path) = match &e {
        ShapeError::Entry {
            path,
            problem: EntryProblem::MissingTree(id),
        } => (FindingKind::TreeMissing, *id, Some(path)),
        ShapeError::Entry {
            path,
            problem: EntryProblem::MissingChunk(id),
        } => (FindingKind::BlobMissing, *id, Some(path)),
        ShapeError::Entry { path, .. } => (FindingKind::SnapshotMisshapen, *root, Some(path)),
        _ => (FindingKind::SnapshotMisshapen, *root, None),
    };
    let files = path.map(|p| FileRef {
        snapshot: m.snapshot.clone(),
        index: index.to_string(),
        path: p.trim_end_matches('/').to_string(),
    });
    let detail = format!("snapshot [{}] index [{index}]: {e}", m.snapshot);
    Finding::new(kind, object.to_hex(), detail)
        .in_snapshots([m.snapshot.clone()])
        .at_files(files)
}

/// The kind of finding for a blob that cannot be found.
fn missing(e: &BlobEntry) -> FindingKind {
    match e.kind {
        BlobKind::Tree => FindingKind::TreeMissing,
        BlobKind::Data => FindingKind::BlobMissing,
    }
}

/// The kind of finding for a blob that does not read back as itself.
pub(super) fn damaged(e: &BlobEntry) -> FindingKind {
    match e.kind {
        BlobKind::Tree => FindingKind::TreeDamaged,
        BlobKind::Data => FindingKind::BlobDamaged,
    }
}
