//! The restores this node ran since it started, one record per restored
//! index, for `_recovery` and `_cat/recovery`. A record is made when the
//! restore is accepted (stage `INDEX`) and finished when it ends (`DONE`,
//! with the index folder's files and bytes).

use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The index as restored (after any rename).
    pub index: String,
    /// The index as the snapshot holds it.
    pub source_index: String,
    pub repository: String,
    pub snapshot: String,
    pub restore_uuid: String,
    pub start_ms: i64,
    /// Set when the restore ended (successfully or not).
    pub stop_ms: Option<i64>,
    pub stage: &'static str,
    pub files: u64,
    pub bytes: u64,
}

/// Every restore's records, newest last; a later restore of an index
/// replaces its earlier record (ES keeps the latest recovery per shard).
#[derive(Debug, Default)]
pub struct Recoveries(Mutex<Vec<Recovery>>);

impl Recoveries {
    pub fn begin(&self, records: Vec<Recovery>) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|r| !records.iter().any(|n| n.index == r.index));
        all.extend(records);
    }

    /// Marks the records of `restore_uuid` ended, with `measure` giving
    /// each index folder's (files, bytes).
    pub fn finish(
        &self,
        restore_uuid: &str,
        now_ms: i64,
        stage: &'static str,
        measure: impl Fn(&str) -> (u64, u64),
    ) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for r in all.iter_mut().filter(|r| r.restore_uuid == restore_uuid) {
            r.stop_ms = Some(now_ms);
            r.stage = stage;
            (r.files, r.bytes) = measure(&r.index);
        }
    }

    pub fn snapshot(&self) -> Vec<Recovery> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets a deleted index's record.
    pub fn forget(&self, index: &str) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|r| r.index != index);
    }

    /// Whether a restore is writing `index` now.
    pub fn running(&self, index: &str) -> bool {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.iter().any(|r| r.index == index && r.stop_ms.is_none())
    }
}
