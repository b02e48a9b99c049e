//! [`Inodes`]: the inode table a mount shows for a snapshot: every entry of
//! the selected indices numbered once, folders with their sorted listings,
//! and hard links resolved to the inode of the file that holds their
//! chunks (so `stat` shows one inode with its link count, as the source
//! had).
//!
//! Numbers are given in depth-first order from [`ROOT`], so the same
//! snapshot and selection always get the same numbers.

use std::collections::HashMap;

use crate::core::format::id::Id;
use crate::core::format::manifest::{IndexStats, Manifest};
use crate::core::format::tree::{Node, NodeType, Rare, Tree};

/// The mount point's inode number (FUSE's root).
pub const ROOT: u64 = 1;

/// One entry of the mount.
#[derive(Debug, Clone)]
pub struct Inode {
    pub parent: u64,
    /// The entry as the snapshot recorded it (for a hard link: the file
    /// that holds the chunks). An index folder and the root are made up
    /// from the manifest.
    pub node: Node,
    /// A folder's entries, sorted by name.
    pub children: Vec<(String, u64)>,
    /// Names that lead here: 2 plus the sub-folders for a folder.
    pub nlink: u32,
}

/// Why a snapshot cannot be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InodeError {
    #[error("index [{0}] is not in snapshot [{1}]")]
    NoSuchIndex(String, String),
    #[error("tree {0} is missing from the trees loaded for the mount")]
    MissingTree(Id),
}

/// Every entry of a mounted selection, by inode number.
#[derive(Debug, Clone, Default)]
pub struct Inodes {
    /// Inode `n` is `entries[n - 1]`.
    entries: Vec<Inode>,
}

impl Inodes {
    /// The table of `indices` of `manifest`, their trees in `trees`. With
    /// `flat` (exactly one index) that index's content is the root;
    /// otherwise the root holds one folder per index.
    pub fn build(
        manifest: &Manifest,
        indices: &[String],
        trees: &HashMap<Id, Tree>,
        flat: bool,
    ) -> Result<Inodes, InodeError> {
        let stats = |name: &String| {
            manifest
                .indices
                .get(name)
                .ok_or_else(|| InodeError::NoSuchIndex(name.clone(), manifest.snapshot.clone()))
        };
        let mut table = Inodes::default();
        let start_ns = manifest.start_time_in_millis.saturating_mul(1_000_000);
        if flat && indices.len() == 1 {
            let folder = index_folder(&indices[0], stats(&indices[0])?, start_ns);
            table.push(ROOT, folder);
            table.fill(ROOT, stats(&indices[0])?.tree, trees)?;
        } else {
            let root = Node {
                name: String::new(),
                kind: NodeType::Dir,
                mode: 0o555,
                mtime_ns: start_ns,
                ..Node::default()
            };
            table.push(ROOT, root);
            for name in indices {
                let s = stats(name)?;
                let ino = table.push(ROOT, index_folder(name, s, start_ns));
                table.entries[(ROOT - 1) as usize]
                    .children
                    .push((name.clone(), ino));
                table.fill(ino, s.tree, trees)?;
            }
            table.sort_children(ROOT);
        }
        table.resolve_hard_links(flat && indices.len() == 1);
        table.count_links();
        Ok(table)
    }

    pub fn get(&self, ino: u64) -> Option<&Inode> {
        ino.checked_sub(1)
            .and_then(|i| self.entries.get(usize::try_from(i).ok()?))
    }

    /// The inode of `name` in folder `parent`.
    pub fn lookup(&self, parent: u64, name: &str) -> Option<u64> {
        let children = &self.get(parent)?.children;
        children
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| children[i].1)
    }

    /// How many inodes there are (the highest number).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn push(&mut self, parent: u64, node: Node) -> u64 {
        self.entries.push(Inode {
            parent,
            node,
            children: Vec::new(),
            nlink: 1,
        });
        self.entries.len() as u64
    }

    /// Adds the entries of `tree` (and below) under folder `dir`.
    fn fill(
        &mut self,
        dir: u64,
        tree: Option<Id>,
        trees: &HashMap<Id, Tree>,
    ) -> Result<(), InodeError> {
        let Some(id) = tree else { return Ok(()) };
        let tree = trees.get(&id).ok_or(InodeError::MissingTree(id))?;
        for node in &tree.nodes {
            let sub = node.subtree.filter(|_| node.is_dir());
            let ino = self.push(dir, node.clone());
            self.entries[(dir - 1) as usize]
                .children
                .push((node.name.clone(), ino));
            if node.is_dir() {
                self.fill(ino, sub, trees)?;
            }
        }
        self.sort_children(dir);
        Ok(())
    }

    fn sort_children(&mut self, dir: u64) {
        self.entries[(dir - 1) as usize]
            .children
            .sort_by(|a, b| a.0.cmp(&b.0));
    }

    /// Points every hard link's directory entry at the inode of the file
    /// its `link` path names, from the root of the same index. A link
    /// whose file cannot be found keeps its own inode (reading it fails).
    fn resolve_hard_links(&mut self, flat: bool) {
        let mut moves = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let Some(link) = e.node.link().filter(|_| e.node.kind == NodeType::File) else {
                continue;
            };
            let ino = i as u64 + 1;
            let Some(index_root) = self.index_root_of(ino, flat) else {
                continue;
            };
            let target = link
                .split('/')
                .filter(|p| !p.is_empty())
                .try_fold(index_root, |at, part| self.lookup(at, part));
            if let Some(t) = target.filter(|t| {
                self.get(*t)
                    .is_some_and(|f| f.node.kind == NodeType::File && f.node.link().is_none())
            }) {
                moves.push((e.parent, e.node.name.clone(), t));
            }
        }
        for (parent, name, target) in moves {
            let children = &mut self.entries[(parent - 1) as usize].children;
            if let Some(slot) = children.iter_mut().find(|(n, _)| *n == name) {
                slot.1 = target;
            }
        }
    }

    /// The index folder `ino` lies in: the root when flat, else the
    /// root's child on the way up.
    fn index_root_of(&self, mut ino: u64, flat: bool) -> Option<u64> {
        if flat {
            return Some(ROOT);
        }
        loop {
            let parent = self.get(ino)?.parent;
            if parent == ROOT {
                return Some(ino);
            }
            ino = parent;
        }
    }

    /// Link counts: how many folder entries name each file, 2 plus the
    /// sub-folders for a folder.
    fn count_links(&mut self) {
        let mut counts = vec![0u32; self.entries.len()];
        let mut subdirs = vec![0u32; self.entries.len()];
        for e in &self.entries {
            for (_, c) in &e.children {
                counts[(*c - 1) as usize] += 1;
            }
        }
        for (i, e) in self.entries.iter().enumerate() {
            if e.node.is_dir() && i as u64 + 1 != ROOT {
                subdirs[(e.parent - 1) as usize] += 1;
            }
        }
        for (i, e) in self.entries.iter_mut().enumerate() {
            e.nlink = if e.node.is_dir() {
                2 + subdirs[i]
            } else {
                counts[i].max(1)
            };
        }
    }
}

/// An index's own folder, from what the manifest recorded of it.
fn index_folder(name: &str, s: &IndexStats, start_ns: i64) -> Node {
    let attrs = s.root_attrs.clone().unwrap_or_default();
    Node {
        name: name.to_string(),
        kind: NodeType::Dir,
        mode: s.root_mode.unwrap_or(0o755),
        mtime_ns: s.root_mtime_ns.unwrap_or(start_ns),
        subtree: s.tree,
        uid: attrs.uid,
        gid: attrs.gid,
        rare: Rare {
            xattrs: attrs.xattrs,
            ..Rare::default()
        }
        .into(),
        ..Node::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::manifest::SnapshotState;
    use std::collections::BTreeMap;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn file(name: &str, size: u64) -> Node {
        Node {
            name: name.into(),
            kind: NodeType::File,
            mode: 0o644,
            size,
            ..Node::default()
        }
    }

    fn dir(name: &str, tree: &Tree) -> Node {
        Node {
            name: name.into(),
            kind: NodeType::Dir,
            mode: 0o755,
            subtree: Some(tree.id()),
            ..Node::default()
        }
    }

    /// Index `logs`: `b.log`, `a.log`, `sub/` with `c.log` and `c-link`
    /// (a hard link to `sub/c.log`); index `data`: `x`.
    fn scene() -> (Manifest, HashMap<Id, Tree>) {
        let mut link = file("c-link", 3);
        link.rare_mut().link = Some("sub/c.log".into());
        let sub = Tree {
            nodes: vec![link, file("c.log", 3)],
        };
        let logs = Tree {
            nodes: vec![dir("sub", &sub), file("b.log", 2), file("a.log", 1)],
        };
        let data = Tree {
            nodes: vec![file("x", 9)],
        };
        let mut indices = BTreeMap::new();
        for (name, t) in [("logs", &logs), ("data", &data)] {
            indices.insert(
                name.to_string(),
                IndexStats {
                    tree: Some(t.id()),
                    files: 0,
                    dirs: 0,
                    size_in_bytes: 0,
                    new_bytes: 0,
                    new_stored_bytes: 0,
                    files_read: 0,
                    root_mode: Some(0o700),
                    root_mtime_ns: Some(7),
                    root_attrs: None,
                },
            );
        }
        let manifest = Manifest {
            version: 1,
            snapshot: "snap".into(),
            uuid: "u".into(),
            state: SnapshotState::Success,
            start_time_in_millis: 5,
            end_time_in_millis: 6,
            indices,
            global_state: None,
            metadata: BTreeMap::new(),
            failures: Vec::new(),
        };
        let trees = [sub, logs, data].into_iter().map(|t| (t.id(), t)).collect();
        (manifest, trees)
    }

    #[test]
    fn many_indices_become_folders_with_sorted_listings() {
        let (m, trees) = scene();
        let t = Inodes::build(&m, &["logs".into(), "data".into()], &trees, false).unwrap();
        let root = t.get(ROOT).unwrap();
        let names: Vec<&str> = root.children.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["data", "logs"]);
        let logs = t.lookup(ROOT, "logs").unwrap();
        assert_eq!(t.get(logs).unwrap().node.mode, 0o700);
        assert_eq!(t.get(logs).unwrap().node.mtime_ns, 7);
        let names: Vec<&str> = t
            .get(logs)
            .unwrap()
            .children
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["a.log", "b.log", "sub"]);
        assert_eq!(t.get(logs).unwrap().nlink, 3);
        assert_eq!(t.get(ROOT).unwrap().nlink, 4);
        let x = t.lookup(t.lookup(ROOT, "data").unwrap(), "x").unwrap();
        assert_eq!(t.get(x).unwrap().node.size, 9);
        assert_eq!(t.lookup(ROOT, "nope"), None);
    }

    #[test]
    fn a_hard_link_shares_its_files_inode() {
        let (m, trees) = scene();
        let t = Inodes::build(&m, &["logs".into()], &trees, true).unwrap();
        let sub = t.lookup(ROOT, "sub").unwrap();
        let c = t.lookup(sub, "c.log").unwrap();
        assert_eq!(t.lookup(sub, "c-link"), Some(c));
        assert_eq!(t.get(c).unwrap().nlink, 2);
        assert_eq!(
            t.get(ROOT).unwrap().node.mode,
            0o700,
            "flat: the index is the root"
        );
    }

    #[test]
    fn an_unknown_index_or_a_missing_tree_is_named() {
        let (m, mut trees) = scene();
        let e = Inodes::build(&m, &["nope".into()], &trees, true).unwrap_err();
        assert_eq!(e, InodeError::NoSuchIndex("nope".into(), "snap".into()));
        let data = m.indices["data"].tree.unwrap();
        trees.remove(&data);
        let e = Inodes::build(&m, &["data".into()], &trees, true).unwrap_err();
        assert_eq!(e, InodeError::MissingTree(data));
    }
}
