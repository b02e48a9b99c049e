//! A snapshot's trees renamed for a repository whose blob ids are computed
//! differently (`snapshot copy` to or from an encrypted repository, whose
//! ids are keyed per repository): every chunk id is replaced by the
//! destination's id of the same bytes, and every tree, from the leaves up,
//! is encoded again and named by the destination's scheme. The content and
//! every attribute stay as they are.

use std::collections::HashMap;

use crate::core::crypto::content_ids::IdScheme;
use crate::core::format::id::Id;
use crate::core::format::tree::Tree;
use crate::core::plan::read::MissingBlob;

/// The renamed trees: each new tree's id and encoding (leaves first), and
/// the new id of every old tree.
#[derive(Debug, Default)]
pub struct Rekeyed {
    pub trees: Vec<(Id, Vec<u8>)>,
    pub renamed: HashMap<Id, Id>,
}

/// Renames the trees under `roots`; `chunks` maps each old chunk id to the
/// destination's. A tree or chunk missing from the maps is an error.
pub fn rekey_trees(
    trees: &HashMap<Id, Tree>,
    roots: &[Id],
    chunks: &HashMap<Id, Id>,
    ids: &IdScheme,
) -> Result<Rekeyed, MissingBlob> {
    let mut out = Rekeyed::default();
    for root in roots {
        visit(*root, trees, chunks, ids, &mut out)?;
    }
    Ok(out)
}

fn visit(
    id: Id,
    trees: &HashMap<Id, Tree>,
    chunks: &HashMap<Id, Id>,
    ids: &IdScheme,
    out: &mut Rekeyed,
) -> Result<Id, MissingBlob> {
    if let Some(done) = out.renamed.get(&id) {
        return Ok(*done);
    }
    let mut tree = trees.get(&id).ok_or(MissingBlob(id))?.clone();
    for node in &mut tree.nodes {
        for c in &mut node.chunks {
            *c = *chunks.get(c).ok_or(MissingBlob(*c))?;
        }
        if let Some(sub) = node.subtree {
            node.subtree = Some(visit(sub, trees, chunks, ids, out)?);
        }
    }
    let encoded = tree.encode();
    let new = ids.id_of(&encoded);
    out.trees.push((new, encoded));
    out.renamed.insert(id, new);
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::crypto::keys::MasterKey;
    use crate::core::testing::{dir, file, store};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn chunks_and_subtrees_are_renamed_leaves_first_and_shared_trees_once() {
        let (a, b) = (Id::of(b"a"), Id::of(b"b"));
        let mut trees = HashMap::new();
        let leaf_id = store(&mut trees, Tree::new(vec![file("f", &[b"a", b"b"])]));
        let top = Tree::new(vec![
            dir("d", leaf_id),
            dir("e", leaf_id),
            file("g", &[b"a"]),
        ]);
        let top_id = store(&mut trees, top);
        let ids = IdScheme::keyed(
            crate::core::crypto::content_ids::KeyedIdKind::NEWEST,
            &MasterKey::from_bytes([5; 32]).content_id_key(),
        );
        let chunks: HashMap<Id, Id> = [a, b].iter().map(|c| (*c, Id::of(&c.0))).collect();
        let out = rekey_trees(&trees, &[top_id], &chunks, &ids).unwrap();
        assert_eq!(out.trees.len(), 2, "the shared leaf is encoded once");
        let (new_leaf_id, leaf_bytes) = &out.trees[0];
        assert_eq!(*new_leaf_id, ids.id_of(leaf_bytes));
        let new_leaf = Tree::decode(leaf_bytes).unwrap();
        assert_eq!(new_leaf.nodes[0].chunks, vec![chunks[&a], chunks[&b]]);
        let new_top = Tree::decode(&out.trees[1].1).unwrap();
        assert!(new_top.nodes[..2]
            .iter()
            .all(|n| n.subtree == Some(*new_leaf_id)));
        assert_eq!(new_top.nodes[2].chunks, vec![chunks[&a]]);
        assert_eq!(out.renamed[&top_id], out.trees[1].0);
        let partial: HashMap<Id, Id> = [(a, a)].into_iter().collect();
        assert_eq!(
            rekey_trees(&trees, &[top_id], &partial, &ids).unwrap_err(),
            MissingBlob(b)
        );
    }
}
