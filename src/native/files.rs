//! File-level access to one snapshot for `snapshot ls` and `snapshot dump`:
//! find a path (`core::policy::snapshot_path`), walk what lies below it in
//! sorted order, and read a file's chunks as a stream, each checked against
//! its SHA-256 before a byte of it is handed on.

use std::collections::VecDeque;
use std::io::Read;

use futures::future::try_join_all;
use serde::Serialize;

use crate::core::format::id::Id;
use crate::core::format::index::RepoIndex;
use crate::core::format::manifest::{Manifest, GLOBAL_STATE};
use crate::core::format::tree::{Node, NodeType, Tree};
use crate::core::policy::snapshot_path::{display_path, resolve, SnapshotPath};
use crate::native::error::{Error, Result};
use crate::native::repo::Repo;
use crate::native::runtime::block_on;

/// Chunks fetched at once while streaming a file: enough requests in
/// flight to hide an object store's latency, at most this many chunks
/// (8 MiB each at most) held.
const PREFETCH: usize = 4;

/// One entry of a snapshot as `snapshot ls` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// Relative to the snapshotted data directory (`logs/sub/a.log`).
    pub path: String,
    #[serde(rename = "type")]
    pub kind: NodeType,
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// How a file was cut when not by content (`pages:8KiB`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunking: Option<String>,
}

impl Listed {
    fn of(path: String, n: &Node) -> Listed {
        Listed {
            path,
            kind: n.kind,
            mode: n.mode,
            size: n.size,
            mtime_ns: n.mtime_ns,
            target: n.target().map(str::to_string),
            chunking: n.chunking.map(|c| c.name()),
        }
    }
}

/// What a path names: its entry (none for the global state, which is no
/// folder of its own), its node when it is not a folder, and its listing
/// when it is one.
pub struct Found {
    pub entry: Option<Listed>,
    pub node: Option<Node>,
    pub tree: Option<Tree>,
}

/// One snapshot, opened for reading its files.
pub struct SnapshotFiles<'a> {
    repo: &'a Repo,
    pub index: RepoIndex,
    pub manifest: Manifest,
}

impl<'a> SnapshotFiles<'a> {
    pub fn open(repo: &'a Repo, snapshot: &str) -> Result<SnapshotFiles<'a>> {
        let (root, index) = repo.root_and_index()?;
        let manifest = block_on(crate::repo::views::manifest_named(
            repo.reader(),
            &root,
            snapshot,
        ))?;
        Ok(SnapshotFiles {
            repo,
            index,
            manifest,
        })
    }

    /// What `path` (relative to `--index` when given) names; `None` for the
    /// whole snapshot.
    pub fn resolve(&self, path: &str, index: Option<&str>) -> Result<Option<SnapshotPath>> {
        let m = &self.manifest;
        resolve(
            path,
            index,
            |n| m.indices.contains_key(n),
            m.global_state.is_some(),
        )
        .map_err(|e| match e {
            crate::core::policy::snapshot_path::SnapshotPathError::NoSuchEntry(what) => {
                Error::NotFound(format!("{what} in snapshot [{}]", m.snapshot))
            }
            other => Error::Usage(other.to_string()),
        })
    }

    fn missing(&self, at: &SnapshotPath) -> Error {
        Error::NotFound(format!(
            "{} in snapshot [{}]",
            at.display(),
            self.manifest.snapshot
        ))
    }

    /// Follows `at` from its index's root tree.
    pub fn find(&self, at: &SnapshotPath) -> Result<Found> {
        let global = at.index == GLOBAL_STATE;
        let stats = if global {
            self.manifest.global_state.as_ref()
        } else {
            self.manifest.indices.get(&at.index)
        }
        .ok_or_else(|| {
            Error::NotFound(format!(
                "index [{}] in snapshot [{}]",
                at.index, self.manifest.snapshot
            ))
        })?;
        let mut tree = self.load(stats.tree)?;
        let mut found = Found {
            entry: (!global).then(|| Listed {
                path: at.index.clone(),
                kind: NodeType::Dir,
                mode: stats.root_mode.unwrap_or(0o755),
                size: 0,
                mtime_ns: stats.root_mtime_ns.unwrap_or(0),
                target: None,
                chunking: None,
            }),
            node: None,
            tree: None,
        };
        let parts: Vec<&str> = at.rel.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            let node = tree.get(part).cloned().ok_or_else(|| self.missing(at))?;
            let path = display_path(&at.index, &parts[..=i].join("/"));
            found.entry = Some(Listed::of(path, &node));
            match (node.kind, node.subtree) {
                (NodeType::Dir, sub) => tree = self.load(sub)?,
                _ if i + 1 == parts.len() => {
                    found.node = Some(node);
                    return Ok(found);
                }
                _ => return Err(self.missing(at)),
            }
        }
        found.tree = Some(tree);
        Ok(found)
    }

    fn load(&self, tree: Option<Id>) -> Result<Tree> {
        match tree {
            Some(t) => self.repo.tree(&self.index, &t),
            None => Ok(Tree::default()),
        }
    }

    /// Visits everything below a folder whose path is `base`, depth first
    /// in name order, with each entry's node.
    pub fn walk(
        &self,
        tree: Tree,
        base: &str,
        visit: &mut dyn FnMut(&Listed, &Node) -> Result<()>,
    ) -> Result<()> {
        let join = |base: &str, name: &str| {
            if base.is_empty() {
                name.to_string()
            } else {
                format!("{base}/{name}")
            }
        };
        let mut pending: Vec<(String, Node)> = Vec::new();
        let push = |pending: &mut Vec<(String, Node)>, base: &str, tree: Tree| {
            let mut nodes = tree.nodes;
            nodes.sort_by(|a, b| a.name.cmp(&b.name));
            pending.extend(nodes.into_iter().rev().map(|n| (join(base, &n.name), n)));
        };
        push(&mut pending, base, tree);
        while let Some((path, node)) = pending.pop() {
            visit(&Listed::of(path.clone(), &node), &node)?;
            if node.kind == NodeType::Dir {
                push(&mut pending, &path, self.load(node.subtree)?);
            }
        }
        Ok(())
    }

    /// A reader of a file's contents. Refuses, before anything is read, a
    /// file whose chunks do not add up to its size.
    pub fn contents(&self, path: &str, node: &Node) -> Result<ChunkReader<'_>> {
        let mut total = 0u64;
        for c in &node.chunks {
            total += self
                .index
                .get(c)
                .ok_or(Error::BlobMissing {
                    kind: "chunk",
                    id: *c,
                })?
                .raw_len as u64;
        }
        if total != node.size {
            return Err(Error::DamagedSnapshot {
                snapshot: self.manifest.snapshot.clone(),
                detail: format!(
                    "{path}: its chunks hold {total} bytes but the snapshot records {}",
                    node.size
                ),
            });
        }
        Ok(ChunkReader {
            repo: self.repo,
            index: &self.index,
            chunks: node.chunks.clone().into(),
            ready: VecDeque::new(),
            at: 0,
        })
    }
}

/// A file's bytes, fetched a few chunks ahead and checked chunk by chunk.
pub struct ChunkReader<'a> {
    repo: &'a Repo,
    index: &'a RepoIndex,
    chunks: VecDeque<Id>,
    ready: VecDeque<Vec<u8>>,
    /// Bytes of the front ready chunk already read.
    at: usize,
}

impl ChunkReader<'_> {
    fn fetch(&mut self) -> Result<()> {
        let n = self.chunks.len().min(PREFETCH);
        let ids: Vec<Id> = self.chunks.drain(..n).collect();
        let reader = self.repo.reader();
        let reads = ids.iter().map(|id| reader.read_blob(self.index, id));
        self.ready.extend(block_on(try_join_all(reads))?);
        Ok(())
    }
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(front) = self.ready.front() {
                if self.at < front.len() {
                    let n = buf.len().min(front.len() - self.at);
                    buf[..n].copy_from_slice(&front[self.at..self.at + n]);
                    self.at += n;
                    return Ok(n);
                }
                self.ready.pop_front();
                self.at = 0;
                continue;
            }
            if self.chunks.is_empty() {
                return Ok(0);
            }
            self.fetch().map_err(std::io::Error::other)?;
        }
    }
}
