//! Builders for the values the core's unit tests make again and again:
//! tree nodes, trees stored by id, snapshot summaries, blob entries. Defaults are plain
//! (mode 0o644 for files and 0o755 for folders, times and inode 0, a
//! successful snapshot with nothing in it) so a test states only what it
//! is about.

use std::collections::HashMap;

use crate::core::format::blob::{BlobEntry, BlobKind};
use crate::core::format::codec::Codec;
use crate::core::format::id::Id;
use crate::core::format::manifest::{SnapshotState, SnapshotSummary};
use crate::core::format::tree::{Node, NodeType, Tree};

/// A regular file made of `chunks`, in order; its size is theirs.
pub fn file(name: &str, chunks: &[&[u8]]) -> Node {
    Node {
        name: name.into(),
        kind: NodeType::File,
        mode: 0o644,
        mtime_ns: 0,
        size: chunks.iter().map(|c| c.len() as u64).sum(),
        inode: 0,
        chunks: chunks.iter().map(|c| Id::of(c)).collect(),
        subtree: None,
        ..Default::default()
    }
}

/// A folder whose entries are the tree `subtree`.
pub fn dir(name: &str, subtree: Id) -> Node {
    Node {
        name: name.into(),
        kind: NodeType::Dir,
        mode: 0o755,
        mtime_ns: 0,
        size: 0,
        inode: 0,
        chunks: vec![],
        subtree: Some(subtree),
        ..Default::default()
    }
}

impl Node {
    pub fn with_mtime(mut self, mtime_ns: i64) -> Node {
        self.mtime_ns = mtime_ns;
        self
    }

    pub fn with_inode(mut self, inode: u64) -> Node {
        self.inode = inode;
        self
    }

    /// The file's chunks by id and a size of its own, which need not be
    /// theirs (for tests of files whose chunks disagree with their size).
    pub fn with_chunks(mut self, chunks: Vec<Id>, size: u64) -> Node {
        self.chunks = chunks;
        self.size = size;
        self
    }
}

/// Adds `tree` to `trees` under its id; returns the id.
pub fn store(trees: &mut HashMap<Id, Tree>, tree: Tree) -> Id {
    let id = tree.id();
    trees.insert(id, tree);
    id
}

/// A successful snapshot named `name` (uuid `uuid-NAME`) with nothing in it.
pub fn summary(name: &str) -> SnapshotSummary {
    SnapshotSummary {
        snapshot: name.into(),
        uuid: format!("uuid-{name}"),
        state: SnapshotState::Success,
        start_time_in_millis: 0,
        end_time_in_millis: 0,
        indices: vec![],
        include_global_state: false,
        size_in_bytes: 0,
        new_bytes: 0,
        new_stored_bytes: 0,
        files: 0,
        failures: 0,
        manifest: None,
        policy: None,
    }
}

/// A raw data blob holding `data`, stored at `offset` in its pack.
pub fn entry(data: &[u8], offset: u64) -> BlobEntry {
    BlobEntry {
        id: Id::of(data),
        offset,
        stored_len: data.len() as u32,
        raw_len: data.len() as u32,
        kind: BlobKind::Data,
        codec: Codec::Raw,
    }
}
