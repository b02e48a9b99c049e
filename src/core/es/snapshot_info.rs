//! The `SnapshotInfo` object of ES's create and get APIs (reference 3.0),
//! built from what a snapkeep root and manifest record, and the small
//! response bodies around it (3.1, 3.5, 3.6).
//!
//! Shards: a snapkeep index is one directory, so each index is **one
//! shard** (`shards.total` = number of indices). An index with any file left
//! out of a PARTIAL snapshot counts as one failed shard, with one entry in
//! `failures` naming its files.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::units::{iso_millis, time_value};
use crate::core::format::manifest::{Failure, SnapshotState, SnapshotSummary};

/// The Elasticsearch version the node reports for its snapshots (and may
/// advertise on `GET /`); clients read it only as a string and an int.
pub const ES_VERSION: &str = "8.12.2";
pub const ES_VERSION_ID: u32 = 8_120_299;

/// What a get request asks to include (its query parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoOptions {
    pub verbose: bool,
    pub include_repository: bool,
    pub index_names: bool,
    /// `human=true`: also `duration`.
    pub human: bool,
}

impl Default for InfoOptions {
    fn default() -> InfoOptions {
        InfoOptions {
            verbose: true,
            include_repository: true,
            index_names: true,
            human: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shards {
    pub total: u64,
    pub failed: u64,
    pub successful: u64,
}

impl Shards {
    /// One shard per index; `failed` of them failed.
    pub fn of(indices: usize, failed: u64) -> Shards {
        let total = indices as u64;
        let failed = failed.min(total);
        Shards {
            total,
            failed,
            successful: total - failed,
        }
    }

    /// From a root's summary alone, which records only a count of failed
    /// files: SUCCESS has no failed shard, FAILED has all of them failed,
    /// PARTIAL is estimated as `min(failed files, indices)` (at least one).
    /// [`failed_indices`] over the manifest's failures is exact.
    pub fn estimate(s: &SnapshotSummary) -> Shards {
        let n = s.indices.len();
        let failed = match s.state {
            SnapshotState::Success => 0,
            SnapshotState::Failed => n as u64,
            SnapshotState::Partial => s.failures.clamp(1, n.max(1) as u64),
        };
        Shards::of(n, failed)
    }
}

/// The indices with at least one failure (each one failed shard).
pub fn failed_indices(failures: &[Failure]) -> Vec<&str> {
    let mut v: Vec<&str> = failures.iter().map(|f| f.index.as_str()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// One entry of `failures`: ES's `SnapshotShardFailure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardFailure {
    pub index: String,
    pub index_uuid: String,
    pub shard_id: u32,
    pub reason: String,
    pub node_id: String,
    pub status: &'static str,
}

/// One shard failure per index, its reason listing each file left out.
pub fn shard_failures(failures: &[Failure]) -> Vec<ShardFailure> {
    failed_indices(failures)
        .into_iter()
        .map(|index| {
            let reasons: Vec<String> = failures
                .iter()
                .filter(|f| f.index == index)
                .map(|f| match f.path.as_str() {
                    // The whole index failed (a hook, an unlistable folder).
                    "" => f.reason.clone(),
                    path => format!("{path}: {}", f.reason),
                })
                .collect();
            ShardFailure {
                index: index.to_string(),
                index_uuid: index.to_string(),
                shard_id: 0,
                reason: reasons.join("; "),
                node_id: String::new(),
                status: "INTERNAL_SERVER_ERROR",
            }
        })
        .collect()
}

/// ES's `SnapshotInfo`, members in ES's emission order; `None` members are
/// left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotInfo {
    pub snapshot: String,
    pub uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indices: Option<Vec<String>>,
    pub data_streams: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_global_state: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, Value>>,
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub times: Option<Times>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<Vec<ShardFailure>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<Shards>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_states: Option<Vec<Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Times {
    pub start_time: String,
    pub start_time_in_millis: i64,
    pub end_time: String,
    pub end_time_in_millis: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    pub duration_in_millis: i64,
}

impl Times {
    fn new(start: i64, end: i64, human: bool) -> Times {
        let duration = if end == 0 {
            0
        } else {
            end.saturating_sub(start)
        };
        Times {
            start_time: iso_millis(start),
            start_time_in_millis: start,
            end_time: iso_millis(end),
            end_time_in_millis: end,
            duration: human.then(|| time_value(duration)),
            duration_in_millis: duration,
        }
    }
}

/// What the manifest adds to a root's summary (a single-snapshot get or a
/// finished create reads it; a listing need not).
#[derive(Debug, Clone, Copy, Default)]
pub struct Detail<'a> {
    pub metadata: Option<&'a BTreeMap<String, String>>,
    pub failures: Option<&'a [Failure]>,
}

/// A snapshot the node is taking right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub snapshot: String,
    pub uuid: String,
    pub start_time_in_millis: i64,
    pub indices: Vec<String>,
    pub include_global_state: bool,
    pub metadata: BTreeMap<String, String>,
}

fn metadata_json(m: &BTreeMap<String, String>) -> Option<BTreeMap<String, Value>> {
    (!m.is_empty()).then(|| {
        m.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect()
    })
}

impl SnapshotInfo {
    /// The reduced `verbose=false` form: only repository-index data.
    fn base(repo: &str, name: &str, uuid: &str, indices: &[String], o: InfoOptions) -> Self {
        SnapshotInfo {
            snapshot: name.to_string(),
            uuid: uuid.to_string(),
            repository: o.include_repository.then(|| repo.to_string()),
            version_id: None,
            version: None,
            indices: o.index_names.then(|| indices.to_vec()),
            data_streams: Vec::new(),
            include_global_state: None,
            metadata: None,
            state: "",
            reason: None,
            times: None,
            failures: None,
            shards: None,
            feature_states: None,
        }
    }

    /// A stored snapshot of repository `repo`.
    pub fn stored(repo: &str, s: &SnapshotSummary, detail: Detail, o: InfoOptions) -> Self {
        let mut info = SnapshotInfo::base(repo, &s.snapshot, &s.uuid, &s.indices, o);
        info.state = s.state.as_str();
        if !o.verbose {
            return info;
        }
        let (shards, failures) = match detail.failures {
            Some(f) => {
                // An index that failed whole (a hook, an unlistable folder)
                // is not among the snapshot's indices but is a shard of it.
                let failed = failed_indices(f);
                let whole = failed.iter().filter(|i| !s.indices.iter().any(|n| n == *i));
                let total = s.indices.len() + whole.count();
                (Shards::of(total, failed.len() as u64), shard_failures(f))
            }
            None => (Shards::estimate(s), Vec::new()),
        };
        info.version_id = Some(ES_VERSION_ID);
        info.version = Some(ES_VERSION);
        info.include_global_state = Some(s.include_global_state);
        info.metadata = detail.metadata.and_then(metadata_json);
        if s.state == SnapshotState::Failed {
            info.reason = failures.first().map(|f| f.reason.clone());
        }
        info.times = Some(Times::new(
            s.start_time_in_millis,
            s.end_time_in_millis,
            o.human,
        ));
        info.failures = Some(failures);
        info.shards = Some(shards);
        info.feature_states = Some(Vec::new());
        info
    }

    /// A running snapshot: `IN_PROGRESS`, end and duration 0, no shard
    /// done yet.
    pub fn in_progress(repo: &str, r: &Running, o: InfoOptions) -> Self {
        let mut info = SnapshotInfo::base(repo, &r.snapshot, &r.uuid, &r.indices, o);
        info.state = "IN_PROGRESS";
        if !o.verbose {
            return info;
        }
        info.version_id = Some(ES_VERSION_ID);
        info.version = Some(ES_VERSION);
        info.include_global_state = Some(r.include_global_state);
        info.metadata = metadata_json(&r.metadata);
        info.times = Some(Times::new(r.start_time_in_millis, 0, o.human));
        info.failures = Some(Vec::new());
        info.shards = Some(Shards {
            total: r.indices.len() as u64,
            failed: 0,
            successful: 0,
        });
        info.feature_states = Some(Vec::new());
        info
    }
}

/// `{"accepted":true}`: create or restore without `wait_for_completion`.
pub fn accepted() -> Value {
    json!({ "accepted": true })
}

/// `{"acknowledged":true}`: delete, clone, repository registration.
pub fn acknowledged() -> Value {
    json!({ "acknowledged": true })
}

/// Create with `wait_for_completion=true`: `{"snapshot": SnapshotInfo}`.
pub fn create_completed(info: &SnapshotInfo) -> Value {
    json!({ "snapshot": info })
}

/// Restore with `wait_for_completion=true`.
pub fn restore_completed(snapshot: &str, indices: &[String], shards: Shards) -> Value {
    json!({ "snapshot": { "snapshot": snapshot, "indices": indices, "shards": shards } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::summary;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn two_indices() -> SnapshotSummary {
        SnapshotSummary {
            indices: vec!["a".into(), "b".into()],
            start_time_in_millis: 1_593_093_628_850,
            end_time_in_millis: 1_593_093_629_055,
            include_global_state: true,
            ..summary("snap-1")
        }
    }

    fn failure(index: &str, path: &str) -> Failure {
        Failure {
            index: index.into(),
            path: path.into(),
            reason: "permission denied".into(),
        }
    }

    #[test]
    fn a_verbose_success_has_every_member_es_sends() {
        let meta = BTreeMap::from([("taken_by".to_string(), "user123".to_string())]);
        let detail = Detail {
            metadata: Some(&meta),
            failures: Some(&[]),
        };
        let info = SnapshotInfo::stored("repo", &two_indices(), detail, InfoOptions::default());
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(
            v,
            json!({
                "snapshot": "snap-1", "uuid": "uuid-snap-1", "repository": "repo",
                "version_id": ES_VERSION_ID, "version": ES_VERSION,
                "indices": ["a", "b"], "data_streams": [], "include_global_state": true,
                "metadata": {"taken_by": "user123"}, "state": "SUCCESS",
                "start_time": "2020-06-25T14:00:28.850Z", "start_time_in_millis": 1_593_093_628_850_i64,
                "end_time": "2020-06-25T14:00:29.055Z", "end_time_in_millis": 1_593_093_629_055_i64,
                "duration_in_millis": 205, "failures": [],
                "shards": {"total": 2, "failed": 0, "successful": 2}, "feature_states": []
            })
        );
    }

    #[test]
    fn verbose_false_keeps_only_repository_index_data() {
        let o = InfoOptions {
            verbose: false,
            ..Default::default()
        };
        let v = serde_json::to_value(SnapshotInfo::stored(
            "r",
            &two_indices(),
            Detail::default(),
            o,
        ))
        .unwrap();
        assert_eq!(
            v,
            json!({"snapshot":"snap-1","uuid":"uuid-snap-1","repository":"r","indices":["a","b"],"data_streams":[],"state":"SUCCESS"})
        );
        let o = InfoOptions {
            include_repository: false,
            index_names: false,
            human: true,
            ..Default::default()
        };
        let v = serde_json::to_value(SnapshotInfo::stored(
            "r",
            &two_indices(),
            Detail::default(),
            o,
        ))
        .unwrap();
        assert!(v.get("repository").is_none() && v.get("indices").is_none());
        assert_eq!(v["duration"], "205ms");
    }

    #[test]
    fn partial_snapshots_count_one_failed_shard_per_index() {
        let s = SnapshotSummary {
            state: SnapshotState::Partial,
            failures: 3,
            ..two_indices()
        };
        let f = [failure("a", "x/1"), failure("a", "x/2"), failure("a", "y")];
        let detail = Detail {
            metadata: None,
            failures: Some(&f),
        };
        let info = SnapshotInfo::stored("r", &s, detail, InfoOptions::default());
        assert_eq!(info.state, "PARTIAL");
        assert_eq!(
            info.shards,
            Some(Shards {
                total: 2,
                failed: 1,
                successful: 1
            })
        );
        let failures = info.failures.unwrap();
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].index, "a");
        assert_eq!(
            failures[0].reason,
            "x/1: permission denied; x/2: permission denied; y: permission denied"
        );
        assert_eq!(
            Shards::estimate(&s),
            Shards {
                total: 2,
                failed: 2,
                successful: 0
            }
        );
        let failed = SnapshotSummary {
            state: SnapshotState::Failed,
            ..two_indices()
        };
        assert_eq!(Shards::estimate(&failed).failed, 2);

        // An index that failed whole is left out of `indices` but is still
        // one of the snapshot's shards, and its reason has no path.
        let whole = [Failure {
            index: "c".into(),
            path: String::new(),
            reason: "before hook [h] failed with exit code 1".into(),
        }];
        let detail = Detail {
            metadata: None,
            failures: Some(&whole),
        };
        let info = SnapshotInfo::stored("r", &s, detail, InfoOptions::default());
        assert_eq!(
            info.shards,
            Some(Shards {
                total: 3,
                failed: 1,
                successful: 2
            })
        );
        assert_eq!(
            info.failures.unwrap()[0].reason,
            "before hook [h] failed with exit code 1"
        );
        assert_eq!(Shards::estimate(&two_indices()).failed, 0);
    }

    #[test]
    fn a_running_snapshot_reports_in_progress_with_zero_end() {
        let r = Running {
            snapshot: "s".into(),
            uuid: "u".into(),
            start_time_in_millis: 5_000,
            indices: vec!["a".into()],
            include_global_state: false,
            metadata: BTreeMap::new(),
        };
        let v = serde_json::to_value(SnapshotInfo::in_progress("r", &r, InfoOptions::default()))
            .unwrap();
        assert_eq!(v["state"], "IN_PROGRESS");
        assert_eq!(v["end_time_in_millis"], 0);
        assert_eq!(v["duration_in_millis"], 0);
        assert_eq!(v["shards"], json!({"total":1,"failed":0,"successful":0}));
        assert!(v.get("metadata").is_none());
    }

    #[test]
    fn response_wrappers_have_es_shapes() {
        assert_eq!(accepted(), json!({"accepted": true}));
        assert_eq!(acknowledged(), json!({"acknowledged": true}));
        let info = SnapshotInfo::stored(
            "r",
            &two_indices(),
            Detail::default(),
            InfoOptions::default(),
        );
        assert_eq!(create_completed(&info)["snapshot"]["snapshot"], "snap-1");
        assert_eq!(
            restore_completed("s", &["a".into()], Shards::of(1, 0)),
            json!({"snapshot":{"snapshot":"s","indices":["a"],"shards":{"total":1,"failed":0,"successful":1}}})
        );
    }
}
