//! The metadata walk: turns a directory into a skeleton of tree nodes. Files
//! that are unchanged since the parent snapshot (same size, mtime and inode)
//! get their parent's chunk list and are never opened; the rest become read
//! jobs for the parallel pipeline.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::core::chunking::rules::ChunkingRules;
use crate::core::chunking::Chunking;
use crate::core::format::id::Id;
use crate::core::format::index::RepoIndex;
use crate::core::format::manifest::Failure;
use crate::core::format::tree::{Node, NodeType, Tree};
use crate::native::backup::filter::Decision;
use crate::native::backup::packer::Packer;
use crate::native::backup::reader::Stamp;
use crate::native::repo::Repo;

pub enum Entry {
    /// A node that needs no reading (symlink, or file unchanged since the parent).
    Done(Node),
    /// A file to read; `job` indexes the job list.
    File { node: Node, job: usize },
    /// A folder and its entries (boxed: every entry is as large as the
    /// largest kind, and there is one per file).
    Dir { node: Node, dir: Box<DirSkel> },
    /// A hard link to an earlier path of the same inode (boxed: rare, and
    /// every entry is as large as the largest kind).
    Link { node: Node, link: Box<LinkEntry> },
}

/// Where a hard link's contents come from.
pub struct LinkEntry {
    /// The read job of the inode's first path, if it is read: the link
    /// fails with it.
    pub leader: Option<usize>,
    /// The link's own path within the walked folder, for its failure.
    pub rel: String,
}

#[derive(Default)]
pub struct DirSkel {
    pub entries: Vec<Entry>,
}

/// One file to read. Kept small: a snapshot holds one per changed file
/// (its index and path within the index follow from `path` and the walked
/// folder, see [`Job::rel`]).
pub struct Job {
    pub path: PathBuf,
    pub size: u64,
    /// The walk's `lstat` of the file: the first read's "before" stamp.
    pub stamp: Stamp,
    /// The mode of the first chunking rule its path matches, which cuts it
    /// instead of the repository's mode.
    pub chunking: Option<Chunking>,
    /// The parent snapshot's chunks of a changed page-chunked file, by
    /// place: a new chunk is stored as a patch over the one it replaces.
    pub previous: Option<Arc<[Id]>>,
}

impl Job {
    /// The file's path within the walked folder `root`, `/`-separated.
    pub fn rel(&self, root: &Path) -> String {
        let rel = self.path.strip_prefix(root).unwrap_or(&self.path);
        rel.to_string_lossy().into_owned()
    }
}

pub struct Walker<'a> {
    pub repo: &'a Repo,
    pub index: &'a RepoIndex,
    pub packer: &'a Packer<'a>,
    pub jobs: Vec<Job>,
    pub failures: Vec<Failure>,
    /// A folder never walked into (the local repository being written).
    pub skip_dir: Option<crate::native::guard::Identity>,
    /// Folders left out because they are repositories.
    pub skipped: Vec<std::path::PathBuf>,
    /// Checked at every folder, so an abort stops a walk of millions of
    /// files at once (the snapshot then checks it and ends as aborted).
    pub abort: &'a crate::native::job::Abort,
    /// `--exclude` and `--one-file-system` ([`super::filter`]).
    pub filter: &'a super::filter::Filter<'a>,
    /// Owners, extended attributes and hard-link groups (tree encoding 2).
    pub attrs: crate::native::backup::attrs::Attrs,
    /// The repository's chunking rules, matched against paths inside the
    /// index.
    pub rules: &'a ChunkingRules,
}

pub fn join_rel(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

fn base_node(name: &str, kind: NodeType, m: &fs::Metadata) -> Node {
    Node {
        name: name.to_string(),
        kind,
        mode: m.mode() & 0o7777,
        mtime_ns: Stamp::of(m).mtime_ns,
        size: 0,
        inode: 0,
        chunks: vec![],
        subtree: None,
        ..Node::default()
    }
}

impl<'a> Walker<'a> {
    fn fail(&mut self, index: &str, rel: &str, reason: impl Into<String>) {
        self.failures.push(Failure {
            index: index.to_string(),
            path: rel.to_string(),
            reason: reason.into(),
        });
    }

    /// A node of `kind` for `path` with its owners and extended attributes;
    /// `None` (and a failure) when they cannot be read.
    fn node(
        &mut self,
        (index, rel): (&str, &str),
        name: &str,
        kind: NodeType,
        meta: &fs::Metadata,
        path: &Path,
    ) -> Option<Node> {
        let mut node = base_node(name, kind, meta);
        match self.attrs.record(&mut node, meta, path) {
            Ok(()) => Some(node),
            Err(e) => {
                self.fail(index, rel, format!("cannot read extended attributes: {e}"));
                None
            }
        }
    }

    /// The parent snapshot's tree for a subdirectory, if it had one.
    fn parent_subtree(&self, parent: Option<&Tree>, name: &str) -> Option<Tree> {
        let node = parent?.get(name)?;
        let id = node.subtree.filter(|_| node.kind == NodeType::Dir)?;
        self.repo.tree(self.index, &id).ok()
    }

    /// Walks the entries of `path` (all of them, or those `keep` accepts).
    pub fn walk(
        &mut self,
        index: &str,
        path: &Path,
        rel: &str,
        parent: Option<&Tree>,
        keep: &dyn Fn(&str, &fs::Metadata) -> bool,
    ) -> std::io::Result<DirSkel> {
        if self.abort.is_aborted() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "the snapshot was aborted",
            ));
        }
        let mut names: Vec<_> = fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        // Sized once: a snapshot holds every folder's entries until its
        // trees are written, and doubling growth would leave up to half
        // of each list unused.
        let mut skel = DirSkel {
            entries: Vec::with_capacity(names.len()),
        };
        for os_name in names {
            let child = path.join(&os_name);
            let Some(name) = os_name.to_str() else {
                let shown = join_rel(rel, &os_name.to_string_lossy());
                self.fail(index, &shown, "file name is not valid UTF-8");
                continue;
            };
            let child_rel = join_rel(rel, name);
            let meta = match fs::symlink_metadata(&child) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // deleted since listing
                Err(e) => {
                    self.fail(index, &child_rel, e.to_string());
                    continue;
                }
            };
            if !keep(name, &meta) {
                continue;
            }
            match self.filter.decide(&child_rel, &meta) {
                Decision::Walk => {}
                Decision::Exclude => continue,
                Decision::OtherFileSystem => {
                    skel.entries.push(Entry::Dir {
                        node: base_node(name, NodeType::Dir, &meta),
                        dir: Box::default(),
                    });
                    continue;
                }
            }
            let ft = meta.file_type();
            let at = (index, child_rel.as_str());
            if ft.is_file() {
                let Some(mut node) = self.node(at, name, NodeType::File, &meta, &child) else {
                    continue;
                };
                node.size = meta.len();
                node.inode = meta.ino();
                if let Some(leader) = self.attrs.leader_of(&meta) {
                    node.rare_mut().link = Some(leader.rel.clone());
                    let link = Box::new(LinkEntry {
                        leader: leader.job,
                        rel: child_rel.clone(),
                    });
                    skel.entries.push(Entry::Link { node, link });
                    continue;
                }
                let prev = parent.and_then(|p| p.get(name));
                let unchanged = prev.is_some_and(|p| {
                    p.kind == NodeType::File
                        && p.link().is_none()
                        && p.size == node.size
                        && p.mtime_ns == node.mtime_ns
                        && p.inode == node.inode
                        && p.chunks.iter().all(|c| self.packer.is_known(c))
                });
                if unchanged {
                    let prev = prev.unwrap();
                    node.chunks = prev.chunks.clone();
                    // Cut as it was: the chunks are the parent's.
                    node.chunking = prev.chunking;
                    self.attrs.note_leader(&meta, &child_rel, None);
                    skel.entries.push(Entry::Done(node));
                } else {
                    self.jobs.push(Job {
                        path: child,
                        size: node.size,
                        stamp: Stamp::of(&meta),
                        chunking: self.rules.mode_for(&child_rel),
                        previous: prev.and_then(page_chunks),
                    });
                    let job = self.jobs.len() - 1;
                    self.attrs.note_leader(&meta, &child_rel, Some(job));
                    skel.entries.push(Entry::File { node, job });
                }
            } else if ft.is_dir()
                && (self.skip_dir == Some((meta.dev(), meta.ino()))
                    || crate::native::guard::is_repository(&child))
            {
                self.skipped.push(child);
            } else if ft.is_dir() {
                let sub_parent = self.parent_subtree(parent, name);
                let Some(node) = self.node(at, name, NodeType::Dir, &meta, &child) else {
                    continue;
                };
                match self.walk(index, &child, &child_rel, sub_parent.as_ref(), &|_, _| true) {
                    Ok(dir) => skel.entries.push(Entry::Dir {
                        node,
                        dir: Box::new(dir),
                    }),
                    Err(e) => self.fail(index, &child_rel, format!("cannot list directory: {e}")),
                }
            } else if ft.is_symlink() {
                match fs::read_link(&child) {
                    Ok(t) => match t.to_str() {
                        Some(t) => {
                            let kind = NodeType::Symlink;
                            if let Some(mut node) = self.node(at, name, kind, &meta, &child) {
                                node.rare_mut().target = Some(t.to_string());
                                skel.entries.push(Entry::Done(node));
                            }
                        }
                        None => self.fail(index, &child_rel, "symlink target is not valid UTF-8"),
                    },
                    Err(e) => self.fail(index, &child_rel, e.to_string()),
                }
            } else if let Some(kind) = crate::native::backup::attrs::special_kind(ft) {
                // Recorded as what it is, never opened.
                if let Some(node) = self.node(at, name, kind, &meta, &child) {
                    skel.entries.push(Entry::Done(node));
                }
            } else {
                self.fail(index, &child_rel, "unsupported file type");
            }
        }
        Ok(skel)
    }
}

/// The chunks of `prev` if it is a file cut into page groups, whose
/// chunks sit at the same places in its next version.
fn page_chunks(prev: &Node) -> Option<Arc<[Id]>> {
    let pages = matches!(prev.chunking, Some(Chunking::Pages { .. }));
    (pages && prev.kind == NodeType::File && prev.link().is_none() && !prev.chunks.is_empty())
        .then(|| prev.chunks.as_slice().into())
}
#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot holds one entry per file until its trees are written:
    /// the rare kinds are boxed so a file costs no more than its node.
    #[test]
    fn an_entry_is_barely_larger_than_its_node() {
        assert!(std::mem::size_of::<Entry>() <= std::mem::size_of::<Node>() + 16);
    }
}
