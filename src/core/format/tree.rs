//! Tree blobs: one directory level. Stored as canonical JSON (entries sorted
//! by name, fields in a fixed order) so an unchanged directory always encodes
//! to the same bytes and therefore the same id.
//!
//! Tree encoding versions: a tree whose nodes use nothing newer than
//! version 1 (file, dir, symlink; name, mode, mtime, size, inode, chunks,
//! subtree, target) is written exactly as version 1 wrote it,
//! `{"nodes":[...]}`, so its id never changes. A tree with any member or
//! node kind of version 2 (owners, extended attributes, hard links, special
//! files, sparse files) starts with the bytes `{"version":2,"nodes":[`.
//! Readers look at that prefix before anything else and refuse a version
//! they do not know, naming it (see docs/FORMAT.md).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::core::chunking::Chunking;
use crate::core::error::FormatError;
use crate::core::format::id::Id;

mod wire;

/// The newest tree encoding version this snapkeep reads and writes.
pub const TREE_VERSION: u32 = 2;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    #[default]
    File,
    Dir,
    Symlink,
    /// A named pipe (tree encoding 2).
    Fifo,
    /// A Unix domain socket's name (tree encoding 2); restore skips it.
    Socket,
    /// A character device, `rdev` says which (tree encoding 2).
    Chardev,
    /// A block device, `rdev` says which (tree encoding 2).
    Blockdev,
}

impl NodeType {
    /// The name the tree encoding (and every view) uses.
    pub fn name(self) -> &'static str {
        match self {
            NodeType::File => "file",
            NodeType::Dir => "dir",
            NodeType::Symlink => "symlink",
            NodeType::Fifo => "fifo",
            NodeType::Socket => "socket",
            NodeType::Chardev => "chardev",
            NodeType::Blockdev => "blockdev",
        }
    }

    /// Fifos, sockets and devices: no contents, restored by `mknod`.
    pub fn is_special(self) -> bool {
        matches!(
            self,
            NodeType::Fifo | NodeType::Socket | NodeType::Chardev | NodeType::Blockdev
        )
    }
}

/// One entry of a directory. Members after `target` belong to tree
/// encoding 2 and are written only when present. Encoded through
/// [`wire`], which keeps the field order of the JSON fixed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "wire::Owned")]
pub struct Node {
    pub name: String,
    pub kind: NodeType,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Plain size in bytes (files only; 0 otherwise).
    pub size: u64,
    /// Inode number at snapshot time, used to skip unchanged files next time.
    pub inode: u64,
    /// Data blobs whose concatenation is the file's contents.
    pub chunks: Vec<Id>,
    /// Tree blob of a directory.
    pub subtree: Option<Id>,
    /// Owner's user id.
    pub uid: Option<u32>,
    /// Owner's group id.
    pub gid: Option<u32>,
    /// Owner's user name where the snapshot's host knew one: restore as
    /// root looks it up first and falls back to `uid`. Shared: a walk
    /// gives every node of one owner the same name, not a copy each.
    pub user: Option<Arc<str>>,
    /// Owner's group name, like `user`.
    pub group: Option<Arc<str>>,
    /// The file had holes when it was read (fewer blocks than its size):
    /// restore leaves its zero blocks unwritten.
    pub sparse: bool,
    /// How the file was cut into `chunks` when not by content
    /// (`pages:8KiB`); `None` for FastCDC and for nodes without contents.
    pub chunking: Option<Chunking>,
    /// What few nodes have (see [`Rare`]).
    pub rare: RareBox,
}

/// The members of a node that most nodes lack, held apart so that every
/// other node is smaller: a snapshot or restore of millions of files holds
/// a node per file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rare {
    /// Target of a symlink, as stored by the link.
    pub target: Option<String>,
    /// Device number of a character or block device (`st_rdev`).
    pub rdev: Option<u64>,
    /// A hard link: the `/`-separated path, from the root of the same
    /// index (or of the global state), of the file with the same inode that
    /// holds the chunks. Such a node has no chunks of its own.
    pub link: Option<String>,
    /// Extended attributes (POSIX ACLs included): name to standard base64
    /// of the value, sorted by name.
    pub xattrs: BTreeMap<String, String>,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self == &Rare::default()
    }
}

/// A node's [`Rare`] members, allocated only when one is set. An empty
/// box equals none, so how a node was built never changes what it equals.
#[derive(Debug, Clone, Default)]
pub struct RareBox(Option<Box<Rare>>);

impl PartialEq for RareBox {
    fn eq(&self, other: &RareBox) -> bool {
        self.get() == other.get()
    }
}

impl Eq for RareBox {}

static NO_RARE: Rare = Rare {
    target: None,
    rdev: None,
    link: None,
    xattrs: BTreeMap::new(),
};

impl RareBox {
    /// The members, empty ones when none was set.
    pub fn get(&self) -> &Rare {
        self.0.as_deref().unwrap_or(&NO_RARE)
    }

    /// The members to set, allocated on first use.
    pub fn get_mut(&mut self) -> &mut Rare {
        self.0.get_or_insert_with(Box::default)
    }
}

impl From<Rare> for RareBox {
    /// Boxed only when a member is set.
    fn from(rare: Rare) -> RareBox {
        RareBox((!rare.is_empty()).then(|| Box::new(rare)))
    }
}

impl Node {
    pub fn is_dir(&self) -> bool {
        self.kind == NodeType::Dir
    }

    /// The tree encoding version this node needs.
    pub fn version(&self) -> u32 {
        let v2 = self.kind.is_special()
            || self.uid.is_some()
            || self.gid.is_some()
            || self.user.is_some()
            || self.group.is_some()
            || self.rdev().is_some()
            || self.link().is_some()
            || self.sparse
            || !self.xattrs().is_empty()
            || self.chunking.is_some();
        if v2 {
            2
        } else {
            1
        }
    }

    /// Target of a symlink ([`Rare::target`]).
    pub fn target(&self) -> Option<&str> {
        self.rare.get().target.as_deref()
    }

    /// The path a hard link shares its inode with ([`Rare::link`]).
    pub fn link(&self) -> Option<&str> {
        self.rare.get().link.as_deref()
    }

    /// Device number of a device node ([`Rare::rdev`]).
    pub fn rdev(&self) -> Option<u64> {
        self.rare.get().rdev
    }

    /// Extended attributes, name to base64 value ([`Rare::xattrs`]).
    pub fn xattrs(&self) -> &BTreeMap<String, String> {
        &self.rare.get().xattrs
    }

    /// The rare members, to set one.
    pub fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_mut()
    }

    /// Counted as a file by manifests and shape checks: everything but
    /// folders and symlinks.
    pub fn is_file_like(&self) -> bool {
        !matches!(self.kind, NodeType::Dir | NodeType::Symlink)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// How a tree is written: `version` only from version 2 on, first.
#[derive(Serialize)]
struct Encoded<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    nodes: &'a [Node],
}

#[derive(Deserialize)]
struct Decoded {
    #[serde(default)]
    version: Option<u32>,
    nodes: Vec<Node>,
}

const VERSION_PREFIX: &[u8] = b"{\"version\":";

/// The version a tree declares by its leading bytes (1 when it starts
/// otherwise), read before the rest so a newer tree is refused by name
/// even when it holds node kinds this reader has never heard of.
fn declared_version(bytes: &[u8]) -> Result<u32, FormatError> {
    let Some(rest) = bytes.strip_prefix(VERSION_PREFIX) else {
        return Ok(1);
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits])
        .ok()
        .and_then(|d| d.parse::<u32>().ok())
        .ok_or_else(|| FormatError::Invalid("tree has an unreadable version".into()))
}

/// A tree entry that must not be restored as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeEntry {
    #[error("entry name {0:?} would escape its directory")]
    EscapingName(String),
    #[error("entry name {0:?} appears twice in one directory")]
    Duplicate(String),
    #[error("entry {0:?} is a directory without a subtree")]
    MissingSubtree(String),
    #[error("entry {0:?} is a symlink without a target")]
    MissingTarget(String),
    #[error("entry name {0:?} is longer than 255 bytes")]
    NameTooLong(String),
    #[error("symlink {0:?} has an empty target or one with a NUL byte")]
    BadTarget(String),
    #[error("entry {0:?} is out of canonical order")]
    Unsorted(String),
    #[error("hard link {0:?} names no safe path, or also has chunks or is not a file")]
    BadLink(String),
    #[error("entry {0:?} has an extended attribute with a bad name or value")]
    BadXattr(String),
}

/// A name is safe when it is exactly one path component.
///
/// A backslash is an ordinary character in POSIX names (snapshots take such
/// files, so restores must give them back); restores only run on POSIX.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

impl Tree {
    /// Sorts the entries into canonical order.
    pub fn new(mut nodes: Vec<Node>) -> Tree {
        nodes.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Tree { nodes }
    }

    /// The version this tree is written as: the newest any node needs.
    pub fn version(&self) -> u32 {
        self.nodes.iter().map(Node::version).max().unwrap_or(1)
    }

    pub fn encode(&self) -> Vec<u8> {
        let version = self.version();
        let encoded = Encoded {
            version: (version > 1).then_some(version),
            nodes: &self.nodes,
        };
        serde_json::to_vec(&encoded).expect("trees always serialize")
    }

    /// Decoded trees are held for a whole restore or snapshot (a node per
    /// file), so the slack that growing vectors leave is given back: one
    /// chunk id in a vector grown to four, and up to half the node list.
    ///
    /// A tree declaring a version this reader does not know is refused
    /// before its nodes are parsed; one whose declared version differs
    /// from what its nodes need is refused as not canonical (its id would
    /// not be the one this encoder gives it).
    pub fn decode(bytes: &[u8]) -> Result<Tree, FormatError> {
        let declared = declared_version(bytes)?;
        if declared > TREE_VERSION {
            return Err(FormatError::TreeVersion(declared));
        }
        let decoded: Decoded =
            serde_json::from_slice(bytes).map_err(|e| FormatError::json("tree", e))?;
        match decoded.version {
            Some(v) if v > TREE_VERSION => return Err(FormatError::TreeVersion(v)),
            _ => {}
        }
        let mut tree = Tree {
            nodes: decoded.nodes,
        };
        let needed = tree.version();
        if decoded.version != (needed > 1).then_some(needed) {
            return Err(FormatError::Invalid(format!(
                "tree declares encoding version {} but its entries need version {needed}",
                decoded.version.unwrap_or(1)
            )));
        }
        tree.nodes.shrink_to_fit();
        for node in &mut tree.nodes {
            node.chunks.shrink_to_fit();
        }
        Ok(tree)
    }

    pub fn id(&self) -> Id {
        Id::of(&self.encode())
    }

    /// Gives every node's owner names the copy `seen` already holds (and
    /// adds the new ones to it): decoding allocates two names per node,
    /// and a reader holding many trees needs one per owner.
    pub fn share_owner_names(&mut self, seen: &mut HashSet<Arc<str>>) {
        let mut share = |name: &mut Option<Arc<str>>| {
            if let Some(n) = name {
                match seen.get(&**n) {
                    Some(held) => *n = held.clone(),
                    None => {
                        seen.insert(n.clone());
                    }
                }
            }
        };
        for node in &mut self.nodes {
            share(&mut node.user);
            share(&mut node.group);
        }
    }

    pub fn get(&self, name: &str) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_bytes().cmp(name.as_bytes()))
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// Checks that restoring this level cannot write outside its directory:
    /// every name is one component, unique, and every node is complete.
    pub fn validate(&self) -> Result<(), UnsafeEntry> {
        let mut seen = std::collections::HashSet::new();
        let mut prev: Option<&str> = None;
        for n in &self.nodes {
            if !is_safe_name(&n.name) {
                return Err(UnsafeEntry::EscapingName(n.name.clone()));
            }
            if n.name.len() > 255 {
                let mut cut = 64;
                while !n.name.is_char_boundary(cut) {
                    cut -= 1;
                }
                return Err(UnsafeEntry::NameTooLong(format!("{}...", &n.name[..cut])));
            }
            if !seen.insert(n.name.as_str()) {
                return Err(UnsafeEntry::Duplicate(n.name.clone()));
            }
            // Lookups and diffs rely on the canonical (byte-sorted) order.
            if prev.is_some_and(|p: &str| p.as_bytes() > n.name.as_bytes()) {
                return Err(UnsafeEntry::Unsorted(n.name.clone()));
            }
            prev = Some(n.name.as_str());
            match n.kind {
                NodeType::Dir if n.subtree.is_none() => {
                    return Err(UnsafeEntry::MissingSubtree(n.name.clone()))
                }
                NodeType::Symlink if n.target().is_none() => {
                    return Err(UnsafeEntry::MissingTarget(n.name.clone()))
                }
                NodeType::Symlink
                    if n.target()
                        .as_ref()
                        .is_some_and(|t| t.is_empty() || t.contains('\0')) =>
                {
                    return Err(UnsafeEntry::BadTarget(n.name.clone()))
                }
                _ => {}
            }
            check_v2_members(n)?;
        }
        Ok(())
    }
}

/// A hard link names a safe path and holds no chunks; extended attribute
/// names are non-empty, NUL-free and at most 255 bytes, values base64.
fn check_v2_members(n: &Node) -> Result<(), UnsafeEntry> {
    if let Some(link) = n.link() {
        let safe = link.split('/').all(is_safe_name) && link.len() <= 4096;
        if !safe || !n.chunks.is_empty() || n.kind != NodeType::File {
            return Err(UnsafeEntry::BadLink(n.name.clone()));
        }
    }
    use base64::Engine;
    for (name, value) in n.xattrs() {
        let bad_name = name.is_empty() || name.len() > 255 || name.contains('\0');
        let engine = base64::engine::general_purpose::STANDARD;
        if bad_name || engine.decode(value).is_err() {
            return Err(UnsafeEntry::BadXattr(n.name.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn file(name: &str) -> Node {
        testing::file(name, &[b"abc"]).with_mtime(1).with_inode(7)
    }

    #[test]
    fn canonical_order_gives_stable_ids() {
        let a = Tree::new(vec![file("b"), file("a"), file("é")]);
        let b = Tree::new(vec![file("é"), file("a"), file("b")]);
        assert_eq!(a.id(), b.id());
        assert_eq!(Tree::decode(&a.encode()).unwrap(), a);
        assert_eq!(a.get("b").unwrap().name, "b");
        assert!(a.get("zz").is_none());
    }

    #[test]
    fn escaping_and_duplicate_names_are_refused() {
        for bad in ["..", ".", "", "a/b", "/etc", "x\0"] {
            let t = Tree::new(vec![file(bad)]);
            assert!(
                matches!(t.validate(), Err(UnsafeEntry::EscapingName(_))),
                "{bad:?}"
            );
        }
        let t = Tree::new(vec![file("a"), file("a")]);
        assert!(matches!(t.validate(), Err(UnsafeEntry::Duplicate(_))));
        let t = Tree::new(vec![file(&"n".repeat(256))]);
        assert!(matches!(t.validate(), Err(UnsafeEntry::NameTooLong(_))));
        Tree::new(vec![file(&"n".repeat(255))]).validate().unwrap();
        for target in ["", "a\0b"] {
            let mut link = file("l");
            link.kind = NodeType::Symlink;
            link.rare_mut().target = Some(target.into());
            let t = Tree::new(vec![link]);
            assert!(matches!(t.validate(), Err(UnsafeEntry::BadTarget(_))));
        }
        let t = Tree::new(vec![file("back\\slash"), file("new\nline")]);
        assert_eq!(t.validate(), Ok(()));
        Tree::new(vec![file("a"), file("..a"), file("ünïcode")])
            .validate()
            .unwrap();
        let unsorted = Tree {
            nodes: vec![file("c"), file("b")],
        };
        assert!(matches!(unsorted.validate(), Err(UnsafeEntry::Unsorted(_))));
    }

    #[test]
    fn trees_without_new_members_keep_their_version_1_bytes() {
        let mut link = file("current");
        link.kind = NodeType::Symlink;
        link.chunks.clear();
        link.size = 0;
        link.rare_mut().target = Some("a".into());
        let t = Tree::new(vec![file("a"), link]);
        let want = format!(
            "{{\"nodes\":[{{\"name\":\"a\",\"type\":\"file\",\"mode\":420,\"mtime_ns\":1,\"size\":3,\"inode\":7,\"chunks\":[\"{}\"]}},{{\"name\":\"current\",\"type\":\"symlink\",\"mode\":420,\"mtime_ns\":1,\"size\":0,\"inode\":7,\"target\":\"a\"}}]}}",
            Id::of(b"abc").to_hex()
        );
        assert_eq!(String::from_utf8(t.encode()).unwrap(), want);
        assert_eq!(t.version(), 1);
        assert_eq!(Tree::decode(want.as_bytes()).unwrap(), t);
    }

    #[test]
    fn owner_names_are_shared_across_trees() {
        let owned = |name: &str, user: &str| {
            let mut n = file(name);
            n.user = Some(user.into());
            n
        };
        let mut seen = HashSet::new();
        let mut one =
            Tree::decode(&Tree::new(vec![owned("a", "pg"), owned("b", "pg")]).encode()).unwrap();
        let mut two =
            Tree::decode(&Tree::new(vec![owned("c", "pg"), owned("d", "ann")]).encode()).unwrap();
        let before = two.clone();
        one.share_owner_names(&mut seen);
        two.share_owner_names(&mut seen);
        let pg = one.nodes[0].user.clone().unwrap();
        assert!(Arc::ptr_eq(&pg, one.nodes[1].user.as_ref().unwrap()));
        assert!(Arc::ptr_eq(&pg, two.nodes[0].user.as_ref().unwrap()));
        assert_eq!(two, before, "sharing changes no name");
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn a_node_without_rare_members_holds_no_box_for_them() {
        // Every file's node is held by a snapshot's walk and a restore's
        // trees: the members few nodes have cost others a pointer.
        assert!(std::mem::size_of::<Node>() <= 184);
        let mut set_then_cleared = file("a");
        set_then_cleared.rare_mut().target = None;
        assert_eq!(set_then_cleared, file("a"));
        assert_eq!(
            Tree::new(vec![set_then_cleared]).id(),
            Tree::new(vec![file("a")]).id()
        );
        let decoded = Tree::decode(&Tree::new(vec![file("a")]).encode()).unwrap();
        assert!(decoded.nodes[0].rare.0.is_none());
    }

    #[test]
    fn new_members_make_a_version_2_tree_that_round_trips() {
        let mut owned = file("a");
        owned.uid = Some(1234);
        owned.gid = Some(0);
        owned.user = Some("pg".into());
        owned
            .rare_mut()
            .xattrs
            .insert("user.k".into(), "dg==".into());
        let mut hard = file("b");
        hard.chunks.clear();
        hard.rare_mut().link = Some("a".into());
        let mut dev = file("null");
        dev.kind = NodeType::Chardev;
        dev.chunks.clear();
        dev.size = 0;
        dev.rare_mut().rdev = Some(0x103);
        let t = Tree::new(vec![owned, hard, dev]);
        let bytes = t.encode();
        assert!(
            bytes.starts_with(b"{\"version\":2,\"nodes\":["),
            "{bytes:?}"
        );
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"type\":\"chardev\""), "{text}");
        assert!(!text.contains("\"target\"") && text.contains("\"rdev\":259"));
        assert_eq!(Tree::decode(&bytes).unwrap(), t);
        t.validate().unwrap();
        // One new member is enough.
        let mut sparse = file("s");
        sparse.sparse = true;
        assert_eq!(Tree::new(vec![sparse]).version(), 2);
    }

    #[test]
    fn a_paged_file_records_its_chunking_last_as_a_name() {
        let mut paged = file("16384");
        paged.uid = Some(26);
        paged.chunking = Some(Chunking::Pages { page_size: 8192 });
        let t = Tree::new(vec![paged, file("plain")]);
        let text = String::from_utf8(t.encode()).unwrap();
        assert!(text.starts_with("{\"version\":2,"), "{text}");
        assert!(
            text.contains("\"uid\":26,\"chunking\":\"pages:8KiB\"}"),
            "{text}"
        );
        assert_eq!(text.matches("chunking").count(), 1, "{text}");
        assert_eq!(Tree::decode(text.as_bytes()).unwrap(), t);
        let auto = text.replace("pages:8KiB", "auto");
        assert!(matches!(
            Tree::decode(auto.as_bytes()),
            Err(FormatError::Json { .. })
        ));
    }

    #[test]
    fn a_newer_or_misdeclared_version_is_refused_by_name() {
        let newer = br#"{"version":3,"nodes":[{"name":"x","type":"door","mode":1,"mtime_ns":0}]}"#;
        assert_eq!(Tree::decode(newer), Err(FormatError::TreeVersion(3)));
        assert!(FormatError::TreeVersion(3)
            .to_string()
            .contains("version 3"));
        let spaced = br#"{"nodes":[],"version":9}"#;
        assert_eq!(Tree::decode(spaced), Err(FormatError::TreeVersion(9)));
        // v2 members without the declaration, or a declaration without them.
        let undeclared = br#"{"nodes":[{"name":"x","type":"file","mode":1,"mtime_ns":0,"uid":5}]}"#;
        assert!(matches!(
            Tree::decode(undeclared),
            Err(FormatError::Invalid(_))
        ));
        let needless =
            br#"{"version":2,"nodes":[{"name":"x","type":"file","mode":1,"mtime_ns":0}]}"#;
        assert!(matches!(
            Tree::decode(needless),
            Err(FormatError::Invalid(_))
        ));
        let explicit_1 = br#"{"version":1,"nodes":[]}"#;
        assert!(matches!(
            Tree::decode(explicit_1),
            Err(FormatError::Invalid(_))
        ));
    }

    #[test]
    fn unsafe_hard_links_and_attributes_are_refused() {
        for bad in ["../x", "", "a//b", "/etc/passwd", "a/./b"] {
            let mut n = file("l");
            n.chunks.clear();
            n.rare_mut().link = Some(bad.into());
            let t = Tree::new(vec![n]);
            assert!(
                matches!(t.validate(), Err(UnsafeEntry::BadLink(_))),
                "{bad:?}"
            );
        }
        let mut with_chunks = file("l");
        with_chunks.rare_mut().link = Some("a".into());
        assert!(matches!(
            Tree::new(vec![with_chunks]).validate(),
            Err(UnsafeEntry::BadLink(_))
        ));
        for (name, value) in [("", "dg=="), ("user.x", "not base64!")] {
            let mut n = file("x");
            n.rare_mut().xattrs.insert(name.into(), value.into());
            assert!(matches!(
                Tree::new(vec![n]).validate(),
                Err(UnsafeEntry::BadXattr(_))
            ));
        }
    }
}
