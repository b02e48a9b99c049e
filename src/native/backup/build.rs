//! Building trees bottom-up from the walk's skeleton and the read results.

use std::collections::HashSet;
use std::path::Path;

use crate::core::format::blob::BlobKind;
use crate::core::format::id::Id;
use crate::core::format::manifest::{Failure, IndexStats};
use crate::core::format::tree::{Node, Tree};
use crate::native::backup::jobs::JobResult;
use crate::native::backup::packer::Packer;
use crate::native::backup::walk::{DirSkel, Entry, Job};
use crate::native::error::Result;

pub struct TreeBuilder<'a> {
    pub results: Vec<JobResult>,
    pub jobs: &'a [Job],
    /// The walked folder the jobs' paths start with.
    pub root: &'a Path,
    pub packer: &'a Packer<'a>,
    pub failures: Vec<Failure>,
    /// Every blob the snapshot's trees reference (data and trees), so a
    /// commit can prove they still exist after a concurrent delete.
    pub referenced: HashSet<Id>,
}

impl TreeBuilder<'_> {
    /// Stores the trees of one skeleton and returns the root tree's id.
    pub fn finish(&mut self, dir: DirSkel, index: &str, stats: &mut IndexStats) -> Result<Id> {
        // Taken before any result is consumed: a hard link may come before
        // or after the first path of its inode.
        let stored: Vec<bool> = self
            .results
            .iter()
            .map(|r| matches!(r, JobResult::Read(_)))
            .collect();
        self.finish_dir(dir, index, stats, &stored)
    }

    fn finish_dir(
        &mut self,
        dir: DirSkel,
        index: &str,
        stats: &mut IndexStats,
        stored: &[bool],
    ) -> Result<Id> {
        let mut nodes: Vec<Node> = Vec::with_capacity(dir.entries.len());
        for entry in dir.entries {
            match entry {
                Entry::Done(node) => {
                    if node.is_file_like() {
                        stats.files += 1;
                        stats.size_in_bytes += node.size;
                    }
                    nodes.push(node);
                }
                // A hard link is left out with its group's first path.
                Entry::Link { node, link } => match link.leader {
                    Some(job) if !stored[job] => self.failures.push(Failure {
                        index: index.to_string(),
                        path: link.rel,
                        reason: format!(
                            "hard link to {}, which was not stored",
                            self.jobs[job].rel(self.root)
                        ),
                    }),
                    _ => {
                        stats.files += 1;
                        nodes.push(node);
                    }
                },
                Entry::File { mut node, job } => {
                    match std::mem::replace(&mut self.results[job], JobResult::Skipped) {
                        JobResult::Read(r) => {
                            node.chunks = r.chunks;
                            node.chunking = r.chunking;
                            node.size = r.stamp.size;
                            node.mtime_ns = r.stamp.mtime_ns;
                            node.inode = r.stamp.inode;
                            stats.files += 1;
                            stats.files_read += 1;
                            stats.size_in_bytes += node.size;
                            stats.new_bytes += r.added.plain;
                            stats.new_stored_bytes += r.added.stored;
                            nodes.push(node);
                        }
                        JobResult::Failed(reason) => self.fail(index, job, reason),
                        JobResult::Fatal(e) => return Err(*e),
                        JobResult::Skipped => self.fail(index, job, ABORTED.into()),
                    }
                }
                Entry::Dir { mut node, dir } => {
                    node.subtree = Some(self.finish_dir(*dir, index, stats, stored)?);
                    stats.dirs += 1;
                    nodes.push(node);
                }
            }
        }
        for n in &nodes {
            self.referenced
                .extend(n.chunks.iter().copied().chain(n.subtree));
        }
        let bytes = Tree::new(nodes).encode();
        let id = self.packer.id_of(&bytes);
        self.referenced.insert(id);
        let added = self.packer.add(id, BlobKind::Tree, &bytes)?;
        stats.new_stored_bytes += added.stored;
        Ok(id)
    }

    fn fail(&mut self, index: &str, job: usize, reason: String) {
        self.failures.push(Failure {
            index: index.to_string(),
            path: self.jobs[job].rel(self.root),
            reason,
        });
    }
}

/// Reason recorded for files skipped after the snapshot was already doomed;
/// such entries are dropped before reporting.
pub const ABORTED: &str = "not read: the snapshot was aborted";
