//! `GET /<index>/_recovery` and `_cat/recovery` (reference 5 and 6.3) for
//! a restore, from a plain status value.
//!
//! Each restored index is one shard (`id` 0) recovered from a snapshot.
//! ES's counts: `total` is every file of the index, `reused` what was
//! already in place (snapkeep: files complete in the target, blobs copied
//! from the target), `recovered` what was fetched from the repository; the
//! percentages are of what had to be fetched (`total - reused`).
//!
//! This is the node's one recovery shape: `_recovery` and `_cat/recovery`
//! both render a [`RestoreStatus`] (live while the restore runs, final
//! after), so the two answers never disagree.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::cat::Cell;
use super::snapshot_info::ES_VERSION;

/// ES's recovery stages a restore passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryStage {
    Init,
    Index,
    Finalize,
    Done,
    /// snapkeep's own: ES drops a failed recovery from `_recovery`; the
    /// node keeps it so a failed restore stays visible until the index is
    /// restored again or deleted.
    Failed,
}

impl RecoveryStage {
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryStage::Init => "INIT",
            RecoveryStage::Index => "INDEX",
            RecoveryStage::Finalize => "FINALIZE",
            RecoveryStage::Done => "DONE",
            RecoveryStage::Failed => "FAILED",
        }
    }
}

/// Totals, what was reused and what was recovered, of files or bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    pub total: u64,
    pub reused: u64,
    pub recovered: u64,
}

impl Recovered {
    /// `"87.1%"`; a recovery with nothing to fetch is at 100%.
    pub fn percent(&self) -> String {
        let to_fetch = self.total.saturating_sub(self.reused);
        if to_fetch == 0 {
            return "100.0%".into();
        }
        let p = self.recovered.min(to_fetch) as f64 * 100.0 / to_fetch as f64;
        format!("{:.1}%", (p * 10.0).floor() / 10.0)
    }
}

/// One restored index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRecovery {
    /// The index's name in the snapshot.
    pub source_index: String,
    pub stage: RecoveryStage,
    pub files: Recovered,
    pub bytes: Recovered,
}

/// The node a restore wrote to (ES's `target`; a snapshot recovery has no
/// source node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetNode<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

impl TargetNode<'_> {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "host": "127.0.0.1",
            "transport_address": "127.0.0.1:9300",
            "ip": "127.0.0.1",
            "name": self.name,
        })
    }
}

/// A restore's status: its indices keyed by the name they are restored as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreStatus {
    pub snapshot: String,
    pub restore_uuid: Option<String>,
    pub start_time_in_millis: i64,
    /// Set once the restore has ended.
    pub stop_time_in_millis: Option<i64>,
    pub indices: BTreeMap<String, IndexRecovery>,
}

impl RestoreStatus {
    fn elapsed(&self, now_ms: i64) -> i64 {
        self.stop_time_in_millis
            .unwrap_or(now_ms)
            .saturating_sub(self.start_time_in_millis)
            .max(0)
    }

    /// The shard object of `index` (restored as that name), if the restore
    /// holds it.
    pub fn shard_json(
        &self,
        repository: &str,
        index: &str,
        target: TargetNode,
        now_ms: i64,
    ) -> Option<Value> {
        let i = self.indices.get(index)?;
        let time = self.elapsed(now_ms);
        let mut source = Map::new();
        source.insert("repository".into(), json!(repository));
        source.insert("snapshot".into(), json!(self.snapshot));
        source.insert("version".into(), json!(ES_VERSION));
        source.insert("index".into(), json!(i.source_index));
        if let Some(u) = &self.restore_uuid {
            source.insert("restoreUUID".into(), json!(u));
        }
        let mut shard = Map::new();
        shard.insert("id".into(), json!(0));
        shard.insert("type".into(), json!("SNAPSHOT"));
        shard.insert("stage".into(), json!(i.stage.as_str()));
        shard.insert("primary".into(), json!(true));
        shard.insert(
            "start_time_in_millis".into(),
            json!(self.start_time_in_millis),
        );
        if let Some(stop) = self.stop_time_in_millis {
            shard.insert("stop_time_in_millis".into(), json!(stop));
        }
        shard.insert("total_time_in_millis".into(), json!(time));
        shard.insert("source".into(), Value::Object(source));
        shard.insert("target".into(), target.json());
        shard.insert(
            "index".into(),
            json!({
                "size": {
                    "total_in_bytes": i.bytes.total,
                    "reused_in_bytes": i.bytes.reused,
                    "recovered_in_bytes": i.bytes.recovered,
                    "recovered_from_snapshot_in_bytes": i.bytes.recovered,
                    "percent": i.bytes.percent(),
                },
                "files": {
                    "total": i.files.total,
                    "reused": i.files.reused,
                    "recovered": i.files.recovered,
                    "percent": i.files.percent(),
                },
                "total_time_in_millis": time,
                "source_throttle_time_in_millis": 0,
                "target_throttle_time_in_millis": 0,
            }),
        );
        shard.insert(
            "translog".into(),
            json!({"recovered": 0, "total": 0, "percent": "100.0%", "total_on_start": 0, "total_time_in_millis": 0}),
        );
        shard.insert(
            "verify_index".into(),
            json!({"check_index_time_in_millis": 0, "total_time_in_millis": 0}),
        );
        Some(Value::Object(shard))
    }

    /// Adds this restore's indices matching `wanted` to a `_recovery`
    /// answer (`{INDEX: {"shards": [...]}}`).
    pub fn add_to(
        &self,
        out: &mut Map<String, Value>,
        repository: &str,
        target: TargetNode,
        wanted: &dyn Fn(&str) -> bool,
        now_ms: i64,
    ) {
        for name in self.indices.keys().filter(|n| wanted(n)) {
            if let Some(shard) = self.shard_json(repository, name, target, now_ms) {
                out.insert(name.clone(), json!({ "shards": [shard] }));
            }
        }
    }

    /// The `_cat/recovery` rows (the `RECOVERY` table's 22 columns).
    pub fn cat_rows(&self, repository: &str, node: &str, now_ms: i64) -> Vec<Vec<Cell>> {
        let time = self.elapsed(now_ms);
        self.indices
            .iter()
            .map(|(name, i)| {
                let to_fetch = |r: Recovered| r.total.saturating_sub(r.reused);
                vec![
                    Cell::text(name),
                    Cell::text(0),
                    Cell::Millis(time),
                    Cell::text("snapshot"),
                    Cell::text(i.stage.as_str().to_lowercase()),
                    Cell::text("n/a"),
                    Cell::text("n/a"),
                    Cell::text("127.0.0.1"),
                    Cell::text(node),
                    Cell::text(repository),
                    Cell::text(&self.snapshot),
                    Cell::text(to_fetch(i.files)),
                    Cell::text(i.files.recovered),
                    Cell::text(i.files.percent()),
                    Cell::text(i.files.total),
                    Cell::Bytes(to_fetch(i.bytes)),
                    Cell::Bytes(i.bytes.recovered),
                    Cell::text(i.bytes.percent()),
                    Cell::Bytes(i.bytes.total),
                    Cell::text(0),
                    Cell::text(0),
                    Cell::text("100.0%"),
                ]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::es::cat::RECOVERY;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn status() -> RestoreStatus {
        RestoreStatus {
            snapshot: "snap".into(),
            restore_uuid: Some("ru".into()),
            start_time_in_millis: 1_000,
            stop_time_in_millis: None,
            indices: BTreeMap::from([(
                "restored-logs".to_string(),
                IndexRecovery {
                    source_index: "logs".into(),
                    stage: RecoveryStage::Index,
                    files: Recovered {
                        total: 10,
                        reused: 2,
                        recovered: 4,
                    },
                    bytes: Recovered {
                        total: 1000,
                        reused: 100,
                        recovered: 300,
                    },
                },
            )]),
        }
    }

    #[test]
    fn percent_is_of_what_had_to_be_fetched() {
        let r = Recovered {
            total: 1000,
            reused: 100,
            recovered: 300,
        };
        assert_eq!(r.percent(), "33.3%");
        let nothing = Recovered {
            total: 5,
            reused: 5,
            recovered: 0,
        };
        assert_eq!(nothing.percent(), "100.0%");
    }

    #[test]
    fn a_running_restore_answers_recovery_with_its_counts() {
        let mut out = Map::new();
        let node = TargetNode {
            id: "nid",
            name: "n1",
        };
        status().add_to(
            &mut out,
            "repo",
            node,
            &|n| n.starts_with("restored"),
            1_500,
        );
        let shard = &out["restored-logs"]["shards"][0];
        assert_eq!(shard["type"], "SNAPSHOT");
        assert_eq!(shard["stage"], "INDEX");
        assert_eq!(shard["total_time_in_millis"], 500);
        assert!(shard.get("stop_time_in_millis").is_none());
        assert_eq!(
            shard["source"],
            json!({"repository":"repo","snapshot":"snap","version":ES_VERSION,"index":"logs","restoreUUID":"ru"})
        );
        assert_eq!(shard["target"]["id"], "nid");
        assert_eq!(shard["target"]["name"], "n1");
        assert_eq!(shard["index"]["size"]["reused_in_bytes"], 100);
        assert_eq!(shard["index"]["size"]["percent"], "33.3%");
        assert_eq!(shard["index"]["files"]["percent"], "50.0%");
        let mut none = Map::new();
        status().add_to(&mut none, "repo", node, &|n| n == "other", 1_500);
        assert!(none.is_empty());
    }

    #[test]
    fn an_ended_restore_reports_its_stop_time_and_final_stage() {
        let mut s = status();
        s.stop_time_in_millis = Some(4_000);
        let i = s.indices.get_mut("restored-logs").unwrap();
        i.stage = RecoveryStage::Done;
        i.files.recovered = 8;
        i.bytes.recovered = 900;
        let node = TargetNode { id: "i", name: "n" };
        let shard = s.shard_json("repo", "restored-logs", node, 9_000).unwrap();
        assert_eq!(shard["stage"], "DONE");
        assert_eq!(shard["stop_time_in_millis"], 4_000);
        assert_eq!(shard["total_time_in_millis"], 3_000, "stop, not now");
        assert_eq!(shard["index"]["size"]["percent"], "100.0%");
        assert_eq!(shard["index"]["files"]["percent"], "100.0%");
        assert!(s.shard_json("repo", "logs", node, 9_000).is_none());
        let row = &s.cat_rows("repo", "n", 9_000)[0];
        assert_eq!(row[2], Cell::Millis(3_000));
        assert_eq!(row[4], Cell::text("done"));
        s.indices.get_mut("restored-logs").unwrap().stage = RecoveryStage::Failed;
        assert_eq!(s.cat_rows("repo", "n", 9_000)[0][4], Cell::text("failed"));
    }

    #[test]
    fn cat_rows_fill_every_recovery_column() {
        let rows = status().cat_rows("repo", "node-1", 2_000);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].len(), RECOVERY.len());
        assert_eq!(rows[0][4], Cell::text("index"));
        assert_eq!(rows[0][11], Cell::text(8), "files still to recover");
        assert_eq!(rows[0][15], Cell::Bytes(900));
    }
}
