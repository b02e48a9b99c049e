//! Where each byte of a snapshot file comes from: its chunks in order, each
//! with its offset in the file and its place in a pack.

use crate::core::format::blob::BlobEntry;
use crate::core::format::id::Id;
use crate::core::format::index::RepoIndex;
use crate::core::format::tree::{Node, NodeType};
use crate::core::plan::read::MissingBlob;

/// One chunk of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSpan {
    /// Offset of the chunk's first byte in the file.
    pub offset: u64,
    /// The pack that stores it, and where.
    pub pack: Id,
    pub entry: BlobEntry,
}

impl ChunkSpan {
    pub fn id(&self) -> Id {
        self.entry.id
    }

    /// Plain length of the chunk.
    pub fn len(&self) -> u64 {
        self.entry.raw_len as u64
    }

    pub fn is_empty(&self) -> bool {
        self.entry.raw_len == 0
    }

    /// Offset just past the chunk's last byte in the file.
    pub fn end(&self) -> u64 {
        self.offset + self.len()
    }
}

/// Why a node cannot be read lazily.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("{name} is a {kind}, not a file")]
    NotAFile { name: String, kind: &'static str },
    /// A hard link holds no chunks: read the file it names instead.
    #[error("{name} is a hard link to {link}: read that file")]
    HardLink { name: String, link: String },
    #[error("{0}")]
    MissingBlob(#[from] MissingBlob),
    #[error("{name}: its chunks hold {chunks} bytes but the snapshot records {size}")]
    SizeMismatch {
        name: String,
        chunks: u64,
        size: u64,
    },
}

/// A file's chunks, in order, covering `0..size` without gaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLayout {
    spans: Vec<ChunkSpan>,
    size: u64,
}

impl FileLayout {
    /// The layout of file `node`, its chunks located through `index`. The
    /// chunks must add up to the size the node records.
    pub fn of(node: &Node, index: &RepoIndex) -> Result<FileLayout, LayoutError> {
        if node.kind != NodeType::File {
            return Err(LayoutError::NotAFile {
                name: node.name.clone(),
                kind: node.kind.name(),
            });
        }
        if let Some(link) = node.link() {
            return Err(LayoutError::HardLink {
                name: node.name.clone(),
                link: link.to_string(),
            });
        }
        let mut spans = Vec::with_capacity(node.chunks.len());
        let mut offset = 0u64;
        for id in &node.chunks {
            let (pack, entry) = index.entry(id).ok_or(MissingBlob(*id))?;
            spans.push(ChunkSpan {
                offset,
                pack,
                entry,
            });
            offset = offset.saturating_add(entry.raw_len as u64);
        }
        if offset != node.size {
            return Err(LayoutError::SizeMismatch {
                name: node.name.clone(),
                chunks: offset,
                size: node.size,
            });
        }
        Ok(FileLayout {
            spans,
            size: offset,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn spans(&self) -> &[ChunkSpan] {
        &self.spans
    }

    /// The range of span numbers that hold bytes `offset..offset + len`
    /// (clamped to the file); empty when nothing is covered.
    pub fn covering(&self, offset: u64, len: u64) -> std::ops::Range<usize> {
        let end = offset.saturating_add(len).min(self.size);
        if offset >= end {
            return 0..0;
        }
        // The first span whose end lies past `offset`, and the first whose
        // start lies at or past `end`.
        let first = self.spans.partition_point(|s| s.end() <= offset);
        let last = self.spans.partition_point(|s| s.offset < end);
        first..last.max(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::{entry, file};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn indexed(chunks: &[&[u8]]) -> RepoIndex {
        let mut index = RepoIndex::new();
        let mut at = 0;
        let entries: Vec<BlobEntry> = chunks
            .iter()
            .map(|c| {
                let e = entry(c, at);
                at += c.len() as u64;
                e
            })
            .collect();
        index.add_pack(Id::of(b"pack"), &entries);
        index
    }

    #[test]
    fn covering_finds_the_chunks_of_a_range() {
        let chunks: [&[u8]; 3] = [b"aaaa", b"bb", b"cccccc"];
        let layout = FileLayout::of(&file("f", &chunks), &indexed(&chunks)).unwrap();
        assert_eq!(layout.size(), 12);
        assert_eq!(layout.covering(0, 1), 0..1);
        assert_eq!(layout.covering(3, 2), 0..2);
        assert_eq!(layout.covering(4, 2), 1..2);
        assert_eq!(layout.covering(5, 100), 1..3);
        assert_eq!(layout.covering(12, 5), 0..0);
        assert_eq!(layout.covering(2, 0), 0..0);
    }

    #[test]
    fn refuses_what_is_not_a_readable_file() {
        let chunks: [&[u8]; 1] = [b"aaaa"];
        let index = indexed(&chunks);
        let mut node = file("f", &chunks);
        node.size = 5;
        assert!(matches!(
            FileLayout::of(&node, &index),
            Err(LayoutError::SizeMismatch { chunks: 4, .. })
        ));
        let missing = file("g", &[b"zz"]);
        assert!(matches!(
            FileLayout::of(&missing, &index),
            Err(LayoutError::MissingBlob(_))
        ));
        let mut link = file("h", &[]);
        link.rare_mut().link = Some("f".into());
        assert!(matches!(
            FileLayout::of(&link, &index),
            Err(LayoutError::HardLink { .. })
        ));
    }
}
