//! A lifecycle policy as kept in its repository (`slm/policies/<id>`), so
//! that every node holding the repository, and the edge Worker's watchdog,
//! see the same policy with no coordinator: the repository is the source
//! of truth for what should run and what retention keeps.
//!
//! The record wraps the policy exactly as `GET /_slm/policy` shows it
//! (`policy_json`), and is re-parsed with the same strict parser, so a
//! record can never hold a policy the API would refuse.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::es::slm_policy::{policy_json, SlmPolicy};

/// Where policy records live in a repository.
pub const POLICY_PREFIX: &str = "slm/policies/";

/// The record format this code writes.
pub const STORED_POLICY_FORMAT: u32 = 1;

/// The object key of policy `id` (ids are checked by
/// `slm_policy::policy_id_problem`: no `/`, so one key per id).
pub fn policy_key(id: &str) -> String {
    format!("{POLICY_PREFIX}{id}")
}

/// The policy id a key under [`POLICY_PREFIX`] names, if it is one.
pub fn parse_policy_key(key: &str) -> Option<&str> {
    key.strip_prefix(POLICY_PREFIX)
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPolicy {
    pub format: u32,
    pub id: String,
    /// Counts the policy's puts, as `GET /_slm/policy` reports `version`.
    pub version: u64,
    /// When the policy was last put: intervals are anchored here.
    pub modified_date_millis: i64,
    /// The policy body (`policy_json`).
    pub policy: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredPolicyError {
    #[error("policy record [{key}] is not valid JSON: {reason}")]
    Json { key: String, reason: String },
    #[error("policy record [{key}] has format {found}; this snapkeep reads format {STORED_POLICY_FORMAT}")]
    Format { key: String, found: u32 },
    #[error("policy record [{key}] names policy [{id}]")]
    WrongId { key: String, id: String },
    #[error("policy record [{key}] holds an invalid policy: {reason}")]
    Policy { key: String, reason: String },
}

impl StoredPolicy {
    pub fn new(id: &str, version: u64, modified_date_millis: i64, p: &SlmPolicy) -> StoredPolicy {
        StoredPolicy {
            format: STORED_POLICY_FORMAT,
            id: id.to_string(),
            version,
            modified_date_millis,
            policy: policy_json(p),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("policy records always serialize")
    }

    /// Reads the record at `key`, checking that it is the one its key
    /// names and that its policy still parses.
    pub fn decode(key: &str, bytes: &[u8]) -> Result<(StoredPolicy, SlmPolicy), StoredPolicyError> {
        let record: StoredPolicy =
            serde_json::from_slice(bytes).map_err(|e| StoredPolicyError::Json {
                key: key.to_string(),
                reason: e.to_string(),
            })?;
        if record.format != STORED_POLICY_FORMAT {
            return Err(StoredPolicyError::Format {
                key: key.to_string(),
                found: record.format,
            });
        }
        if parse_policy_key(key) != Some(record.id.as_str()) {
            return Err(StoredPolicyError::WrongId {
                key: key.to_string(),
                id: record.id,
            });
        }
        let body = serde_json::to_vec(&record.policy).expect("values always serialize");
        let policy =
            SlmPolicy::parse(&record.id, &body, record.modified_date_millis).map_err(|e| {
                StoredPolicyError::Policy {
                    key: key.to_string(),
                    reason: e.reason,
                }
            })?;
        Ok((record, policy))
    }
}

/// The repository's record of a policy, as a node holding a copy reads it.
#[derive(Debug, Clone, Copy)]
pub enum Remote<'a> {
    /// No record: the policy was deleted through another node.
    Missing,
    /// The store failed, or the record does not decode: nothing is known.
    Unreadable,
    Found(&'a StoredPolicy),
}

/// What a node does with its copy of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Keep,
    /// Take the repository's record: it was put (through another node)
    /// after this copy.
    Adopt,
    /// Drop the policy: its record is gone from the repository.
    Drop,
}

/// How a node follows the repository, the policies' source of truth, so
/// a policy put or deleted through one node reaches every node holding it.
/// A newer record is one with a higher `version`, or the same version put
/// later (two nodes that put at once both count from the same version);
/// an unreadable record changes nothing, so a store that is down for a
/// moment never deletes a policy.
pub fn follow(local: &StoredPolicy, remote: Remote<'_>) -> Follow {
    match remote {
        Remote::Missing => Follow::Drop,
        Remote::Unreadable => Follow::Keep,
        Remote::Found(r) => {
            let newer =
                (r.version, r.modified_date_millis) > (local.version, local.modified_date_millis);
            if newer {
                Follow::Adopt
            } else {
                Follow::Keep
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const BODY: &str = r#"{"name":"<nightly-{now/d}>","schedule":"0 30 1 * * ?",
        "repository":"backups","retention":{"expire_after":"30d","min_count":5,"keep_daily":7},
        "timezone":"Europe/Berlin","missed":"run_once","overlap":"queue",
        "unhealthy_if_no_snapshot_within":"2d"}"#;

    fn policy() -> SlmPolicy {
        SlmPolicy::parse("nightly", BODY.as_bytes(), 0).expect("valid")
    }

    #[test]
    fn a_record_round_trips_with_its_policy() {
        let record = StoredPolicy::new("nightly", 3, 1_700_000_000_000, &policy());
        let key = policy_key("nightly");
        let (back, parsed) = StoredPolicy::decode(&key, &record.encode()).expect("reads");
        assert_eq!(back, record);
        assert_eq!(policy_json(&parsed), policy_json(&policy()));
        assert_eq!(
            parsed.unhealthy_if_no_snapshot_within_ms,
            Some(2 * 86_400_000)
        );
    }

    #[test]
    fn a_node_follows_newer_records_and_deletions_but_not_outages() {
        let local = StoredPolicy::new("nightly", 3, 1_000, &policy());
        let at = |version, modified| StoredPolicy::new("nightly", version, modified, &policy());
        assert_eq!(follow(&local, Remote::Found(&local)), Follow::Keep);
        assert_eq!(follow(&local, Remote::Found(&at(4, 900))), Follow::Adopt);
        assert_eq!(follow(&local, Remote::Found(&at(3, 1_001))), Follow::Adopt);
        // An older record (a node that lags behind wrote it) is not taken.
        assert_eq!(follow(&local, Remote::Found(&at(2, 5_000))), Follow::Keep);
        assert_eq!(follow(&local, Remote::Found(&at(3, 999))), Follow::Keep);
        assert_eq!(follow(&local, Remote::Missing), Follow::Drop);
        assert_eq!(follow(&local, Remote::Unreadable), Follow::Keep);
    }

    #[test]
    fn keys_name_one_policy_each() {
        assert_eq!(policy_key("a-b"), "slm/policies/a-b");
        assert_eq!(parse_policy_key("slm/policies/a-b"), Some("a-b"));
        assert_eq!(parse_policy_key("slm/policies/"), None);
        assert_eq!(parse_policy_key("slm/policies/a/b"), None);
        assert_eq!(parse_policy_key("slm/claims/a"), None);
    }

    #[test]
    fn damaged_or_foreign_records_are_refused_by_name() {
        let good = StoredPolicy::new("nightly", 1, 0, &policy());
        let key = policy_key("nightly");
        assert!(matches!(
            StoredPolicy::decode(&key, b"{"),
            Err(StoredPolicyError::Json { .. })
        ));
        let mut future = good.clone();
        future.format = 2;
        assert!(matches!(
            StoredPolicy::decode(&key, &future.encode()),
            Err(StoredPolicyError::Format { found: 2, .. })
        ));
        assert!(matches!(
            StoredPolicy::decode(&policy_key("other"), &good.encode()),
            Err(StoredPolicyError::WrongId { .. })
        ));
        let mut bad = good;
        bad.policy["schedule"] = Value::from("not a schedule");
        let err = StoredPolicy::decode(&key, &bad.encode()).unwrap_err();
        assert!(matches!(err, StoredPolicyError::Policy { .. }), "{err}");
        assert!(err.to_string().contains("schedule"), "{err}");
    }
}
