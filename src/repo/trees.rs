//! Walking the trees of snapshots.

use crate::core::format::id::Id;
use crate::core::format::index::RepoIndex;
use crate::core::format::tree::{Node, NodeType};
use crate::repo::RepoReader;

/// Visits every file and directory of one root tree with its path, depth
/// first. A tree that cannot be read is passed to `on_error` with its path.
pub async fn walk_paths(
    reader: &RepoReader,
    index: &RepoIndex,
    root: Id,
    prefix: &str,
    mut on_node: impl FnMut(&str, &Node),
    mut on_error: impl FnMut(&str, Id, String),
) {
    let mut stack = vec![(prefix.to_string(), root)];
    while let Some((path, id)) = stack.pop() {
        let tree = match reader.tree(index, &id).await {
            Ok(t) => t,
            Err(e) => {
                on_error(&path, id, e.to_string());
                continue;
            }
        };
        for n in &tree.nodes {
            let p = format!("{path}/{}", n.name);
            on_node(&p, n);
            if n.kind == NodeType::Dir {
                if let Some(sub) = n.subtree {
                    stack.push((p, sub));
                }
            }
        }
    }
}
