//! Tree blobs: one directory level. Stored as canonical JSON (entries sorted
//! by name, fields in a fixed order) so an unchanged directory always encodes
//! to the same bytes and therefore the same id.

use serde::{Deserialize, Serialize};

use crate::core::error::FormatError;
use crate::core::format::id::Id;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    File,
    Dir,
    Symlink,
}

/// One entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: NodeType,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Plain size in bytes (files only; 0 otherwise).
    #[serde(default)]
    pub size: u64,
    /// Inode number at snapshot time, used to skip unchanged files next time.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inode: u64,
    /// Data blobs whose concatenation is the file's contents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<Id>,
    /// Tree blob of a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<Id>,
    /// Target of a symlink, as stored by the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Node {
    pub fn is_dir(&self) -> bool {
        self.kind == NodeType::Dir
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// A tree entry that must not be restored as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeEntry {
    #[error("entry name {0:?} would escape its directory")]
    EscapingName(String),
    #[error("entry name {0:?} appears twice in one directory")]
    Duplicate(String),
    #[error("entry {0:?} is a directory without a subtree")]
    MissingSubtree(String),
    #[error("entry {0:?} is a symlink without a target")]
    MissingTarget(String),
    #[error("entry name {0:?} is longer than 255 bytes")]
    NameTooLong(String),
    #[error("symlink {0:?} has an empty target or one with a NUL byte")]
    BadTarget(String),
    #[error("entry {0:?} is out of canonical order")]
    Unsorted(String),
}

/// A name is safe when it is exactly one path component.
///
/// A backslash is an ordinary character in POSIX names (snapshots take such
/// files, so restores must give them back); restores only run on POSIX.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

impl Tree {
    /// Sorts the entries into canonical order.
    pub fn new(mut nodes: Vec<Node>) -> Tree {
        nodes.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Tree { nodes }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("trees always serialize")
    }

    /// Decoded trees are held for a whole restore or snapshot (a node per
    /// file), so the slack that growing vectors leave is given back: one
    /// chunk id in a vector grown to four, and up to half the node list.
    pub fn decode(bytes: &[u8]) -> Result<Tree, FormatError> {
        let mut tree: Tree =
            serde_json::from_slice(bytes).map_err(|e| FormatError::json("tree", e))?;
        tree.nodes.shrink_to_fit();
        for node in &mut tree.nodes {
            node.chunks.shrink_to_fit();
        }
        Ok(tree)
    }

    pub fn id(&self) -> Id {
        Id::of(&self.encode())
    }

    pub fn get(&self, name: &str) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_bytes().cmp(name.as_bytes()))
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// Checks that restoring this level cannot write outside its directory:
    /// every name is one component, unique, and every node is complete.
    pub fn validate(&self) -> Result<(), UnsafeEntry> {
        let mut seen = std::collections::HashSet::new();
        let mut prev: Option<&str> = None;
        for n in &self.nodes {
            if !is_safe_name(&n.name) {
                return Err(UnsafeEntry::EscapingName(n.name.clone()));
            }
            if n.name.len() > 255 {
                let mut cut = 64;
                while !n.name.is_char_boundary(cut) {
                    cut -= 1;
                }
                return Err(UnsafeEntry::NameTooLong(format!("{}...", &n.name[..cut])));
            }
            if !seen.insert(n.name.as_str()) {
                return Err(UnsafeEntry::Duplicate(n.name.clone()));
            }
            // Lookups and diffs rely on the canonical (byte-sorted) order.
            if prev.is_some_and(|p: &str| p.as_bytes() > n.name.as_bytes()) {
                return Err(UnsafeEntry::Unsorted(n.name.clone()));
            }
            prev = Some(n.name.as_str());
            match n.kind {
                NodeType::Dir if n.subtree.is_none() => {
                    return Err(UnsafeEntry::MissingSubtree(n.name.clone()))
                }
                NodeType::Symlink if n.target.is_none() => {
                    return Err(UnsafeEntry::MissingTarget(n.name.clone()))
                }
                NodeType::Symlink
                    if n.target
                        .as_ref()
                        .is_some_and(|t| t.is_empty() || t.contains('\0')) =>
                {
                    return Err(UnsafeEntry::BadTarget(n.name.clone()))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn file(name: &str) -> Node {
        testing::file(name, &[b"abc"]).with_mtime(1).with_inode(7)
    }

    #[test]
    fn canonical_order_gives_stable_ids() {
        let a = Tree::new(vec![file("b"), file("a"), file("é")]);
        let b = Tree::new(vec![file("é"), file("a"), file("b")]);
        assert_eq!(a.id(), b.id());
        assert_eq!(Tree::decode(&a.encode()).unwrap(), a);
        assert_eq!(a.get("b").unwrap().name, "b");
        assert!(a.get("zz").is_none());
    }

    #[test]
    fn escaping_and_duplicate_names_are_refused() {
        for bad in ["..", ".", "", "a/b", "/etc", "x\0"] {
            let t = Tree::new(vec![file(bad)]);
            assert!(
                matches!(t.validate(), Err(UnsafeEntry::EscapingName(_))),
                "{bad:?}"
            );
        }
        let t = Tree::new(vec![file("a"), file("a")]);
        assert!(matches!(t.validate(), Err(UnsafeEntry::Duplicate(_))));
        let t = Tree::new(vec![file(&"n".repeat(256))]);
        assert!(matches!(t.validate(), Err(UnsafeEntry::NameTooLong(_))));
        Tree::new(vec![file(&"n".repeat(255))]).validate().unwrap();
        for target in ["", "a\0b"] {
            let mut link = file("l");
            link.kind = NodeType::Symlink;
            link.target = Some(target.into());
            let t = Tree::new(vec![link]);
            assert!(matches!(t.validate(), Err(UnsafeEntry::BadTarget(_))));
        }
        let t = Tree::new(vec![file("back\\slash"), file("new\nline")]);
        assert_eq!(t.validate(), Ok(()));
        Tree::new(vec![file("a"), file("..a"), file("ünïcode")])
            .validate()
            .unwrap();
        let unsorted = Tree {
            nodes: vec![file("c"), file("b")],
        };
        assert!(matches!(unsorted.validate(), Err(UnsafeEntry::Unsorted(_))));
    }
}
