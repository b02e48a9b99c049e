//! What a snapshot records of a node besides its contents (tree encoding
//! 2): owner ids and names, extended attributes, sparseness, device
//! numbers, and hard links (the second and later paths of an inode point
//! at the first, which alone carries the chunks).

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::core::format::manifest::EntryAttrs;
use crate::core::format::tree::{Node, NodeType};
use crate::native::owners::Names;

/// The first path of an inode with several links, within the walked
/// index, and its read job (none when the file was unchanged).
pub struct Leader {
    pub rel: String,
    pub job: Option<usize>,
}

/// Per-walk state: owner names looked up so far, and the first path of
/// every multiply-linked inode met so far.
#[derive(Default)]
pub struct Attrs {
    names: Names,
    leaders: HashMap<(u64, u64), Leader>,
}

/// The node kind of a file type that is neither file, folder nor link.
pub fn special_kind(ft: std::fs::FileType) -> Option<NodeType> {
    if ft.is_fifo() {
        Some(NodeType::Fifo)
    } else if ft.is_socket() {
        Some(NodeType::Socket)
    } else if ft.is_char_device() {
        Some(NodeType::Chardev)
    } else if ft.is_block_device() {
        Some(NodeType::Blockdev)
    } else {
        None
    }
}

/// A file with at least one whole 4 KiB block fewer allocated than its
/// size needs has holes.
pub fn is_sparse(m: &Metadata) -> bool {
    m.is_file() && m.blocks().saturating_mul(512).saturating_add(4096) <= m.len()
}

/// The owner and extended attributes of an index's own folder. Attributes
/// that cannot be read are left out: the folder's contents decide whether
/// the snapshot succeeds.
pub fn folder_attrs(m: &Metadata, path: &Path) -> EntryAttrs {
    let mut names = Names::default();
    EntryAttrs {
        uid: Some(m.uid()),
        gid: Some(m.gid()),
        user: names.user(m.uid()),
        group: names.group(m.gid()),
        xattrs: crate::native::xattrs::read(path).unwrap_or_default(),
    }
}

impl Attrs {
    /// Records owners, extended attributes and (for devices) the device
    /// number of the node at `path`. An error reading its attributes is
    /// the node's failure.
    pub fn record(&mut self, node: &mut Node, m: &Metadata, path: &Path) -> std::io::Result<()> {
        node.uid = Some(m.uid());
        node.gid = Some(m.gid());
        node.user = self.names.user(m.uid());
        node.group = self.names.group(m.gid());
        if matches!(node.kind, NodeType::Chardev | NodeType::Blockdev) {
            node.rare_mut().rdev = Some(m.rdev());
        }
        node.sparse = is_sparse(m);
        let xattrs = crate::native::xattrs::read(path)?;
        if !xattrs.is_empty() {
            node.rare_mut().xattrs = xattrs;
        }
        Ok(())
    }

    /// For a regular file with more than one link: the first path of its
    /// inode already walked (this file is then a hard link to it), or
    /// `None` after noting this one as the first.
    pub fn leader_of(&self, m: &Metadata) -> Option<&Leader> {
        (m.nlink() > 1)
            .then(|| self.leaders.get(&(m.dev(), m.ino())))
            .flatten()
    }

    /// Notes `rel` as the first path of its inode, if it has several links.
    pub fn note_leader(&mut self, m: &Metadata, rel: &str, job: Option<usize>) {
        if m.nlink() > 1 {
            let leader = Leader {
                rel: rel.to_string(),
                job,
            };
            self.leaders.entry((m.dev(), m.ino())).or_insert(leader);
        }
    }
}
