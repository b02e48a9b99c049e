//! The last step of a check: each bad blob becomes one finding naming the
//! snapshots and files that need it.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::core::format::id::Id;
use crate::core::format::tree::Node;
use crate::repo::findings::{FileRef, Finding};
use crate::repo::trees::walk_paths;

use super::steps::{BadBlob, Checker};

impl Checker<'_> {
    /// Maps bad blobs to the snapshots and files that need them; each
    /// becomes one finding.
    pub(super) async fn map_damage(&mut self) {
        if self.bad_blobs.is_empty() {
            return;
        }
        let mut needed: HashMap<Id, BTreeSet<FileRef>> = HashMap::new();
        for m in self
            .manifests
            .iter()
            .filter(|m| !self.misshapen.contains(&m.uuid))
        {
            for (index_name, root_tree) in m.roots() {
                let mut hit = |path: &str, id: &Id| {
                    needed.entry(*id).or_default().insert(FileRef {
                        snapshot: m.snapshot.clone(),
                        index: index_name.clone(),
                        path: path.trim_start_matches('/').to_string(),
                    });
                };
                if self.bad_blobs.contains_key(&root_tree) {
                    hit("", &root_tree);
                    continue;
                }
                let bad = &self.bad_blobs;
                let on_node = |path: &str, n: &Node| {
                    for c in n.chunks.iter().chain(n.subtree.iter()) {
                        if bad.contains_key(c) {
                            hit(path, c);
                        }
                    }
                };
                let on_error = |_: &str, _: Id, _: String| {};
                walk_paths(self.reader, &self.index, root_tree, "", on_node, on_error).await;
            }
        }
        self.add_blob_findings(needed);
    }

    /// One finding per bad blob: those snapshots need first, then, sorted
    /// by id, those no snapshot needs. A blob an earlier finding already
    /// names (a tree a misshapen snapshot misses) is not repeated.
    fn add_blob_findings(&mut self, mut needed: HashMap<Id, BTreeSet<FileRef>>) {
        let named: HashSet<String> = self
            .report
            .findings
            .iter()
            .map(|f| f.object.clone())
            .collect();
        let mut bad: Vec<(&Id, &BadBlob)> = self.bad_blobs.iter().collect();
        bad.sort_by_key(|(id, _)| (!needed.contains_key(id), **id));
        let found: Vec<Finding> = bad
            .into_iter()
            .filter_map(|(id, (kind, why))| {
                let files = needed.remove(id).unwrap_or_default();
                if files.is_empty() && named.contains(&id.to_hex()) {
                    return None;
                }
                Some(Finding::blob(*kind, id, why, files))
            })
            .collect();
        self.report.findings.extend(found);
    }
}
