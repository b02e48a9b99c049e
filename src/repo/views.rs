//! Read-only views every shell offers: repository statistics, snapshot
//! diffs, a path inside a snapshot, and byte ranges of a file assembled from
//! its chunks (a lazily read, searchable snapshot).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use bytes::Bytes;
use serde::Serialize;

use crate::core::format::codec::Codec;
use crate::core::format::id::Id;
use crate::core::format::index::RepoIndex;
use crate::core::format::keys;
use crate::core::format::manifest::{Manifest, GLOBAL_STATE};
use crate::core::format::root::Root;
use crate::core::format::tree::{Node, NodeType, Tree};
use crate::core::lazy::layout::FileLayout;
use crate::core::lazy::reader::{ChunkSource, LazyReader, ReadAhead, ReadAnswer};
use crate::core::plan::diff::{diff_level, Change, ChangeKind, Descend, DiffBudget};
use crate::error::{Error, Result};
use crate::repo::reader::{stored_in, RepoReader};

#[derive(Debug, Clone, Default, Serialize)]
pub struct RepoStats {
    pub location: String,
    pub generation: u64,
    pub snapshots: usize,
    /// Sum of every snapshot's plain size: what a full copy of each would take.
    pub logical_bytes: u64,
    /// Bytes of every object in the repository.
    pub stored_bytes: u64,
    pub pack_bytes: u64,
    pub packs: usize,
    pub blobs: usize,
    /// Blobs stored as patches over an earlier version of their page group
    /// (docs/FORMAT.md, "Patch blobs").
    pub patch_blobs: usize,
    pub index_files: usize,
    /// logical_bytes / stored_bytes.
    pub dedup_ratio: f64,
}

pub async fn stats(reader: &RepoReader) -> Result<RepoStats> {
    let (root, index) = reader.root_and_index().await?;
    let objects = reader.store.list("").await?;
    let packs: Vec<_> = objects
        .iter()
        .filter(|m| m.key.starts_with(keys::PACK_PREFIX))
        .collect();
    let logical: u64 = root.snapshots.iter().map(|s| s.size_in_bytes).sum();
    // The reserve is allocated free space, not stored data.
    let stored: u64 = objects
        .iter()
        .filter(|m| m.key != keys::RESERVE)
        .map(|m| m.size)
        .sum();
    Ok(RepoStats {
        location: reader.location(),
        generation: root.generation,
        snapshots: root.snapshots.len(),
        logical_bytes: logical,
        stored_bytes: stored,
        pack_bytes: packs.iter().map(|m| m.size).sum(),
        packs: packs.len(),
        blobs: index.blob_count(),
        patch_blobs: index
            .iter()
            .filter(|(_, at)| at.codec == Codec::Patch)
            .count(),
        index_files: root.index_files.len(),
        dedup_ratio: if stored == 0 {
            0.0
        } else {
            logical as f64 / stored as f64
        },
    })
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DiffReport {
    pub from: String,
    pub to: String,
    pub added: usize,
    pub removed: usize,
    pub modified: usize,
    pub metadata: usize,
    pub changes: Vec<Change>,
}

/// The manifest of the snapshot called `name` in `root`.
pub async fn manifest_named(reader: &RepoReader, root: &Root, name: &str) -> Result<Manifest> {
    let summary = root
        .snapshot(name)
        .ok_or_else(|| Error::SnapshotMissing(name.to_string()))?;
    reader.manifest(summary).await
}

/// Compares two snapshots, index by index, reading only the trees along
/// changed paths.
pub async fn diff(reader: &RepoReader, from: &str, to: &str) -> Result<DiffReport> {
    let (root, index) = reader.root_and_index().await?;
    let a = manifest_named(reader, &root, from).await?;
    let b = manifest_named(reader, &root, to).await?;
    let roots = |m: &Manifest| -> BTreeMap<String, Id> { m.roots().into_iter().collect() };
    let (ra, rb) = (roots(&a), roots(&b));
    let names: BTreeSet<&String> = ra.keys().chain(rb.keys()).collect();
    let mut queue: Vec<Descend> = names
        .into_iter()
        .map(|n| Descend {
            path: n.clone(),
            old: ra.get(n).copied(),
            new: rb.get(n).copied(),
        })
        .filter(Descend::is_needed)
        .collect();
    let (ta, tb) = (a.totals(), b.totals());
    let mut budget = DiffBudget::new(
        ta.files.saturating_add(tb.files),
        ta.dirs.saturating_add(tb.dirs),
    );
    let mut changes = Vec::new();
    while let Some(d) = queue.pop() {
        let old = load(reader, &index, d.old).await?;
        let new = load(reader, &index, d.new).await?;
        let (c, more) = diff_level(&d.path, &old, &new);
        budget
            .charge(&c, &more)
            .map_err(|e| Error::DamagedSnapshot {
                snapshot: format!("{from}] or [{to}"),
                detail: e.to_string(),
            })?;
        changes.extend(c);
        queue.extend(more.into_iter().filter(Descend::is_needed));
    }
    changes.sort_by(|x, y| x.path.cmp(&y.path));
    let count = |k: ChangeKind| changes.iter().filter(|c| c.change == k).count();
    Ok(DiffReport {
        from: from.into(),
        to: to.into(),
        added: count(ChangeKind::Added),
        removed: count(ChangeKind::Removed),
        modified: count(ChangeKind::Modified),
        metadata: count(ChangeKind::Metadata),
        changes,
    })
}

async fn load(reader: &RepoReader, index: &RepoIndex, id: Option<Id>) -> Result<Tree> {
    match id {
        None => Ok(Tree::default()),
        Some(id) => reader.tree(index, &id).await,
    }
}

/// What a path inside one index of a snapshot is. One lives per request,
/// so a node held inline (larger since tree encoding 2) costs nothing.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Located {
    /// A folder (the index itself for the empty path) and its listing.
    Dir(Tree),
    /// A file or symlink.
    Entry(Node),
}

/// Follows `path` (`/`-separated, relative to the index folder; empty for
/// the folder itself) from an index's root tree. `index_name` is an index of
/// the manifest or `_global_state`.
pub async fn locate(
    reader: &RepoReader,
    index: &RepoIndex,
    manifest: &Manifest,
    index_name: &str,
    path: &str,
) -> Result<Located> {
    let stats = if index_name == GLOBAL_STATE {
        manifest.global_state.as_ref()
    } else {
        manifest.indices.get(index_name)
    }
    .ok_or_else(|| {
        Error::NotFound(format!(
            "index [{index_name}] in snapshot [{}]",
            manifest.snapshot
        ))
    })?;
    let missing = || {
        Error::NotFound(format!(
            "{index_name}/{path} in snapshot [{}]",
            manifest.snapshot
        ))
    };
    let root = match stats.tree {
        Some(t) => reader.tree(index, &t).await?,
        None => Tree::default(),
    };
    let located = walk_path(reader, index, root.clone(), path)
        .await?
        .ok_or_else(missing)?;
    // A hard link reads as the file whose chunks it shares (tree encoding
    // 2: the first path of its inode, in the same index), under its own
    // name.
    let link = match &located {
        Located::Entry(n) if n.kind == NodeType::File => n.link().map(str::to_string),
        _ => None,
    };
    let Some(link) = link else {
        return Ok(located);
    };
    match walk_path(reader, index, root, &link).await? {
        Some(Located::Entry(mut first))
            if first.kind == NodeType::File && first.link().is_none() =>
        {
            if let Located::Entry(n) = located {
                first.name = n.name;
            }
            Ok(Located::Entry(first))
        }
        _ => Err(missing()),
    }
}

/// Follows `path` down from `tree`; `None` when it names nothing.
async fn walk_path(
    reader: &RepoReader,
    index: &RepoIndex,
    mut tree: Tree,
    path: &str,
) -> Result<Option<Located>> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let Some(node) = tree.nodes.iter().find(|n| n.name == *part).cloned() else {
            return Ok(None);
        };
        match (node.kind, node.subtree) {
            (NodeType::Dir, Some(sub)) => tree = reader.tree(index, &sub).await?,
            _ if i + 1 == parts.len() => return Ok(Some(Located::Entry(node))),
            _ => return Ok(None),
        }
    }
    Ok(Some(Located::Dir(tree)))
}

/// Bytes `range` of a file (cut to its size), assembled from just the chunks
/// that overlap it, each read by range and verified before use: the core's
/// [`LazyReader`] without a cache, the same reads a mount makes (used by
/// the node's and the Worker's file views and the inspector's downloads).
pub async fn read_file_range(
    reader: &RepoReader,
    index: &RepoIndex,
    file: &Node,
    range: Range<u64>,
) -> Result<Vec<u8>> {
    let start = range.start.min(file.size);
    let len = range.end.clamp(start, file.size) - start;
    let mut out = Vec::new();
    out.try_reserve_exact(len as usize)
        .map_err(|_| Error::OutOfMemory { bytes: len })?;
    let mut lazy = LazyReader::new(FileLayout::of(file, index)?, ReadAhead::NONE);
    let mut held = Held::default();
    // The second answer is always ready: the first fetch brought every
    // chunk the range needs.
    for _ in 0..2 {
        match lazy.read(start, len, &mut held) {
            ReadAnswer::Ready(bytes) => {
                out.extend_from_slice(&bytes);
                return Ok(out);
            }
            ReadAnswer::Need(reads) => {
                for r in reads {
                    let bytes = reader
                        .store
                        .get(&keys::pack(&r.pack), Some(r.offset..r.offset + r.length))
                        .await?;
                    let bases = reader.bases(index, r.blobs.iter().map(|e| &e.id)).await?;
                    for e in &r.blobs {
                        let stored = stored_in(&bytes, &r, e)?;
                        held.0.insert(
                            e.id,
                            Bytes::from(reader.decode_verified(e, stored, &bases)?),
                        );
                    }
                }
            }
        }
    }
    Err(Error::Integrity {
        id: file.chunks.first().copied().unwrap_or(Id([0; 32])),
        detail: format!("bytes {start}+{len} still missing after fetching them"),
    })
}

/// The chunks one read fetched, held only while it is answered.
#[derive(Default)]
struct Held(std::collections::HashMap<Id, Bytes>);

impl ChunkSource for Held {
    fn contains(&self, id: &Id) -> bool {
        self.0.contains_key(id)
    }

    fn chunk(&mut self, id: &Id) -> Option<Bytes> {
        self.0.get(id).cloned()
    }
}
