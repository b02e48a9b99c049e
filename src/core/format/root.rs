//! Root generations: `index-N` is the whole repository state at generation N
//! (every snapshot and the index files that locate their blobs). A new
//! generation is committed with a create-only put, so two writers can never
//! both commit N; the loser re-reads and rebases.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::core::error::FormatError;
use crate::core::format::id::Id;
use crate::core::format::manifest::SnapshotSummary;

/// The largest generation a root may have (2^63 - 1).
pub const MAX_GENERATION: u64 = i64::MAX as u64;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    pub version: u32,
    pub generation: u64,
    pub snapshots: Vec<SnapshotSummary>,
    /// Index files (`index/<id>`) that together locate every live blob.
    pub index_files: Vec<Id>,
    /// Repository settings (absent in roots written before settings existed).
    #[serde(default)]
    pub settings: RepoSettings,
    /// The newest schedule slot each lifecycle policy committed a snapshot
    /// for (policy id → slot): the fence that makes each slot commit at
    /// most once across nodes. Absent when empty, so roots of repositories
    /// without policies are byte-for-byte what they were.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub slm_slots: BTreeMap<String, SlotRecord>,
}

/// The slot a policy last committed, and the epoch of the claim that ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecord {
    /// The slot's fire time (milliseconds since the Unix epoch): its id.
    pub slot_ms: i64,
    /// The claim epoch that committed it; recorded to tell which claim
    /// ran the slot, never compared (any second commit of a recorded slot
    /// is refused, whatever its epoch).
    pub epoch: u64,
}

/// What a scheduled snapshot's commit carries: the policy, the slot it
/// runs, and the epoch of the claim it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotFence {
    pub policy: String,
    pub slot_ms: i64,
    pub epoch: u64,
}

impl SlotFence {
    /// Whether `root` refuses this slot: it records the policy at this slot
    /// or a newer one (a policy's slots commit in increasing order).
    pub fn taken_in(&self, root: &Root) -> Option<SlotRecord> {
        root.slm_slots
            .get(&self.policy)
            .filter(|r| r.slot_ms >= self.slot_ms)
            .copied()
    }
}

/// Settings stored in the repository itself, so every client honours them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoSettings {
    /// Every write is refused (except changing the settings).
    #[serde(default)]
    pub readonly: bool,
    /// Upload rate limit for snapshots, bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_snapshot_bytes_per_sec: Option<u64>,
    /// Download rate limit for restores, bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restore_bytes_per_sec: Option<u64>,
}

/// A change to the root, replayable on top of a newer generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootChange {
    /// A new snapshot and the index file naming its new blobs.
    /// `base_index_files` are the index files it deduplicated against: if a
    /// rewrite removed any of them, blobs it reuses may be gone, so the
    /// change no longer applies as is. `slot` fences a policy's
    /// scheduled snapshot: refused if the root already records that slot.
    AddSnapshot {
        summary: SnapshotSummary,
        index_file: Option<Id>,
        base_index_files: Vec<Id>,
        slot: Option<SlotFence>,
    },
    /// Snapshots removed and index files replaced (delete and GC).
    /// `known_snapshots` are the uuids whose needs the GC accounted for: a
    /// snapshot committed since then may need blobs the GC dropped.
    Rewrite {
        remove_snapshots: Vec<String>,
        remove_index_files: Vec<Id>,
        add_index_files: Vec<Id>,
        known_snapshots: Vec<String>,
    },
    /// New repository settings.
    Settings(RepoSettings),
    /// The index file of packs a snapshot uploaded before it was stopped
    /// (Ctrl-C, an abort): listed so that a rerun finds and reuses them
    /// like any committed data. No snapshot needs them yet, so the next
    /// delete's GC drops them unless one does by then. Always applies
    /// (but to a read-only root): it only adds what no reader relies on.
    KeepIndexFile(Id),
}

impl RootChange {
    /// Whether `root` already contains this change: how a writer recognises
    /// its own commit after an ambiguous failure.
    pub fn is_applied_in(&self, root: &Root) -> bool {
        match self {
            RootChange::AddSnapshot { summary, .. } => {
                root.snapshots.iter().any(|s| s.uuid == summary.uuid)
            }
            RootChange::Rewrite {
                remove_snapshots,
                add_index_files,
                ..
            } => {
                let names: HashSet<&str> =
                    root.snapshots.iter().map(|s| s.snapshot.as_str()).collect();
                let files: HashSet<&Id> = root.index_files.iter().collect();
                remove_snapshots.iter().all(|n| !names.contains(n.as_str()))
                    && add_index_files.iter().all(|f| files.contains(f))
            }
            RootChange::Settings(s) => root.settings == *s,
            RootChange::KeepIndexFile(f) => root.index_files.contains(f),
        }
    }
}

/// A change that conflicts with the generation it is applied to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootConflict {
    #[error("snapshot [{0}] already exists")]
    DuplicateSnapshot(String),
    #[error("index file {0} was removed by another writer")]
    IndexFileGone(Id),
    #[error("a concurrent delete rewrote the index this snapshot deduplicated against")]
    IndexRewritten,
    #[error("snapshot [{0}] was added while the delete was planned")]
    SnapshotAdded(String),
    #[error("the repository was made read-only (change it with `snapkeep repo settings --readonly false`)")]
    ReadOnly,
    /// A policy's slot was already committed (by another node, or by a
    /// claim that took this one over), or a newer slot of it was: final,
    /// never retried.
    #[error("slot {slot_ms} of policy [{policy}] is taken: the repository records slot {recorded_ms} (epoch {recorded_epoch})")]
    SlotTaken {
        policy: String,
        slot_ms: i64,
        recorded_ms: i64,
        recorded_epoch: u64,
    },
}

impl Root {
    pub fn empty() -> Root {
        Root {
            version: 1,
            generation: 0,
            snapshots: vec![],
            index_files: vec![],
            settings: RepoSettings::default(),
            slm_slots: BTreeMap::new(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("roots always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Root, FormatError> {
        let r: Root = serde_json::from_slice(bytes).map_err(|e| FormatError::json("root", e))?;
        if r.version != 1 {
            return Err(FormatError::Version(r.version));
        }
        // Generations count commits: one this large is damage, and the next
        // generation must be representable.
        if r.generation > MAX_GENERATION {
            return Err(FormatError::Invalid(format!(
                "generation {} is out of range",
                r.generation
            )));
        }
        Ok(r)
    }

    pub fn snapshot(&self, name: &str) -> Option<&SnapshotSummary> {
        self.snapshots.iter().find(|s| s.snapshot == name)
    }

    /// The next generation: this one with `change` applied.
    ///
    /// (See also [`RootChange::is_applied_in`].)
    pub fn apply(&self, change: &RootChange) -> Result<Root, RootConflict> {
        let mut next = self.clone();
        next.generation = self.generation + 1;
        // Checked here, at the commit, as well as when a repository is
        // opened: a writer that opened it before it became read-only must
        // not commit after.
        if self.settings.readonly && !matches!(change, RootChange::Settings(_)) {
            return Err(RootConflict::ReadOnly);
        }
        match change {
            RootChange::AddSnapshot {
                summary,
                index_file,
                base_index_files,
                slot,
            } => {
                if let Some(fence) = slot {
                    if let Some(recorded) = fence.taken_in(self) {
                        return Err(RootConflict::SlotTaken {
                            policy: fence.policy.clone(),
                            slot_ms: fence.slot_ms,
                            recorded_ms: recorded.slot_ms,
                            recorded_epoch: recorded.epoch,
                        });
                    }
                    next.slm_slots.insert(
                        fence.policy.clone(),
                        SlotRecord {
                            slot_ms: fence.slot_ms,
                            epoch: fence.epoch,
                        },
                    );
                }
                if self.snapshot(&summary.snapshot).is_some() {
                    return Err(RootConflict::DuplicateSnapshot(summary.snapshot.clone()));
                }
                let present: HashSet<&Id> = self.index_files.iter().collect();
                if base_index_files.iter().any(|f| !present.contains(f)) {
                    return Err(RootConflict::IndexRewritten);
                }
                next.snapshots.push(summary.clone());
                if let Some(f) = index_file {
                    if !next.index_files.contains(f) {
                        next.index_files.push(*f);
                    }
                }
            }
            RootChange::Rewrite {
                remove_snapshots,
                remove_index_files,
                add_index_files,
                known_snapshots,
            } => {
                // Sets, not list scans: retention removes thousands of
                // snapshots from roots of tens of thousands at once.
                let known: HashSet<&str> = known_snapshots.iter().map(String::as_str).collect();
                if let Some(s) = self
                    .snapshots
                    .iter()
                    .find(|s| !known.contains(s.uuid.as_str()))
                {
                    return Err(RootConflict::SnapshotAdded(s.snapshot.clone()));
                }
                let present: HashSet<&Id> = self.index_files.iter().collect();
                if let Some(f) = remove_index_files.iter().find(|f| !present.contains(f)) {
                    return Err(RootConflict::IndexFileGone(*f));
                }
                let doomed: HashSet<&str> = remove_snapshots.iter().map(String::as_str).collect();
                next.snapshots
                    .retain(|s| !doomed.contains(s.snapshot.as_str()));
                let removed: HashSet<&Id> = remove_index_files.iter().collect();
                next.index_files.retain(|f| !removed.contains(f));
                let mut kept: HashSet<Id> = next.index_files.iter().copied().collect();
                for f in add_index_files {
                    if kept.insert(*f) {
                        next.index_files.push(*f);
                    }
                }
            }
            RootChange::Settings(s) => next.settings = s.clone(),
            RootChange::KeepIndexFile(f) => {
                if !next.index_files.contains(f) {
                    next.index_files.push(*f);
                }
            }
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn summary(name: &str) -> SnapshotSummary {
        SnapshotSummary {
            start_time_in_millis: 1,
            end_time_in_millis: 2,
            indices: vec!["a".into()],
            include_global_state: true,
            size_in_bytes: 10,
            new_bytes: 10,
            new_stored_bytes: 5,
            files: 1,
            ..testing::summary(name)
        }
    }

    #[test]
    fn a_policys_name_is_recorded_only_when_a_policy_made_the_snapshot() {
        let mut plain = summary("manual");
        let json = serde_json::to_string(&plain).unwrap();
        assert!(!json.contains("policy"), "{json}");
        plain.policy = Some("nightly".into());
        let json = serde_json::to_string(&plain).unwrap();
        assert!(json.contains(r#""policy":"nightly""#), "{json}");
        let back: SnapshotSummary = serde_json::from_str(&json).unwrap();
        assert_eq!(back.policy.as_deref(), Some("nightly"));
        let older = json.replace(r#","policy":"nightly""#, "");
        let read: SnapshotSummary = serde_json::from_str(&older).unwrap();
        assert_eq!(read.policy, None);
    }

    #[test]
    fn adding_snapshots_advances_generation_and_refuses_duplicates() {
        let r0 = Root::empty();
        let add = |n: &str, f: &[u8]| RootChange::AddSnapshot {
            summary: summary(n),
            index_file: Some(Id::of(f)),
            base_index_files: vec![],
            slot: None,
        };
        let r1 = r0.apply(&add("s1", b"i1")).unwrap();
        let r2 = r1.apply(&add("s2", b"i2")).unwrap();
        assert_eq!(r2.generation, 2);
        assert_eq!(r2.index_files.len(), 2);
        assert_eq!(
            r2.apply(&add("s1", b"i3")),
            Err(RootConflict::DuplicateSnapshot("s1".into()))
        );
        assert_eq!(Root::decode(&r2.encode()).unwrap(), r2);
    }

    #[test]
    fn rewrite_replaces_index_files_and_detects_lost_races() {
        let r = Root::empty()
            .apply(&RootChange::AddSnapshot {
                summary: summary("s1"),
                index_file: Some(Id::of(b"i1")),
                base_index_files: vec![],
                slot: None,
            })
            .unwrap();
        let rw = RootChange::Rewrite {
            remove_snapshots: vec!["s1".into()],
            remove_index_files: vec![Id::of(b"i1")],
            add_index_files: vec![Id::of(b"i9")],
            known_snapshots: vec!["uuid-s1".into()],
        };
        let r2 = r.apply(&rw).unwrap();
        assert!(r2.snapshots.is_empty());
        assert_eq!(r2.index_files, vec![Id::of(b"i9")]);
        assert_eq!(
            r2.apply(&rw),
            Err(RootConflict::IndexFileGone(Id::of(b"i1")))
        );
    }

    #[test]
    fn creates_and_deletes_that_raced_each_other_conflict() {
        let r1 = Root::empty()
            .apply(&RootChange::AddSnapshot {
                summary: summary("s1"),
                index_file: Some(Id::of(b"i1")),
                base_index_files: vec![],
                slot: None,
            })
            .unwrap();
        // A create that deduplicated against i1 while a delete replaced it.
        let rewritten = r1
            .apply(&RootChange::Rewrite {
                remove_snapshots: vec!["s1".into()],
                remove_index_files: vec![Id::of(b"i1")],
                add_index_files: vec![],
                known_snapshots: vec!["uuid-s1".into()],
            })
            .unwrap();
        let late_create = RootChange::AddSnapshot {
            summary: summary("s2"),
            index_file: Some(Id::of(b"i2")),
            base_index_files: vec![Id::of(b"i1")],
            slot: None,
        };
        assert_eq!(
            rewritten.apply(&late_create),
            Err(RootConflict::IndexRewritten)
        );
        // A delete planned before s2 was committed must not drop its blobs.
        let with_s2 = r1.apply(&late_create).unwrap();
        let stale_delete = RootChange::Rewrite {
            remove_snapshots: vec!["s1".into()],
            remove_index_files: vec![Id::of(b"i1")],
            add_index_files: vec![],
            known_snapshots: vec!["uuid-s1".into()],
        };
        assert_eq!(
            with_s2.apply(&stale_delete),
            Err(RootConflict::SnapshotAdded("s2".into()))
        );
    }

    /// An interrupted snapshot's index file joins the root without
    /// disturbing a create or a delete that started from the root before.
    #[test]
    fn a_kept_index_file_leaves_concurrent_creates_and_deletes_applicable() {
        let r1 = Root::empty()
            .apply(&RootChange::AddSnapshot {
                summary: summary("s1"),
                index_file: Some(Id::of(b"i1")),
                base_index_files: vec![],
                slot: None,
            })
            .unwrap();
        let keep = RootChange::KeepIndexFile(Id::of(b"kept"));
        let r2 = r1.apply(&keep).unwrap();
        assert_eq!(r2.index_files, vec![Id::of(b"i1"), Id::of(b"kept")]);
        assert_eq!(r2.snapshots, r1.snapshots);
        assert!(keep.is_applied_in(&r2) && !keep.is_applied_in(&r1));
        let create = RootChange::AddSnapshot {
            summary: summary("s2"),
            index_file: Some(Id::of(b"i2")),
            base_index_files: vec![Id::of(b"i1")],
            slot: None,
        };
        assert_eq!(r2.apply(&create).unwrap().snapshots.len(), 2);
        // A delete planned on r1 replaces i1 and keeps the kept file.
        let delete = RootChange::Rewrite {
            remove_snapshots: vec!["s1".into()],
            remove_index_files: vec![Id::of(b"i1")],
            add_index_files: vec![Id::of(b"i9")],
            known_snapshots: vec!["uuid-s1".into()],
        };
        let r3 = r2.apply(&delete).unwrap();
        assert_eq!(r3.index_files, vec![Id::of(b"kept"), Id::of(b"i9")]);
        // Applying it twice lists the file once; a read-only root refuses.
        assert_eq!(r2.apply(&keep).unwrap().index_files, r2.index_files);
        let ro = r2
            .apply(&RootChange::Settings(RepoSettings {
                readonly: true,
                ..Default::default()
            }))
            .unwrap();
        assert_eq!(ro.apply(&keep), Err(RootConflict::ReadOnly));
    }

    #[test]
    fn settings_are_committed_like_any_change() {
        let s = RepoSettings {
            readonly: true,
            max_snapshot_bytes_per_sec: Some(1 << 20),
            max_restore_bytes_per_sec: None,
        };
        let change = RootChange::Settings(s.clone());
        let r = Root::empty().apply(&change).unwrap();
        assert_eq!(r.settings, s);
        assert!(change.is_applied_in(&r));
        assert_eq!(Root::decode(&r.encode()).unwrap().settings, s);
        // Roots written before settings existed read as defaults.
        let old = br#"{"version":1,"generation":1,"snapshots":[],"index_files":[]}"#;
        assert_eq!(Root::decode(old).unwrap().settings, RepoSettings::default());
        // A read-only root takes no change but a settings change.
        let add = RootChange::AddSnapshot {
            summary: summary("late"),
            index_file: None,
            base_index_files: vec![],
            slot: None,
        };
        assert_eq!(r.apply(&add), Err(RootConflict::ReadOnly));
        let writable = r
            .apply(&RootChange::Settings(RepoSettings::default()))
            .unwrap();
        assert!(writable.apply(&add).is_ok());
    }

    fn fenced(name: &str, policy: &str, slot_ms: i64, epoch: u64) -> RootChange {
        RootChange::AddSnapshot {
            summary: summary(name),
            index_file: None,
            base_index_files: vec![],
            slot: Some(SlotFence {
                policy: policy.into(),
                slot_ms,
                epoch,
            }),
        }
    }

    #[test]
    fn a_policys_slot_commits_once_and_never_behind_a_newer_one() {
        let r1 = Root::empty()
            .apply(&fenced("a", "nightly", 2_000, 1))
            .unwrap();
        let recorded = SlotRecord {
            slot_ms: 2_000,
            epoch: 1,
        };
        assert_eq!(r1.slm_slots.get("nightly"), Some(&recorded));
        let taken = |slot_ms| RootConflict::SlotTaken {
            policy: "nightly".into(),
            slot_ms,
            recorded_ms: 2_000,
            recorded_epoch: 1,
        };
        // The same slot under a newer epoch (a takeover) and an older slot
        // are both refused; a newer slot and another policy's are not.
        assert_eq!(
            r1.apply(&fenced("b", "nightly", 2_000, 2)),
            Err(taken(2_000))
        );
        assert_eq!(
            r1.apply(&fenced("c", "nightly", 1_000, 3)),
            Err(taken(1_000))
        );
        let r2 = r1.apply(&fenced("d", "nightly", 3_000, 1)).unwrap();
        assert_eq!(r2.slm_slots["nightly"].slot_ms, 3_000);
        let r3 = r2.apply(&fenced("e", "hourly", 1_000, 1)).unwrap();
        assert_eq!(r3.slm_slots.len(), 2);
        // Unfenced snapshots leave the records alone.
        let r4 = r3.apply(&fenced("f", "x", 0, 0)).unwrap();
        let manual = RootChange::AddSnapshot {
            summary: summary("manual"),
            index_file: None,
            base_index_files: vec![],
            slot: None,
        };
        assert_eq!(r4.apply(&manual).unwrap().slm_slots, r4.slm_slots);
        assert_eq!(Root::decode(&r4.encode()).unwrap(), r4);
    }

    #[test]
    fn deletes_and_settings_keep_the_slot_records() {
        let r1 = Root::empty()
            .apply(&fenced("a", "nightly", 2_000, 4))
            .unwrap();
        let r2 = r1
            .apply(&RootChange::Rewrite {
                remove_snapshots: vec!["a".into()],
                remove_index_files: vec![],
                add_index_files: vec![Id::of(b"i9")],
                known_snapshots: vec!["uuid-a".into()],
            })
            .unwrap();
        assert!(r2.snapshots.is_empty());
        assert_eq!(r2.slm_slots, r1.slm_slots);
        let r3 = r2
            .apply(&RootChange::Settings(RepoSettings::default()))
            .unwrap();
        assert_eq!(r3.slm_slots, r1.slm_slots);
        // Deleting the slot's snapshot does not free the slot.
        assert!(matches!(
            r3.apply(&fenced("a", "nightly", 2_000, 5)),
            Err(RootConflict::SlotTaken { .. })
        ));
    }

    #[test]
    fn slot_records_are_written_only_when_present_and_read_from_any_root() {
        let plain = Root::empty().apply(&fenced("x", "p", 0, 0)).unwrap();
        let mut without = plain.clone();
        without.slm_slots.clear();
        let json = String::from_utf8(without.encode()).unwrap();
        assert!(!json.contains("slm_slots"), "{json}");
        assert!(
            json.ends_with(r#""settings":{"readonly":false}}"#),
            "{json}"
        );
        // Written after every older member, in this exact form.
        let with = r#","slm_slots":{"nightly":{"slot_ms":1764045000000,"epoch":2}}}"#;
        let mut fenced_root = without.clone();
        fenced_root.slm_slots.insert(
            "nightly".into(),
            SlotRecord {
                slot_ms: 1_764_045_000_000,
                epoch: 2,
            },
        );
        let encoded = String::from_utf8(fenced_root.encode()).unwrap();
        assert!(encoded.ends_with(with), "{encoded}");
        assert_eq!(Root::decode(encoded.as_bytes()).unwrap(), fenced_root);
        // Roots written before the member existed read with no records.
        let old = br#"{"version":1,"generation":3,"snapshots":[],"index_files":[],"settings":{"readonly":false}}"#;
        assert!(Root::decode(old).unwrap().slm_slots.is_empty());
    }

    #[test]
    fn generations_stay_in_range() {
        let huge =
            br#"{"version":1,"generation":18446744073709551615,"snapshots":[],"index_files":[]}"#;
        assert!(matches!(Root::decode(huge), Err(FormatError::Invalid(_))));
    }

    #[test]
    fn other_versions_are_refused() {
        let mut r = Root::empty();
        r.version = 2;
        assert_eq!(Root::decode(&r.encode()), Err(FormatError::Version(2)));
    }
}
