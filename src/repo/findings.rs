//! What `repo check` found, as a typed list: each finding names its kind,
//! the object at fault, and the snapshots and files it affects where they
//! are known. The CLI prints them as text lines or as JSON objects.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::core::format::id::Id;

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// `index.latest` names a root generation that does not exist.
    LostRoot,
    /// A manifest newer than the newest root that no root lists (a newer
    /// root generation may have been lost).
    UnlistedManifest,
    /// An index file cannot be read, does not match its name or does not
    /// decode.
    IndexFileUnreadable,
    /// A pack the index lists is not on storage.
    PackMissing,
    /// A pack cannot be downloaded or does not parse.
    PackUnreadable,
    /// A pack's content does not match the SHA-256 in its name.
    PackHashMismatch,
    /// A snapshot's manifest cannot be read or disagrees with its root.
    SnapshotUnreadable,
    /// A snapshot's trees hold something a restore would refuse (an unsafe
    /// entry, sizes that disagree with their chunks, more than the manifest
    /// declares or the limits allow).
    SnapshotMisshapen,
    /// A tree a snapshot needs is missing.
    TreeMissing,
    /// A tree a snapshot needs does not decode or hash to its id.
    TreeDamaged,
    /// A chunk is not in the repository index or its pack is missing.
    BlobMissing,
    /// A file's node says it was cut in a way the repository's config
    /// does not allow (`chunking` member, tree encoding 2).
    ChunkingNotAllowed,
    /// A chunk does not decode, does not hash to its id, or lies outside
    /// its pack.
    BlobDamaged,
}

/// One file (or folder) a finding affects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FileRef {
    pub snapshot: String,
    pub index: String,
    /// Relative to the index folder; empty for the index folder itself.
    pub path: String,
}

/// One problem `repo check` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The object at fault: a storage key (`packs/...`, `index/...`,
    /// `snapshots/...`, `index-N`) or a blob id in hex.
    pub object: String,
    /// Names of the snapshots affected, sorted (empty if none is known).
    pub snapshots: Vec<String>,
    /// The files affected, sorted (empty if none is known).
    pub files: Vec<FileRef>,
    /// What is wrong, in words.
    pub detail: String,
    /// A blob found bad, listed per file it affects (`damaged:` lines)
    /// rather than as one `problem:` line.
    #[serde(skip)]
    per_file: bool,
}

/// The per-file record of a bad blob, as `repo check` has always listed
/// it (`damaged` in its JSON).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Damage {
    pub snapshot: String,
    pub index: String,
    pub path: String,
    pub blob: String,
    pub problem: String,
}

impl Finding {
    /// A problem with one object, printed as one line (`detail`).
    pub fn new(kind: FindingKind, object: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding {
            kind,
            object: object.into(),
            snapshots: Vec::new(),
            files: Vec::new(),
            detail: detail.into(),
            per_file: false,
        }
    }

    /// A problem that affects these snapshots.
    pub fn in_snapshots(mut self, snapshots: impl IntoIterator<Item = String>) -> Finding {
        self.snapshots = snapshots
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        self
    }

    /// A problem at these files.
    pub fn at_files(mut self, files: impl IntoIterator<Item = FileRef>) -> Finding {
        self.files = files
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        self
    }

    /// A bad blob and the files that need it (none: no snapshot does);
    /// `why` says what is wrong with it.
    pub fn blob(kind: FindingKind, id: &Id, why: &str, files: BTreeSet<FileRef>) -> Finding {
        let snapshots: Vec<String> = files.iter().map(|f| f.snapshot.clone()).collect();
        Finding {
            per_file: true,
            ..Finding::new(kind, id.to_hex(), why)
                .in_snapshots(snapshots)
                .at_files(files)
        }
    }

    /// The one-line text of a finding not listed per file.
    fn problem_line(&self) -> Option<String> {
        match (self.per_file, self.files.is_empty()) {
            (false, _) => Some(self.detail.clone()),
            (true, true) => Some(format!(
                "blob {} (unreferenced): {}",
                &self.object[..8],
                self.detail
            )),
            (true, false) => None,
        }
    }
}

/// The text lines of `findings`: one per problem, in the order found.
pub fn problem_lines(findings: &[Finding]) -> Vec<String> {
    findings.iter().filter_map(Finding::problem_line).collect()
}

/// Every file a bad blob affects, sorted by snapshot, index and path.
pub fn damage(findings: &[Finding]) -> Vec<Damage> {
    let records: BTreeSet<Damage> = findings
        .iter()
        .filter(|f| f.per_file)
        .flat_map(|f| {
            f.files.iter().map(|file| Damage {
                snapshot: file.snapshot.clone(),
                index: file.index.clone(),
                path: file.path.clone(),
                blob: f.object.clone(),
                problem: f.detail.clone(),
            })
        })
        .collect();
    records.into_iter().collect()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn file(snapshot: &str, path: &str) -> FileRef {
        FileRef {
            snapshot: snapshot.into(),
            index: "logs".into(),
            path: path.into(),
        }
    }

    #[test]
    fn a_bad_blob_is_listed_per_file_and_names_its_snapshots_once() {
        let id = Id::of(b"chunk");
        let files = BTreeSet::from([file("s2", "b"), file("s1", "a"), file("s2", "a")]);
        let f = Finding::blob(FindingKind::BlobDamaged, &id, "bad", files);
        assert_eq!(f.snapshots, vec!["s1".to_string(), "s2".to_string()]);
        assert!(problem_lines(std::slice::from_ref(&f)).is_empty());
        let d = damage(&[f]);
        let order: Vec<(&str, &str)> = d
            .iter()
            .map(|d| (d.snapshot.as_str(), d.path.as_str()))
            .collect();
        assert_eq!(order, vec![("s1", "a"), ("s2", "a"), ("s2", "b")]);
        assert!(d
            .iter()
            .all(|d| d.blob == id.to_hex() && d.problem == "bad"));
    }

    #[test]
    fn a_bad_blob_no_snapshot_needs_is_one_problem_line() {
        let id = Id::of(b"chunk");
        let f = Finding::blob(FindingKind::BlobMissing, &id, "gone", BTreeSet::new());
        let pack = Finding::new(FindingKind::PackMissing, "packs/x", "pack x is missing");
        assert_eq!(
            problem_lines(&[pack, f.clone()]),
            vec![
                "pack x is missing".to_string(),
                format!("blob {} (unreferenced): gone", id.short())
            ]
        );
        assert!(damage(&[f]).is_empty());
    }
}
