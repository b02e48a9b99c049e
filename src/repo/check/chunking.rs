//! How files were cut: every file node's recorded chunking must be one the
//! repository's config allows, and the check counts files by it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::core::chunking::Chunking;
use crate::core::format::id::Id;
use crate::core::format::tree::{Node, NodeType};
use crate::repo::findings::{FileRef, Finding, FindingKind};

use super::steps::Checker;

/// A file node whose recorded chunking the config does not allow: the
/// tree holding it, its name and the mode.
type Misfit = (Id, String, Chunking);

impl Checker<'_> {
    /// Counts file nodes by chunking and reports those the config does not
    /// allow, with the snapshots and paths that hold them.
    pub(super) fn check_chunking(&mut self) {
        let config = &self.reader.config;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut misfits: Vec<Misfit> = Vec::new();
        for (id, tree) in &self.trees {
            for n in tree.nodes.iter().filter(|n| has_contents(n)) {
                let mode = n.chunking.unwrap_or(Chunking::Cdc);
                *counts.entry(mode.name()).or_default() += 1;
                if !config.allows_chunking(n.chunking) {
                    misfits.push((*id, n.name.clone(), mode));
                }
            }
        }
        self.report.files_by_chunking = counts;
        misfits.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let allowed = config.chunking_name();
        let holders: HashMap<Id, Vec<String>> =
            misfits
                .iter()
                .fold(HashMap::new(), |mut m, (tree, name, _)| {
                    m.entry(*tree).or_default().push(name.clone());
                    m
                });
        let mut paths = self.paths_in(&holders);
        for (tree, name, mode) in misfits {
            let files = paths.remove(&(tree, name.clone())).unwrap_or_default();
            let snapshots: BTreeSet<String> = files.iter().map(|f| f.snapshot.clone()).collect();
            let detail = format!(
                "file [{name}] in tree {} is recorded as cut [{}], which this repository's chunking [{allowed}] does not make: it restores as it is, but new snapshots of it will not share its chunks",
                tree.short(),
                mode.name()
            );
            let finding = Finding::new(FindingKind::ChunkingNotAllowed, tree.to_hex(), detail)
                .in_snapshots(snapshots)
                .at_files(files);
            self.report.notes.push(finding);
        }
    }

    /// Every path of every snapshot at which a tree of `holders` lists one
    /// of its names, found in one pass over the loaded trees of the
    /// snapshots that passed the shape check.
    fn paths_in(&self, holders: &HashMap<Id, Vec<String>>) -> HashMap<(Id, String), Vec<FileRef>> {
        let mut out: HashMap<(Id, String), Vec<FileRef>> = HashMap::new();
        for m in self
            .manifests
            .iter()
            .filter(|m| !self.misshapen.contains(&m.uuid))
        {
            for (index, root) in m.roots() {
                let mut stack = vec![(String::new(), root)];
                while let Some((path, id)) = stack.pop() {
                    let Some(tree) = self.trees.get(&id) else {
                        continue;
                    };
                    let join = |n: &str| {
                        if path.is_empty() {
                            n.to_string()
                        } else {
                            format!("{path}/{n}")
                        }
                    };
                    for name in holders.get(&id).into_iter().flatten() {
                        out.entry((id, name.clone())).or_default().push(FileRef {
                            snapshot: m.snapshot.clone(),
                            index: index.clone(),
                            path: join(name),
                        });
                    }
                    for n in tree.nodes.iter().filter(|n| n.kind == NodeType::Dir) {
                        stack.extend(n.subtree.map(|s| (join(&n.name), s)));
                    }
                }
            }
        }
        out
    }
}

/// A file that carries its own chunks (not a hard link to another path).
fn has_contents(n: &Node) -> bool {
    n.kind == NodeType::File && n.link().is_none()
}
