//! Snapshot diff, one directory level at a time.
//!
//! The core compares two tree values and says which changes it sees and which
//! subdirectory pairs differ; the shell loads those subtrees and calls again.
//! Subtrees with equal ids are skipped whole, so a diff reads only the trees
//! along changed paths.

use serde::{Deserialize, Serialize};

use crate::core::format::id::Id;
use crate::core::format::tree::{Node, NodeType, Tree};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    /// Contents (or symlink target, or type) differ.
    Modified,
    /// Only mode or mtime differ.
    Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub path: String,
    pub change: ChangeKind,
    #[serde(rename = "type")]
    pub kind: NodeType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_size: Option<u64>,
}

/// A pair of subtrees that differ and must be compared next. `None` stands
/// for "absent on this side" (everything below is added or removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descend {
    pub path: String,
    pub old: Option<Id>,
    pub new: Option<Id>,
}

impl Descend {
    pub fn is_needed(&self) -> bool {
        self.old != self.new
    }
}

/// Bounds a diff's work by what the two manifests declare: a diff lists
/// each entry of either snapshot at most once, so more changes than both
/// declare (or deeper or longer paths than [`crate::core::plan::shape`] allows)
/// mean crafted trees that would expand without end.
#[derive(Debug, Clone)]
pub struct DiffBudget {
    files: u64,
    dirs: u64,
    links: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffBoundError {
    #[error("the two snapshots' trees hold more {0} than their manifests declare")]
    MoreThanDeclared(&'static str),
    #[error("{0}: path too deep or too long")]
    PathTooLong(String),
}

impl DiffBudget {
    /// For snapshots declaring these files and folders in total.
    pub fn new(files: u64, dirs: u64) -> DiffBudget {
        DiffBudget {
            files,
            dirs,
            links: 2 * crate::core::plan::shape::MAX_SYMLINKS,
        }
    }

    /// Charges one level's changes and the folders it descends into.
    pub fn charge(
        &mut self,
        changes: &[Change],
        descend: &[Descend],
    ) -> Result<(), DiffBoundError> {
        for c in changes {
            let (left, what) = match c.kind {
                NodeType::File
                | NodeType::Fifo
                | NodeType::Socket
                | NodeType::Chardev
                | NodeType::Blockdev => (&mut self.files, "files"),
                NodeType::Dir => (&mut self.dirs, "folders"),
                NodeType::Symlink => (&mut self.links, "links"),
            };
            // A modified entry stands for one entry on each side.
            let cost = if c.change == ChangeKind::Added || c.change == ChangeKind::Removed {
                1
            } else {
                2
            };
            *left = left
                .checked_sub(cost)
                .ok_or(DiffBoundError::MoreThanDeclared(what))?;
        }
        for d in descend {
            let depth = d.path.matches('/').count() as u32;
            let limit = crate::core::plan::shape::MAX_PATH_BYTES + 256;
            if depth > crate::core::plan::shape::MAX_DEPTH + 1 || d.path.len() as u64 > limit {
                let mut shown = d.path.clone();
                let mut cut = 120.min(shown.len());
                while !shown.is_char_boundary(cut) {
                    cut -= 1;
                }
                shown.truncate(cut);
                return Err(DiffBoundError::PathTooLong(format!("{shown}...")));
            }
        }
        Ok(())
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Owners and extended attributes, compared only when both sides record
/// them (tree encoding 2), so a snapshot taken before they were recorded
/// does not show every file as changed.
fn attrs_differ(a: &Node, b: &Node) -> bool {
    let recorded = a.version() > 1 && b.version() > 1;
    recorded && (a.uid != b.uid || a.gid != b.gid || a.xattrs() != b.xattrs())
}

fn size(n: &Node) -> Option<u64> {
    (n.kind == NodeType::File).then_some(n.size)
}

/// Compares one level. `prefix` is the path of this level (for reporting).
pub fn diff_level(prefix: &str, old: &Tree, new: &Tree) -> (Vec<Change>, Vec<Descend>) {
    let mut changes = Vec::new();
    let mut descend = Vec::new();
    let (mut i, mut j) = (0, 0);
    let added = |n: &Node, changes: &mut Vec<Change>, descend: &mut Vec<Descend>| {
        let path = join(prefix, &n.name);
        if n.is_dir() {
            descend.push(Descend {
                path: path.clone(),
                old: None,
                new: n.subtree,
            });
        }
        changes.push(Change {
            path,
            change: ChangeKind::Added,
            kind: n.kind,
            old_size: None,
            new_size: size(n),
        });
    };
    let removed = |n: &Node, changes: &mut Vec<Change>, descend: &mut Vec<Descend>| {
        let path = join(prefix, &n.name);
        if n.is_dir() {
            descend.push(Descend {
                path: path.clone(),
                old: n.subtree,
                new: None,
            });
        }
        changes.push(Change {
            path,
            change: ChangeKind::Removed,
            kind: n.kind,
            old_size: size(n),
            new_size: None,
        });
    };
    while i < old.nodes.len() || j < new.nodes.len() {
        let ord = match (old.nodes.get(i), new.nodes.get(j)) {
            (Some(a), Some(b)) => a.name.as_bytes().cmp(b.name.as_bytes()),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Less => {
                removed(&old.nodes[i], &mut changes, &mut descend);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                added(&new.nodes[j], &mut changes, &mut descend);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (a, b) = (&old.nodes[i], &new.nodes[j]);
                let path = join(prefix, &a.name);
                if a.kind != b.kind {
                    removed(a, &mut changes, &mut descend);
                    added(b, &mut changes, &mut descend);
                } else if a.is_dir() {
                    if a.subtree != b.subtree {
                        descend.push(Descend {
                            path,
                            old: a.subtree,
                            new: b.subtree,
                        });
                    }
                } else {
                    let content = a.chunks != b.chunks
                        || a.size != b.size
                        || a.target() != b.target()
                        || a.link() != b.link()
                        || a.rdev() != b.rdev();
                    let meta = a.mode != b.mode || a.mtime_ns != b.mtime_ns || attrs_differ(a, b);
                    if content || meta {
                        changes.push(Change {
                            path,
                            change: if content {
                                ChangeKind::Modified
                            } else {
                                ChangeKind::Metadata
                            },
                            kind: a.kind,
                            old_size: size(a),
                            new_size: size(b),
                        });
                    }
                }
                i += 1;
                j += 1;
            }
        }
    }
    (changes, descend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn file(name: &str, content: &[u8], mtime: i64) -> Node {
        testing::file(name, &[content]).with_mtime(mtime)
    }

    /// A folder whose tree id is the hash of `id`.
    fn dir(name: &str, id: &[u8]) -> Node {
        testing::dir(name, Id::of(id))
    }

    #[test]
    fn classifies_each_kind_of_change() {
        let old = Tree::new(vec![
            file("same", b"s", 1),
            file("edited", b"old", 1),
            file("touched", b"t", 1),
            file("gone", b"g", 1),
            dir("d", b"tree1"),
            dir("samedir", b"tree2"),
        ]);
        let new = Tree::new(vec![
            file("same", b"s", 1),
            file("edited", b"new!", 1),
            file("touched", b"t", 2),
            file("fresh", b"f", 1),
            dir("d", b"tree1-changed"),
            dir("samedir", b"tree2"),
        ]);
        let (changes, descend) = diff_level("idx", &old, &new);
        let got: Vec<(&str, ChangeKind)> = changes
            .iter()
            .map(|c| (c.path.as_str(), c.change))
            .collect();
        assert_eq!(
            got,
            [
                ("idx/edited", ChangeKind::Modified),
                ("idx/fresh", ChangeKind::Added),
                ("idx/gone", ChangeKind::Removed),
                ("idx/touched", ChangeKind::Metadata),
            ]
        );
        assert_eq!(changes[0].old_size, Some(3));
        assert_eq!(changes[0].new_size, Some(4));
        assert_eq!(descend.len(), 1);
        assert_eq!(descend[0].path, "idx/d");
    }

    #[test]
    fn a_file_replaced_by_a_directory_is_removed_and_added() {
        let old = Tree::new(vec![file("x", b"1", 1)]);
        let new = Tree::new(vec![dir("x", b"t")]);
        let (changes, descend) = diff_level("", &old, &new);
        assert_eq!(changes.len(), 2);
        assert_eq!(
            descend,
            vec![Descend {
                path: "x".into(),
                old: None,
                new: Some(Id::of(b"t"))
            }]
        );
    }
}
