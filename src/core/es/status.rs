//! The snapshot status API's answer (reference 3.4) from a plain status
//! value: the live one a running snapshot reports, or one derived from a
//! finished snapshot's manifest.
//!
//! A snapkeep index is one directory, so one shard (`"0"`); its stage is
//! the index's. `incremental` counts the files this snapshot reads (new or
//! changed since the parent snapshot), `total` every file it references,
//! `processed` the incremental files read so far (as in ES, it reaches
//! `incremental` when the snapshot is done, and is then left out). The global state is not an index and is
//! left out, as ES leaves it out of the shard counts.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::core::format::manifest::{IndexStats, Manifest, SnapshotState};

/// ES's shard snapshot stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardStage {
    Init,
    Started,
    Finalize,
    Done,
    Failure,
}

impl ShardStage {
    pub fn as_str(self) -> &'static str {
        match self {
            ShardStage::Init => "INIT",
            ShardStage::Started => "STARTED",
            ShardStage::Finalize => "FINALIZE",
            ShardStage::Done => "DONE",
            ShardStage::Failure => "FAILURE",
        }
    }
}

/// ES's snapshot states as the status API reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Init,
    Started,
    Success,
    Failed,
    Aborted,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Init => "INIT",
            RunState::Started => "STARTED",
            RunState::Success => "SUCCESS",
            RunState::Failed => "FAILED",
            RunState::Aborted => "ABORTED",
        }
    }
}

/// A file count and its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub files: u64,
    pub bytes: u64,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.files = self.files.saturating_add(o.files);
        self.bytes = self.bytes.saturating_add(o.bytes);
    }

    fn json(self) -> Value {
        json!({"file_count": self.files, "size_in_bytes": self.bytes})
    }
}

/// One index (one shard) of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexStatus {
    pub stage: ShardStage,
    pub incremental: Counts,
    pub processed: Counts,
    pub total: Counts,
    pub start_time_in_millis: i64,
    pub time_in_millis: i64,
}

/// A snapshot's status: what `_status` reports for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotStatus {
    pub snapshot: String,
    pub uuid: String,
    pub state: RunState,
    pub include_global_state: Option<bool>,
    pub start_time_in_millis: i64,
    pub time_in_millis: i64,
    pub indices: BTreeMap<String, IndexStatus>,
}

fn index_of(s: &IndexStats, start: i64, time: i64, stage: ShardStage) -> IndexStatus {
    let total = Counts {
        files: s.files,
        bytes: s.size_in_bytes,
    };
    // The manifest records the data a snapshot added, not the size of the
    // files it read: its new bytes are what it uploaded.
    let incremental = Counts {
        files: s.files_read,
        bytes: s.new_bytes,
    };
    IndexStatus {
        stage,
        incremental,
        processed: incremental,
        total,
        start_time_in_millis: start,
        time_in_millis: time,
    }
}

impl SnapshotStatus {
    /// The status of a snapshot in the repository: every index DONE (an
    /// index with a file left out of a PARTIAL snapshot: FAILURE), SUCCESS
    /// for SUCCESS and PARTIAL (as ES does), counts from the manifest.
    pub fn finished(m: &Manifest) -> SnapshotStatus {
        let time = (m.end_time_in_millis - m.start_time_in_millis).max(0);
        let indices = m
            .indices
            .iter()
            .map(|(name, s)| {
                let failed = m.failures.iter().any(|f| &f.index == name);
                let stage = if failed {
                    ShardStage::Failure
                } else {
                    ShardStage::Done
                };
                let status = index_of(s, m.start_time_in_millis, time, stage);
                (name.clone(), status)
            })
            .collect();
        SnapshotStatus {
            snapshot: m.snapshot.clone(),
            uuid: m.uuid.clone(),
            state: match m.state {
                SnapshotState::Success | SnapshotState::Partial => RunState::Success,
                SnapshotState::Failed => RunState::Failed,
            },
            include_global_state: Some(m.global_state.is_some()),
            start_time_in_millis: m.start_time_in_millis,
            time_in_millis: time,
            indices,
        }
    }

    /// The element of `{"snapshots": [...]}` for this snapshot.
    pub fn to_json(&self, repository: &str) -> Value {
        let mut indices = Map::new();
        let (mut incremental, mut processed, mut total) = Default::default();
        let mut shards = ShardsStats::default();
        for (name, i) in &self.indices {
            Counts::add(&mut incremental, i.incremental);
            Counts::add(&mut processed, i.processed);
            Counts::add(&mut total, i.total);
            let mut one = ShardsStats::default();
            one.count(i.stage);
            shards.count(i.stage);
            let stats = stats_json(
                i.incremental,
                i.processed,
                i.total,
                i.start_time_in_millis,
                i.time_in_millis,
            );
            indices.insert(
                name.clone(),
                json!({
                    "shards_stats": one.json(),
                    "stats": stats,
                    "shards": {"0": {"stage": i.stage.as_str(), "stats": stats}},
                }),
            );
        }
        let mut out = Map::new();
        out.insert("snapshot".into(), json!(self.snapshot));
        out.insert("repository".into(), json!(repository));
        out.insert("uuid".into(), json!(self.uuid));
        out.insert("state".into(), json!(self.state.as_str()));
        if let Some(g) = self.include_global_state {
            out.insert("include_global_state".into(), json!(g));
        }
        out.insert("shards_stats".into(), shards.json());
        out.insert(
            "stats".into(),
            stats_json(
                incremental,
                processed,
                total,
                self.start_time_in_millis,
                self.time_in_millis,
            ),
        );
        out.insert("indices".into(), Value::Object(indices));
        Value::Object(out)
    }
}

/// `{"snapshots": [...]}`.
pub fn response(snapshots: &[Value]) -> Value {
    json!({ "snapshots": snapshots })
}

/// ES emits `processed` only while it differs from `incremental`.
fn stats_json(inc: Counts, processed: Counts, total: Counts, start: i64, time: i64) -> Value {
    let mut s = Map::new();
    s.insert("incremental".into(), inc.json());
    if processed.files != inc.files {
        s.insert("processed".into(), processed.json());
    }
    s.insert("total".into(), total.json());
    s.insert("start_time_in_millis".into(), json!(start));
    s.insert("time_in_millis".into(), json!(time));
    Value::Object(s)
}

#[derive(Debug, Default)]
struct ShardsStats {
    init: u64,
    started: u64,
    finalizing: u64,
    done: u64,
    failed: u64,
}

impl ShardsStats {
    fn count(&mut self, stage: ShardStage) {
        *match stage {
            ShardStage::Init => &mut self.init,
            ShardStage::Started => &mut self.started,
            ShardStage::Finalize => &mut self.finalizing,
            ShardStage::Done => &mut self.done,
            ShardStage::Failure => &mut self.failed,
        } += 1;
    }

    fn json(&self) -> Value {
        let total = self.init + self.started + self.finalizing + self.done + self.failed;
        json!({
            "initializing": self.init,
            "started": self.started,
            "finalizing": self.finalizing,
            "done": self.done,
            "failed": self.failed,
            "total": total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::manifest::Failure;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn stats(files: u64, bytes: u64, read: u64, new: u64) -> IndexStats {
        IndexStats {
            files,
            size_in_bytes: bytes,
            files_read: read,
            new_bytes: new,
            ..IndexStats::default()
        }
    }

    fn manifest() -> Manifest {
        Manifest {
            version: 1,
            snapshot: "s1".into(),
            uuid: "u1".into(),
            state: SnapshotState::Partial,
            start_time_in_millis: 1_000,
            end_time_in_millis: 1_250,
            indices: BTreeMap::from([
                ("a".to_string(), stats(4, 6024, 3, 5969)),
                ("b".to_string(), stats(2, 10, 2, 10)),
            ]),
            global_state: Some(IndexStats::default()),
            metadata: BTreeMap::new(),
            failures: vec![Failure {
                index: "b".into(),
                path: "x".into(),
                reason: "cannot read".into(),
            }],
        }
    }

    #[test]
    fn a_finished_snapshot_reports_manifest_counts_and_done_shards() {
        let v = SnapshotStatus::finished(&manifest()).to_json("repo");
        assert_eq!(v["state"], "SUCCESS", "PARTIAL maps to SUCCESS");
        assert_eq!(v["repository"], "repo");
        assert_eq!(v["include_global_state"], true);
        assert_eq!(
            v["shards_stats"],
            json!({"initializing":0,"started":0,"finalizing":0,"done":1,"failed":1,"total":2})
        );
        assert_eq!(
            v["stats"]["total"],
            json!({"file_count": 6, "size_in_bytes": 6034})
        );
        assert_eq!(v["stats"]["incremental"]["file_count"], 5);
        assert_eq!(v["stats"]["time_in_millis"], 250);
        let a = &v["indices"]["a"];
        assert_eq!(a["shards"]["0"]["stage"], "DONE");
        assert_eq!(v["indices"]["b"]["shards"]["0"]["stage"], "FAILURE");
        assert_eq!(a["stats"]["incremental"]["size_in_bytes"], 5969);
        // Done: processed equals incremental and is left out, as ES does.
        assert!(a["stats"].get("processed").is_none());
        assert!(v["stats"].get("processed").is_none());
    }

    #[test]
    fn a_running_snapshot_reports_its_stages_and_state() {
        let mut s = SnapshotStatus::finished(&manifest());
        s.state = RunState::Started;
        s.include_global_state = None;
        s.indices.get_mut("a").unwrap().stage = ShardStage::Started;
        s.indices.get_mut("b").unwrap().stage = ShardStage::Init;
        s.indices.get_mut("a").unwrap().processed = Counts {
            files: 1,
            bytes: 100,
        };
        let v = response(&[s.to_json("r")]);
        let one = &v["snapshots"][0];
        // Running: processed (1 file) differs from incremental (3): emitted.
        assert_eq!(
            one["indices"]["a"]["stats"]["processed"],
            json!({"file_count": 1, "size_in_bytes": 100})
        );
        assert_eq!(one["stats"]["processed"]["file_count"], 3);
        assert_eq!(one["state"], "STARTED");
        assert!(one.get("include_global_state").is_none());
        assert_eq!(one["shards_stats"]["started"], 1);
        assert_eq!(one["shards_stats"]["initializing"], 1);
        assert_eq!(one["indices"]["b"]["shards_stats"]["total"], 1);
    }
}
