//! The lifecycle's state as the node keeps it in its state folder
//! (`slm.json`, replaced atomically like the registrations): the policies
//! with their last results, counters and newest handled slot, the
//! operation mode and the node's counters. Policies are re-parsed with
//! the API's strict parser on load, so a file edited by hand cannot hold a
//! policy `PUT` would refuse.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::core::es::slm_policy::SlmPolicy;
use crate::core::slm::report::{GlobalStats, Invocation, PolicyStats};
use crate::core::slm::slots::{Rules, SlotState};
use crate::core::slm::stored::{policy_key, StoredPolicy};
use crate::native::tz;
use crate::node::error::NodeError;

pub const SLM_FILE: &str = "slm.json";

/// How late a slot may be reached and still run under `missed: skip`:
/// the scheduler wakes at the fire time, so only a busy or paused node is
/// later than this.
pub const ON_TIME_MS: i64 = 2_000;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SlmFile {
    /// `POST /_slm/stop` was the last word.
    #[serde(default)]
    pub stopped: bool,
    #[serde(default)]
    pub policies: BTreeMap<String, PolicyRecord>,
    #[serde(default)]
    pub stats: GlobalStats,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// The policy as its repository holds it (`slm/policies/<id>`).
    pub stored: StoredPolicy,
    #[serde(default)]
    pub last_success: Option<Invocation>,
    #[serde(default)]
    pub last_failure: Option<Invocation>,
    #[serde(default)]
    pub stats: PolicyStats,
    #[serde(default)]
    pub invocations_since_last_success: u64,
    /// The newest slot handled (run, skipped or queued): a restart never
    /// runs it again.
    #[serde(default)]
    pub handled_ms: Option<i64>,
    /// A slot waiting for the running snapshot (`overlap: queue`). Kept
    /// across a restart: its slot is already handled, so dropping it would
    /// lose the run; after a restart it runs at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_ms: Option<i64>,
}

/// A policy as the scheduler works with it.
#[derive(Debug)]
pub struct Policy {
    pub record: PolicyRecord,
    pub parsed: SlmPolicy,
    pub tz: TimeZone,
    /// Runs accepted and not yet ended (reserved before they start, so
    /// the scheduler sees a run as soon as it decided it).
    pub active: u32,
    /// The snapshots of runs in progress: name and start.
    pub runs: Vec<(String, i64)>,
}

impl Policy {
    /// Checks a record read back: its policy parses and its zone is known.
    pub fn from_record(record: PolicyRecord) -> Result<Policy, String> {
        let key = policy_key(&record.stored.id);
        let (_, parsed) =
            StoredPolicy::decode(&key, &record.stored.encode()).map_err(|e| e.to_string())?;
        let tz = tz::zone(&parsed.timezone)
            .ok_or_else(|| format!("unknown time zone [{}]", parsed.timezone))?;
        Ok(Policy {
            record,
            parsed,
            tz,
            active: 0,
            runs: Vec::new(),
        })
    }

    pub fn slot_state(&self) -> SlotState {
        SlotState {
            anchor_ms: self.record.stored.modified_date_millis,
            handled_ms: self.record.handled_ms,
            running: self.active > 0,
            queued_ms: self.record.queued_ms,
        }
    }

    pub fn rules(&self) -> Rules {
        Rules {
            missed: self.parsed.missed,
            overlap: self.parsed.overlap,
            on_time_ms: ON_TIME_MS,
        }
    }

    /// The next scheduled run after `now_ms`.
    pub fn next_execution(&self, now_ms: i64) -> Option<i64> {
        let after = self.record.handled_ms.map_or(now_ms, |h| h.max(now_ms));
        self.parsed
            .schedule
            .next_fire(&self.tz, self.record.stored.modified_date_millis, after)
    }
}

/// The lifecycle's state in memory.
#[derive(Debug, Default)]
pub struct SlmState {
    pub stopped: bool,
    pub policies: BTreeMap<String, Policy>,
    pub stats: GlobalStats,
}

impl SlmState {
    /// Reads `slm.json` from the state folder (none yet: empty, running).
    pub fn load(folder: &Path) -> Result<SlmState, NodeError> {
        let path = folder.join(SLM_FILE);
        let file: SlmFile = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| NodeError::BadState {
                path: path.clone(),
                detail: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SlmFile::default(),
            Err(e) => return Err(NodeError::Io { path, source: e }),
        };
        let mut policies = BTreeMap::new();
        for (id, record) in file.policies {
            let policy = Policy::from_record(record).map_err(|detail| NodeError::BadState {
                path: path.clone(),
                detail: format!("policy [{id}]: {detail}"),
            })?;
            policies.insert(id, policy);
        }
        Ok(SlmState {
            stopped: file.stopped,
            policies,
            stats: file.stats,
        })
    }

    /// What `slm.json` holds of this state.
    pub fn file(&self) -> SlmFile {
        SlmFile {
            stopped: self.stopped,
            policies: self
                .policies
                .iter()
                .map(|(id, p)| (id.clone(), p.record.clone()))
                .collect(),
            stats: self.stats,
        }
    }

    /// Runs of any policy still in progress.
    pub fn active_runs(&self) -> u32 {
        self.policies.values().map(|p| p.active).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(SlmState::load(dir.path()).unwrap().policies.is_empty());
        let body = br#"{"name":"<n-{now/d}>","schedule":"1h","repository":"r",
            "timezone":"Europe/Berlin","retention":{"max_count":3}}"#;
        let parsed = SlmPolicy::parse("p", body, 1_000).unwrap();
        let record = PolicyRecord {
            stored: StoredPolicy::new("p", 2, 1_000, &parsed),
            last_success: None,
            last_failure: None,
            stats: PolicyStats {
                snapshots_taken: 4,
                ..PolicyStats::default()
            },
            invocations_since_last_success: 0,
            handled_ms: Some(3_601_000),
            queued_ms: Some(7_201_000),
        };
        let mut state = SlmState {
            stopped: true,
            ..SlmState::default()
        };
        state
            .policies
            .insert("p".into(), Policy::from_record(record).unwrap());
        crate::node::state::write_atomic(dir.path(), SLM_FILE, &state.file()).unwrap();
        let back = SlmState::load(dir.path()).unwrap();
        assert!(back.stopped);
        let p = &back.policies["p"];
        assert_eq!(p.record.stats.snapshots_taken, 4);
        assert_eq!(p.record.handled_ms, Some(3_601_000));
        // A queued slot survives a restart and is what runs first.
        assert_eq!(p.slot_state().queued_ms, Some(7_201_000));
        assert_eq!(p.next_execution(3_601_500), Some(7_201_000));
        assert_eq!(p.parsed.retention.as_ref().unwrap().max_count, Some(3));
    }

    #[test]
    fn a_damaged_policy_stops_the_load_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"policies":{"p":{"stored":{"format":1,"id":"p","version":1,
            "modified_date_millis":0,"policy":{"name":"n","schedule":"never","repository":"r"}}}}}"#;
        std::fs::write(dir.path().join(SLM_FILE), text).unwrap();
        let e = SlmState::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("policy [p]") && e.contains("schedule"), "{e}");
    }
}
