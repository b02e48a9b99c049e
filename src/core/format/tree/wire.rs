//! A node as tree blobs hold it: one JSON object whose members come in a
//! fixed order, each written only when set (see docs/FORMAT.md). The
//! order is part of a tree's id, so it lives here, apart from how
//! [`Node`] arranges its members in memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};

use super::{Node, NodeType, Rare, RareBox};
use crate::core::chunking::Chunking;
use crate::core::format::id::Id;

/// What a node is written as, borrowed from it.
#[derive(Serialize)]
struct Borrowed<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: NodeType,
    mode: u32,
    mtime_ns: i64,
    size: u64,
    #[serde(skip_serializing_if = "is_zero")]
    inode: u64,
    #[serde(skip_serializing_if = "<[Id]>::is_empty")]
    chunks: &'a [Id],
    #[serde(skip_serializing_if = "Option::is_none")]
    subtree: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rdev: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    sparse: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    xattrs: &'a BTreeMap<String, String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::core::chunking::recorded"
    )]
    chunking: Option<Chunking>,
}

/// What a node is read from: the same members, owned.
#[derive(Deserialize)]
pub(super) struct Owned {
    name: String,
    #[serde(rename = "type")]
    kind: NodeType,
    mode: u32,
    mtime_ns: i64,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    inode: u64,
    #[serde(default)]
    chunks: Vec<Id>,
    #[serde(default)]
    subtree: Option<Id>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    uid: Option<u32>,
    #[serde(default)]
    gid: Option<u32>,
    #[serde(default)]
    user: Option<Arc<str>>,
    #[serde(default)]
    group: Option<Arc<str>>,
    #[serde(default)]
    rdev: Option<u64>,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    sparse: bool,
    #[serde(default)]
    xattrs: BTreeMap<String, String>,
    #[serde(default, with = "crate::core::chunking::recorded")]
    chunking: Option<Chunking>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let rare = self.rare.get();
        Borrowed {
            name: &self.name,
            kind: self.kind,
            mode: self.mode,
            mtime_ns: self.mtime_ns,
            size: self.size,
            inode: self.inode,
            chunks: &self.chunks,
            subtree: self.subtree,
            target: rare.target.as_deref(),
            uid: self.uid,
            gid: self.gid,
            user: self.user.as_deref(),
            group: self.group.as_deref(),
            rdev: rare.rdev,
            link: rare.link.as_deref(),
            sparse: self.sparse,
            xattrs: &rare.xattrs,
            chunking: self.chunking,
        }
        .serialize(s)
    }
}

impl From<Owned> for Node {
    fn from(w: Owned) -> Node {
        Node {
            name: w.name,
            kind: w.kind,
            mode: w.mode,
            mtime_ns: w.mtime_ns,
            size: w.size,
            inode: w.inode,
            chunks: w.chunks,
            subtree: w.subtree,
            uid: w.uid,
            gid: w.gid,
            user: w.user,
            group: w.group,
            sparse: w.sparse,
            chunking: w.chunking,
            rare: RareBox::from(Rare {
                target: w.target,
                rdev: w.rdev,
                link: w.link,
                xattrs: w.xattrs,
            }),
        }
    }
}
