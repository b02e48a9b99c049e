//! `repo check`: structure (every referenced blob is indexed, every indexed
//! blob's pack exists and is long enough, every manifest and tree decodes)
//! and, with `--read-data`, a re-hash of every blob. What it finds is a
//! typed list ([`Finding`]) naming the snapshots and files each problem
//! affects.

use std::collections::{BTreeSet, HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

use crate::core::format::blob::{BlobEntry, BlobKind};
use crate::core::format::id::Id;
use crate::core::format::index::RepoIndex;
use crate::core::format::keys;
use crate::core::format::manifest::{Manifest, GLOBAL_STATE};
use crate::core::format::pack::{parse_pack, TRAILER_LEN};
use crate::core::format::root::Root;
use crate::core::format::tree::Tree;
use crate::core::plan::shape::{check_declared, EntryProblem, ShapeError, Shapes};
use crate::core::policy::read_subset::choose_subset;
use crate::native::clock::now_millis;
use crate::native::error::{Error, Result};
use crate::native::findings::{self, Damage, FileRef, Finding, FindingKind};
use crate::native::inflight;
use crate::native::progress::Progress;
use crate::native::repo::{decode_verified, Repo};
use crate::native::runtime::block_on;
use crate::native::trees::walk_paths;

#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub generation: u64,
    pub snapshots: usize,
    pub index_files: usize,
    pub packs: usize,
    pub blobs: usize,
    pub trees_checked: usize,
    pub packs_read: usize,
    pub bytes_read: u64,
    /// Packs on storage that no index lists (left by interrupted work).
    pub unindexed_packs: usize,
    /// Everything found wrong, in the order found.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// One line per problem not tied to files.
    pub fn problem_lines(&self) -> Vec<String> {
        findings::problem_lines(&self.findings)
    }

    /// Every file a bad blob affects.
    pub fn damaged(&self) -> Vec<Damage> {
        findings::damage(&self.findings)
    }

    /// How many lines the problems take: one per problem, one per damaged
    /// file.
    pub fn problem_count(&self) -> usize {
        self.problem_lines().len() + self.damaged().len()
    }
}

/// A blob found bad: missing or damaged, and why.
type BadBlob = (FindingKind, String);

/// What re-reading one pack found.
struct PackCheck {
    problems: Vec<Finding>,
    /// Blobs that do not decode or hash to their id.
    damaged: Vec<(Id, BadBlob)>,
    bytes: u64,
}

/// How much pack data `check` downloads and re-hashes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadData {
    /// Structure only.
    None,
    /// Every pack.
    All,
    /// About this fraction (0..=1) of the packs, a different random choice
    /// each run, so repeated runs cover the repository over time.
    Subset(f64),
}

/// Signs that a newer root generation than `root` existed and was lost:
/// `index.latest` naming a missing generation, and manifests no root lists
/// that were written after the newest root while no snapshot is running.
fn rollback_signs(repo: &Repo, root: &Root) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    if let Some(hinted) = repo.lost_generation() {
        out.push(Finding::new(
            FindingKind::LostRoot,
            keys::root(hinted),
            format!(
                "index.latest names generation {hinted} but index-{hinted} is missing (the newest root is index-{}): a root object was lost",
                root.generation
            ),
        ));
    }
    if root.generation == 0 || !inflight::scan(repo, now_millis())?.live.is_empty() {
        return Ok(out);
    }
    let root_ms = block_on(repo.store.head(&keys::root(root.generation)))?.modified_ms;
    let listed: HashSet<String> = root
        .snapshots
        .iter()
        .map(|s| keys::manifest(&s.uuid))
        .collect();
    for m in block_on(repo.store.list(keys::SNAPSHOT_PREFIX))? {
        let newer = match (m.modified_ms, root_ms) {
            (Some(t), Some(r)) => t >= r,
            _ => false,
        };
        if newer && !listed.contains(&m.key) {
            let detail = format!(
                "{} is newer than the newest root index-{} and no root lists it: a newer root generation may have been lost",
                m.key, root.generation
            );
            out.push(Finding::new(FindingKind::UnlistedManifest, m.key, detail));
        }
    }
    Ok(out)
}

/// What a check has learnt so far; each step below adds to it.
struct Checker<'a> {
    repo: &'a Repo,
    report: CheckReport,
    index: RepoIndex,
    /// Every pack the index files list, with their entries.
    pack_tables: HashMap<Id, Vec<BlobEntry>>,
    /// Packs on storage and their sizes.
    stored: HashMap<Id, u64>,
    /// Blobs found missing or damaged, and why.
    bad_blobs: HashMap<Id, BadBlob>,
    manifests: Vec<Manifest>,
    trees: HashMap<Id, Tree>,
    unreadable: HashSet<Id>,
    /// Snapshots whose trees a restore would refuse (not expanded).
    misshapen: HashSet<String>,
}

pub fn check(repo: &Repo, read_data: ReadData, progress: bool) -> Result<CheckReport> {
    let root = repo.root()?;
    let mut c = Checker {
        repo,
        report: CheckReport {
            generation: root.generation,
            snapshots: root.snapshots.len(),
            index_files: root.index_files.len(),
            findings: rollback_signs(repo, &root)?,
            ..Default::default()
        },
        index: RepoIndex::new(),
        pack_tables: HashMap::new(),
        stored: HashMap::new(),
        bad_blobs: HashMap::new(),
        manifests: Vec::new(),
        trees: HashMap::new(),
        unreadable: HashSet::new(),
        misshapen: HashSet::new(),
    };
    c.load_index_files(&root);
    c.check_pack_sizes()?;
    c.load_manifests(&root);
    c.load_trees();
    c.check_shapes();
    if read_data != ReadData::None {
        c.read_packs(read_data, progress);
    }
    c.map_damage();
    Ok(c.report)
}

impl Checker<'_> {
    fn load_index_files(&mut self, root: &Root) {
        for id in &root.index_files {
            let key = keys::index_file(id);
            let loaded = self
                .repo
                .get(&key)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    if Id::of(&b) != *id {
                        return Err("content does not match its name".to_string());
                    }
                    crate::core::format::index::IndexFile::decode(&b).map_err(|e| e.to_string())
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
    fn check_pack_sizes(&mut self) -> Result<()> {
        self.stored = block_on(self.repo.store.list(keys::PACK_PREFIX))?
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

    fn load_manifests(&mut self, root: &Root) {
        for s in &root.snapshots {
            match self.repo.manifest(s) {
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
    fn load_trees(&mut self) {
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
            match self.repo.tree(&self.index, &id) {
                Ok(t) => {
                    for n in &t.nodes {
                        for c in n.chunks.iter().filter(|c| !self.index.contains(c)) {
                            self.bad_blobs.entry(*c).or_insert_with(|| {
                                let why = "not in the repository index".to_string();
                                (FindingKind::BlobMissing, why)
                            });
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

    /// What restore would refuse, per snapshot and index: unsafe entries,
    /// sizes that disagree with their chunks, trees that expand past what
    /// the manifest declares or past the limits. Only snapshots that pass
    /// are later expanded path by path.
    fn check_shapes(&mut self) {
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

    /// Downloads the chosen packs and re-hashes every blob.
    fn read_packs(&mut self, read_data: ReadData, progress: bool) {
        let mut packs: Vec<(&Id, &Vec<BlobEntry>)> = self
            .pack_tables
            .iter()
            .filter(|(p, _)| self.stored.contains_key(p))
            .collect();
        if let ReadData::Subset(fraction) = read_data {
            // A fresh salt each run: repeated runs read different packs.
            let salt = uuid::Uuid::new_v4();
            packs = choose_subset(packs, fraction, salt.as_bytes());
        }
        let total: u64 = packs.iter().map(|(p, _)| self.stored[p]).sum();
        let bar = Progress::bytes(progress, total, "check");
        let repo = self.repo;
        let results: Vec<PackCheck> = packs
            .par_iter()
            .map(|(pack, entries)| read_pack(repo, pack, entries, &bar))
            .collect();
        bar.finish();
        for r in results {
            self.report.packs_read += 1;
            self.report.bytes_read += r.bytes;
            self.report.findings.extend(r.problems);
            for (id, bad) in r.damaged {
                self.bad_blobs.entry(id).or_insert(bad);
            }
        }
    }

    /// Maps bad blobs to the snapshots and files that need them; each
    /// becomes one finding.
    fn map_damage(&mut self) {
        if self.bad_blobs.is_empty() {
            return;
        }
        let mut needed: HashMap<Id, BTreeSet<FileRef>> = HashMap::new();
        for m in self
            .manifests
            .iter()
            .filter(|m| !self.misshapen.contains(&m.uuid))
        {
            for (index_name, root_tree) in m.roots() {
                let mut hit = |path: &str, id: &Id| {
                    needed.entry(*id).or_default().insert(FileRef {
                        snapshot: m.snapshot.clone(),
                        index: index_name.clone(),
                        path: path.trim_start_matches('/').to_string(),
                    });
                };
                if self.bad_blobs.contains_key(&root_tree) {
                    hit("", &root_tree);
                    continue;
                }
                let bad = &self.bad_blobs;
                let mut on_node = |path: &str, n: &crate::core::format::tree::Node| {
                    for c in n.chunks.iter().chain(n.subtree.iter()) {
                        if bad.contains_key(c) {
                            hit(path, c);
                        }
                    }
                };
                let mut on_error = |_: &str, _: Id, _: String| {};
                walk_paths(
                    self.repo,
                    &self.index,
                    root_tree,
                    "",
                    &mut on_node,
                    &mut on_error,
                );
            }
        }
        self.add_blob_findings(needed);
    }

    /// One finding per bad blob: those snapshots need first, then, sorted
    /// by id, those no snapshot needs. A blob an earlier finding already
    /// names (a tree a misshapen snapshot misses) is not repeated.
    fn add_blob_findings(&mut self, mut needed: HashMap<Id, BTreeSet<FileRef>>) {
        let named: HashSet<String> = self
            .report
            .findings
            .iter()
            .map(|f| f.object.clone())
            .collect();
        let mut bad: Vec<(&Id, &BadBlob)> = self.bad_blobs.iter().collect();
        bad.sort_by_key(|(id, _)| (!needed.contains_key(id), **id));
        let found: Vec<Finding> = bad
            .into_iter()
            .filter_map(|(id, (kind, why))| {
                let files = needed.remove(id).unwrap_or_default();
                if files.is_empty() && named.contains(&id.to_hex()) {
                    return None;
                }
                Some(Finding::blob(*kind, id, why, files))
            })
            .collect();
        self.report.findings.extend(found);
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
fn damaged(e: &BlobEntry) -> FindingKind {
    match e.kind {
        BlobKind::Tree => FindingKind::TreeDamaged,
        BlobKind::Data => FindingKind::BlobDamaged,
    }
}

/// Downloads one pack and re-hashes its blobs.
fn read_pack(repo: &Repo, pack: &Id, entries: &[BlobEntry], bar: &Progress) -> PackCheck {
    let key = keys::pack(pack);
    let mut problems = Vec::new();
    let mut bad = Vec::new();
    let bytes = match block_on(repo.store.get(&key, None)) {
        Ok(b) => b,
        Err(e) => {
            let detail = format!("pack {}: {e}", pack.short());
            problems.push(Finding::new(FindingKind::PackUnreadable, key, detail));
            return PackCheck {
                problems,
                damaged: bad,
                bytes: 0,
            };
        }
    };
    bar.inc(bytes.len() as u64);
    if Id::of(&bytes) != *pack {
        let detail = format!("pack {} does not match its SHA-256", pack.short());
        problems.push(Finding::new(FindingKind::PackHashMismatch, &key, detail));
    }
    if let Err(e) = parse_pack(&bytes) {
        let detail = format!("pack {}: {e}", pack.short());
        problems.push(Finding::new(FindingKind::PackUnreadable, &key, detail));
    }
    for e in entries {
        let stored = bytes.get(e.offset as usize..e.end() as usize);
        match stored.map(|s| decode_verified(e, s)) {
            Some(Ok(_)) => {}
            Some(Err(err)) => bad.push((e.id, (damaged(e), err.to_string()))),
            None => bad.push((e.id, (damaged(e), "lies outside its pack".into()))),
        }
    }
    PackCheck {
        problems,
        damaged: bad,
        bytes: bytes.len() as u64,
    }
}
