//! What a snapshot's trees hold, computed once per distinct tree.
//!
//! Trees are content-addressed, so a crafted repository can make one tree
//! reachable along many paths: a chain of levels whose two folders point at
//! the same subtree describes 2^levels paths in a few KiB. Whoever expands
//! trees (restore plans, diffs, check) first needs to know how much the
//! expansion holds. [`Shapes`] answers that bottom-up, memoised per tree id,
//! in time and memory linear in the number of distinct trees: saturating
//! counts of files, folders and links, the deepest nesting, the longest
//! path, and the first entry that a restore would refuse.
//!
//! Identical folders (two empty folders, two copies of one folder) share a
//! tree legitimately, so sharing itself is not refused; what is refused is
//! an expansion larger than the manifest declares or than the hard limits.

use std::collections::HashMap;

use crate::core::format::id::Id;
use crate::core::format::tree::{NodeType, Tree, UnsafeEntry};

/// Deepest folder nesting a snapshot may have below an index folder.
pub const MAX_DEPTH: u32 = 1024;
/// Longest path (bytes, relative to the index folder) a snapshot may hold:
/// Linux's `PATH_MAX`.
pub const MAX_PATH_BYTES: u64 = 4096;
/// Most symbolic links one snapshot may hold (manifests do not declare
/// them, so this hard limit bounds them).
pub const MAX_SYMLINKS: u64 = 10_000_000;

/// What is wrong with one entry, found where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("{0}")]
    Unsafe(UnsafeEntry),
    #[error("its chunks hold {chunks} bytes but the snapshot records {size}")]
    SizeMismatch { chunks: u64, size: u64 },
    #[error("chunk {0} is not in the repository index")]
    MissingChunk(Id),
    #[error("tree {0} is missing")]
    MissingTree(Id),
    #[error("folders nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("a path is longer than {MAX_PATH_BYTES} bytes")]
    PathTooLong,
}

/// Where the first problem below a tree is: in one of its own entries, or
/// below one of its folders (followed to print the path, so memoised trees
/// never hold path strings).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    Here { name: String, problem: EntryProblem },
    Below { name: String, subtree: Id },
}

/// Saturating totals of everything below one tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// Folder levels below this tree (0: no subfolder).
    pub depth: u32,
    /// Longest path below this tree, in bytes (`a/b/c`).
    pub longest_path: u64,
    problem: Option<Problem>,
}

/// The first problem of a tree, with its path relative to the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub path: String,
    pub problem: EntryProblem,
}

/// Shapes of trees, memoised by id.
#[derive(Debug, Default)]
pub struct Shapes {
    memo: HashMap<Id, Shape>,
}

impl Shapes {
    pub fn new() -> Shapes {
        Shapes::default()
    }

    /// The shape of `root`. `tree` looks trees up (`None`: missing) and
    /// `chunk_len` gives a chunk's plain length (`None`: not indexed).
    pub fn of<'t>(
        &mut self,
        root: Id,
        tree: &dyn Fn(&Id) -> Option<&'t Tree>,
        chunk_len: &dyn Fn(&Id) -> Option<u64>,
    ) -> &Shape {
        // Iterative post-order: a tree is summed once all its subtrees are.
        let mut stack = vec![(root, false)];
        while let Some((id, children_done)) = stack.pop() {
            if self.memo.contains_key(&id) {
                continue;
            }
            let Some(t) = tree(&id) else {
                self.memo.insert(id, missing(id));
                continue;
            };
            if !children_done {
                stack.push((id, true));
                let subtrees = t.nodes.iter().filter_map(|n| n.subtree);
                // Content addressing rules out cycles: a tree cannot hold
                // its own hash. A crafted index could still map an id to a
                // tree that names it; such an id is summed as missing.
                for sub in subtrees.filter(|s| *s != id) {
                    if !self.memo.contains_key(&sub) {
                        stack.push((sub, false));
                    }
                }
                continue;
            }
            let shape = self.sum(id, t, chunk_len);
            self.memo.insert(id, shape);
        }
        &self.memo[&root]
    }

    fn sum(&self, id: Id, t: &Tree, chunk_len: &dyn Fn(&Id) -> Option<u64>) -> Shape {
        let mut s = Shape::default();
        let first = |p: Problem, s: &mut Shape| {
            s.problem.get_or_insert(p);
        };
        if let Err(e) = t.validate() {
            let name = match &e {
                UnsafeEntry::EscapingName(n)
                | UnsafeEntry::Duplicate(n)
                | UnsafeEntry::MissingSubtree(n)
                | UnsafeEntry::MissingTarget(n)
                | UnsafeEntry::NameTooLong(n)
                | UnsafeEntry::BadTarget(n)
                | UnsafeEntry::Unsorted(n)
                | UnsafeEntry::BadLink(n)
                | UnsafeEntry::BadXattr(n) => n.clone(),
            };
            first(
                Problem::Here {
                    name,
                    problem: EntryProblem::Unsafe(e),
                },
                &mut s,
            );
        }
        for n in &t.nodes {
            let name_len = n.name.len() as u64;
            s.longest_path = s.longest_path.max(name_len);
            match n.kind {
                // Fifos, sockets and devices count as files, as their
                // manifests count them; they hold no chunks.
                NodeType::Fifo | NodeType::Socket | NodeType::Chardev | NodeType::Blockdev => {
                    s.files = s.files.saturating_add(1)
                }
                // A hard link's bytes are its group's first file's.
                NodeType::File if n.link().is_some() => s.files = s.files.saturating_add(1),
                NodeType::File => {
                    s.files = s.files.saturating_add(1);
                    s.bytes = s.bytes.saturating_add(n.size);
                    let mut total = 0u64;
                    for c in &n.chunks {
                        match chunk_len(c) {
                            Some(len) => total = total.saturating_add(len),
                            None => {
                                let problem = EntryProblem::MissingChunk(*c);
                                let name = n.name.clone();
                                first(Problem::Here { name, problem }, &mut s);
                            }
                        }
                    }
                    if total != n.size && n.chunks.iter().all(|c| chunk_len(c).is_some()) {
                        let problem = EntryProblem::SizeMismatch {
                            chunks: total,
                            size: n.size,
                        };
                        let name = n.name.clone();
                        first(Problem::Here { name, problem }, &mut s);
                    }
                }
                NodeType::Symlink => s.symlinks = s.symlinks.saturating_add(1),
                NodeType::Dir => {
                    s.dirs = s.dirs.saturating_add(1);
                    let Some(sub) = n.subtree else { continue };
                    let child = match self.memo.get(&sub) {
                        Some(c) if sub != id => c,
                        _ => &missing(sub),
                    };
                    s.files = s.files.saturating_add(child.files);
                    s.dirs = s.dirs.saturating_add(child.dirs);
                    s.symlinks = s.symlinks.saturating_add(child.symlinks);
                    s.bytes = s.bytes.saturating_add(child.bytes);
                    s.depth = s.depth.max(child.depth.saturating_add(1));
                    let below = name_len
                        .saturating_add(1)
                        .saturating_add(child.longest_path);
                    s.longest_path = s.longest_path.max(below);
                    if child.problem.is_some() {
                        let name = n.name.clone();
                        first(Problem::Below { name, subtree: sub }, &mut s);
                    }
                }
            }
        }
        // Limits are checked where they are first exceeded, so the path
        // printed leads to the offending level.
        if s.depth > MAX_DEPTH || s.longest_path > MAX_PATH_BYTES {
            let problem = if s.depth > MAX_DEPTH {
                EntryProblem::TooDeep
            } else {
                EntryProblem::PathTooLong
            };
            let deepest = t.nodes.iter().find(|n| {
                n.subtree
                    .and_then(|sub| self.memo.get(&sub))
                    .is_some_and(|c| c.problem.is_none())
            });
            if s.problem.is_none() {
                let name = deepest.map_or_else(String::new, |n| n.name.clone());
                s.problem = Some(Problem::Here { name, problem });
            }
        }
        s
    }

    /// The first problem below `root` (after [`Shapes::of`]), with its
    /// path. Paths are cut short at [`MAX_PATH_BYTES`].
    pub fn problem(&self, root: &Id) -> Option<Located> {
        let mut path = String::new();
        let mut at = self.memo.get(root)?;
        loop {
            let step = |path: &mut String, name: &str| {
                if path.len() < MAX_PATH_BYTES as usize {
                    if !path.is_empty() {
                        path.push('/');
                    }
                    path.push_str(name);
                }
            };
            match at.problem.as_ref()? {
                Problem::Here { name, problem } => {
                    step(&mut path, name);
                    return Some(Located {
                        path,
                        problem: problem.clone(),
                    });
                }
                Problem::Below { name, subtree } => {
                    step(&mut path, name);
                    match self.memo.get(subtree) {
                        Some(next) => at = next,
                        None => {
                            return Some(Located {
                                path,
                                problem: EntryProblem::MissingTree(*subtree),
                            })
                        }
                    }
                }
            }
        }
    }
}

fn missing(id: Id) -> Shape {
    Shape {
        problem: Some(Problem::Here {
            name: String::new(),
            problem: EntryProblem::MissingTree(id),
        }),
        ..Shape::default()
    }
}

/// A snapshot's trees expand to more than its manifest declares, or than
/// the hard limits allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("its trees hold {found} {what} but its manifest declares {declared}")]
    MoreThanDeclared {
        what: &'static str,
        found: u64,
        declared: u64,
    },
    #[error("its trees hold {0} symbolic links, more than the limit of {MAX_SYMLINKS}")]
    TooManySymlinks(u64),
    #[error("{path}: {problem}")]
    Entry { path: String, problem: EntryProblem },
}

/// Checks a tree's shape against what the manifest declares of it
/// (`files`, `dirs`), then its first problem, if any.
pub fn check_declared(
    shapes: &Shapes,
    root: &Id,
    declared_files: u64,
    declared_dirs: u64,
) -> Result<(), ShapeError> {
    if let Some(Located { path, problem }) = shapes.problem(root) {
        return Err(ShapeError::Entry { path, problem });
    }
    let s = &shapes.memo[root];
    let over = |what, found, declared| ShapeError::MoreThanDeclared {
        what,
        found,
        declared,
    };
    if s.files > declared_files {
        return Err(over("files", s.files, declared_files));
    }
    if s.dirs > declared_dirs {
        return Err(over("folders", s.dirs, declared_dirs));
    }
    if s.symlinks > MAX_SYMLINKS {
        return Err(ShapeError::TooManySymlinks(s.symlinks));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::tree::Node;
    use crate::core::testing::{self, dir, store};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn file(name: &str, chunks: Vec<Id>, size: u64) -> Node {
        testing::file(name, &[]).with_chunks(chunks, size)
    }

    #[test]
    fn a_shared_subtree_chain_counts_every_path_without_expanding_them() {
        let chunk = Id::of(b"c");
        let mut trees = HashMap::new();
        let mut top = store(&mut trees, Tree::new(vec![file("f", vec![chunk], 1)]));
        for _ in 0..40 {
            top = store(&mut trees, Tree::new(vec![dir("a", top), dir("b", top)]));
        }
        let mut shapes = Shapes::new();
        let lookup = |id: &Id| trees.get(id);
        let s = shapes.of(top, &lookup, &|_| Some(1)).clone();
        assert_eq!(s.files, 1 << 40);
        assert_eq!(s.depth, 40);
        assert_eq!(shapes.memo.len(), 41, "one entry per distinct tree");
        let err = check_declared(&shapes, &top, 1_000, 1_000).unwrap_err();
        assert!(
            matches!(err, ShapeError::MoreThanDeclared { what: "files", .. }),
            "{err}"
        );
    }

    #[test]
    fn deep_chains_and_bad_entries_are_found_with_their_path() {
        let mut trees = HashMap::new();
        let mut top = store(&mut trees, Tree::new(vec![]));
        for _ in 0..(MAX_DEPTH + 5) {
            top = store(&mut trees, Tree::new(vec![dir("d", top)]));
        }
        let mut shapes = Shapes::new();
        let lookup = |id: &Id| trees.get(id);
        shapes.of(top, &lookup, &|_| Some(1));
        let err = check_declared(&shapes, &top, 0, u64::MAX).unwrap_err();
        assert!(err.to_string().contains("deeper than"), "{err}");

        let chunk = Id::of(b"x");
        let mut trees = HashMap::new();
        let leaf = store(&mut trees, Tree::new(vec![file("short", vec![chunk], 5)]));
        let top = store(&mut trees, Tree::new(vec![dir("sub", leaf)]));
        let mut shapes = Shapes::new();
        let lookup = |id: &Id| trees.get(id);
        shapes.of(top, &lookup, &|_| Some(3));
        let located = shapes.problem(&top).unwrap();
        assert_eq!(located.path, "sub/short");
        assert_eq!(
            located.problem,
            EntryProblem::SizeMismatch { chunks: 3, size: 5 }
        );
    }

    #[test]
    fn identical_folders_are_fine_when_declared() {
        let mut trees = HashMap::new();
        let empty = store(&mut trees, Tree::new(vec![]));
        let top = store(
            &mut trees,
            Tree::new(vec![dir("a", empty), dir("b", empty)]),
        );
        let mut shapes = Shapes::new();
        let lookup = |id: &Id| trees.get(id);
        shapes.of(top, &lookup, &|_| None);
        assert_eq!(check_declared(&shapes, &top, 0, 2), Ok(()));
    }
}
