//! Snapshot manifests (`snapshots/<uuid>.json`) and the per-snapshot summary
//! that root generations carry.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::core::error::FormatError;
use crate::core::format::id::Id;
use crate::core::format::naming::validate_name;
use crate::core::format::tree::Node;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SnapshotState {
    Success,
    Partial,
    Failed,
}

impl SnapshotState {
    pub fn as_str(&self) -> &'static str {
        match self {
            SnapshotState::Success => "SUCCESS",
            SnapshotState::Partial => "PARTIAL",
            SnapshotState::Failed => "FAILED",
        }
    }
}

/// Figures for one index (or the global state) in one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexStats {
    /// Root tree of the index's directory.
    pub tree: Option<Id>,
    pub files: u64,
    pub dirs: u64,
    /// Plain bytes of all files.
    pub size_in_bytes: u64,
    /// Plain bytes of data blobs this snapshot added to the repository.
    pub new_bytes: u64,
    /// Stored (compressed) bytes of blobs this snapshot added.
    pub new_stored_bytes: u64,
    /// Files whose contents were read (the rest were unchanged since the parent).
    pub files_read: u64,
    /// Mode and mtime of the index's own folder, restored with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_mtime_ns: Option<i64>,
    /// Owner and extended attributes of the index's own folder (written
    /// since tree encoding 2; absent before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_attrs: Option<EntryAttrs>,
}

/// Owner and extended attributes of an entry besides its mode and mtime,
/// with the meaning of the same fields of a tree node: what a manifest
/// records of an index's own folder, and what a restore plan gives each
/// entry (entries of trees before encoding 2 have none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntryAttrs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, String>,
}

/// The distinct [`EntryAttrs`] of a restore plan, each held once: most
/// entries of a tree share one owner and have no xattrs, and a plan of
/// 50,000 files held a box and two owner names for each (8 MB).
#[derive(Debug, Default)]
pub struct SharedAttrs {
    held: HashSet<Arc<EntryAttrs>>,
    /// The record handed out last: entries of a folder mostly follow one
    /// another with the same owner, and a match here copies nothing.
    last: Option<Arc<EntryAttrs>>,
}

impl SharedAttrs {
    /// What `n` records, shared with every entry that records the same,
    /// or `None`.
    pub fn of(&mut self, n: &Node) -> Option<Arc<EntryAttrs>> {
        if n.uid.is_none() && n.gid.is_none() && n.xattrs().is_empty() {
            return None;
        }
        if let Some(last) = self.last.as_ref().filter(|a| a.recorded_by(n)) {
            return Some(last.clone());
        }
        let attrs = EntryAttrs {
            uid: n.uid,
            gid: n.gid,
            user: n.user.clone(),
            group: n.group.clone(),
            xattrs: n.xattrs().clone(),
        };
        let shared = match self.held.get(&attrs) {
            Some(held) => held.clone(),
            None => {
                let attrs = Arc::new(attrs);
                self.held.insert(attrs.clone());
                attrs
            }
        };
        self.last = Some(shared.clone());
        Some(shared)
    }
}

impl EntryAttrs {
    /// Whether `n` records exactly these attributes.
    fn recorded_by(&self, n: &Node) -> bool {
        self.uid == n.uid
            && self.gid == n.gid
            && self.user == n.user
            && self.group == n.group
            && &self.xattrs == n.xattrs()
    }
}

impl IndexStats {
    /// Adds `other`'s counts, saturating: a crafted manifest's counts must
    /// not overflow a reader.
    pub fn add(&mut self, other: &IndexStats) {
        self.files = self.files.saturating_add(other.files);
        self.dirs = self.dirs.saturating_add(other.dirs);
        self.size_in_bytes = self.size_in_bytes.saturating_add(other.size_in_bytes);
        self.new_bytes = self.new_bytes.saturating_add(other.new_bytes);
        self.new_stored_bytes = self.new_stored_bytes.saturating_add(other.new_stored_bytes);
        self.files_read = self.files_read.saturating_add(other.files_read);
    }
}

/// A file left out of a PARTIAL snapshot, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    pub index: String,
    pub path: String,
    pub reason: String,
}

pub const GLOBAL_STATE: &str = "_global_state";

/// Decoding is strict (unknown fields are refused, index names must be
/// valid), and readers check a manifest against the summary and hash its
/// root records ([`Manifest::disagreement`]): a flipped bit never changes
/// what a restore produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub snapshot: String,
    pub uuid: String,
    pub state: SnapshotState,
    pub start_time_in_millis: i64,
    pub end_time_in_millis: i64,
    pub indices: BTreeMap<String, IndexStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_state: Option<IndexStats>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub failures: Vec<Failure>,
}

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifests always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Manifest, FormatError> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| FormatError::json("snapshot manifest", e))?;
        if m.version != 1 {
            return Err(FormatError::Version(m.version));
        }
        for name in m.indices.keys() {
            validate_name("index", name).map_err(|e| FormatError::Invalid(e.to_string()))?;
        }
        Ok(m)
    }

    /// The first field in which this manifest disagrees with the summary a
    /// root records of it (the manifest's hash aside), if any.
    pub fn disagreement(&self, recorded: &SnapshotSummary) -> Option<&'static str> {
        let s = self.summary();
        let r = recorded;
        let fields = [
            ("snapshot", s.snapshot == r.snapshot),
            ("uuid", s.uuid == r.uuid),
            ("state", s.state == r.state),
            (
                "start_time_in_millis",
                s.start_time_in_millis == r.start_time_in_millis,
            ),
            (
                "end_time_in_millis",
                s.end_time_in_millis == r.end_time_in_millis,
            ),
            ("indices", s.indices == r.indices),
            (
                "include_global_state",
                s.include_global_state == r.include_global_state,
            ),
            ("size_in_bytes", s.size_in_bytes == r.size_in_bytes),
            ("new_bytes", s.new_bytes == r.new_bytes),
            ("new_stored_bytes", s.new_stored_bytes == r.new_stored_bytes),
            ("files", s.files == r.files),
            ("failures", s.failures == r.failures),
        ];
        fields.iter().find(|(_, same)| !same).map(|(f, _)| *f)
    }

    /// Totals over every index and the global state.
    pub fn totals(&self) -> IndexStats {
        let mut t = IndexStats::default();
        for s in self.indices.values().chain(self.global_state.iter()) {
            t.add(s);
        }
        t.tree = None;
        t
    }

    pub fn summary(&self) -> SnapshotSummary {
        let t = self.totals();
        SnapshotSummary {
            snapshot: self.snapshot.clone(),
            uuid: self.uuid.clone(),
            state: self.state,
            start_time_in_millis: self.start_time_in_millis,
            end_time_in_millis: self.end_time_in_millis,
            indices: self.indices.keys().cloned().collect(),
            include_global_state: self.global_state.is_some(),
            size_in_bytes: t.size_in_bytes,
            new_bytes: t.new_bytes,
            new_stored_bytes: t.new_stored_bytes,
            files: t.files,
            failures: self.failures.len() as u64,
            manifest: None,
            policy: self.metadata.get(POLICY_METADATA_KEY).cloned(),
        }
    }

    /// Every root tree the snapshot references, named by index (global state
    /// under `_global_state`).
    pub fn roots(&self) -> Vec<(String, Id)> {
        let mut out: Vec<(String, Id)> = self
            .indices
            .iter()
            .filter_map(|(n, s)| s.tree.map(|t| (n.clone(), t)))
            .collect();
        if let Some(t) = self.global_state.as_ref().and_then(|g| g.tree) {
            out.push((GLOBAL_STATE.to_string(), t));
        }
        out
    }
}

/// The metadata key naming the lifecycle policy that made a snapshot
/// (Elasticsearch's SLM writes `{"policy": "<id>"}`).
pub const POLICY_METADATA_KEY: &str = "policy";

/// What a root generation records of each snapshot: enough to list, sort and
/// page snapshots without opening their manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    pub snapshot: String,
    pub uuid: String,
    pub state: SnapshotState,
    pub start_time_in_millis: i64,
    pub end_time_in_millis: i64,
    pub indices: Vec<String>,
    pub include_global_state: bool,
    pub size_in_bytes: u64,
    pub new_bytes: u64,
    pub new_stored_bytes: u64,
    pub files: u64,
    pub failures: u64,
    /// SHA-256 of the manifest object's bytes, binding it to the root
    /// (absent in roots written before snapkeep recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Id>,
    /// The lifecycle policy that made the snapshot (its `metadata.policy`,
    /// as Elasticsearch records it), so retention selects a policy's
    /// snapshots without opening manifests. Absent in older roots and for
    /// snapshots no policy made; the manifest stays the authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

impl SnapshotSummary {
    pub fn duration_in_millis(&self) -> i64 {
        self.end_time_in_millis
            .saturating_sub(self.start_time_in_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::file;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn owned(name: &str, user: &str, xattr: Option<&str>) -> Node {
        let mut n = file(name, &[b"x"]);
        n.uid = Some(1000);
        n.gid = Some(1000);
        n.user = Some(user.into());
        n.group = Some("staff".into());
        if let Some(v) = xattr {
            n.rare_mut().xattrs.insert("user.note".into(), v.into());
        }
        n
    }

    #[test]
    fn equal_attributes_are_held_once_and_others_apart() {
        let mut shared = SharedAttrs::default();
        let a = shared.of(&owned("a", "ann", None)).unwrap();
        let b = shared.of(&owned("b", "ann", None)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.user.as_deref(), Some("ann"));
        let c = shared.of(&owned("c", "bob", None)).unwrap();
        let d = shared.of(&owned("d", "ann", Some("v"))).unwrap();
        assert!(!Arc::ptr_eq(&a, &c) && !Arc::ptr_eq(&a, &d));
        assert_eq!(d.xattrs.get("user.note").map(String::as_str), Some("v"));
        // Back to an earlier record after others: still the one copy.
        let e = shared.of(&owned("e", "ann", None)).unwrap();
        assert!(Arc::ptr_eq(&a, &e));
        // A node that records none of them gets none.
        assert_eq!(shared.of(&file("f", &[b"x"])), None);
        assert_eq!(shared.held.len(), 3);
    }
}
