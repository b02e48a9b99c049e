//! What the watchdog and `GET /api/health` read from one repository: its
//! lifecycle policy records (`slm/policies/<id>`), its newest root's
//! snapshots as retention and health see them, and each policy's health.

use std::sync::Arc;

use crate::core::es::slm_policy::SlmPolicy;
use crate::core::format::codec;
use crate::core::format::root::Root;
use crate::core::slm::health::{policy_health, PolicyHealth, Watched};
use crate::core::slm::retention::Candidate;
use crate::core::slm::stored::{parse_policy_key, StoredPolicy, POLICY_PREFIX};
use crate::error::{Error, Result};
use crate::repo::keyring::Unlock;
use crate::repo::RepoReader;
use crate::storage::Storage;

use super::r2::R2Store;

/// One repository as of one reading.
pub struct Survey {
    pub reader: RepoReader,
    pub root: Root,
    pub snapshots: Vec<Candidate>,
    /// Every policy record that reads, by id.
    pub policies: Vec<(StoredPolicy, SlmPolicy)>,
    /// Records that do not read, in words.
    pub problems: Vec<String>,
}

impl Survey {
    /// Reads `store`'s repository; `None` when the folder holds no
    /// repository (no config). An encrypted one needs the read key in
    /// `unlock`.
    pub async fn read(store: R2Store, unlock: &dyn Unlock) -> Result<Option<Survey>> {
        let store: Arc<dyn Storage> = Arc::new(store);
        let reader = match RepoReader::open_with(store, codec::ruzstd_decode, unlock).await {
            Err(Error::NotARepository(_)) => return Ok(None),
            r => r?,
        };
        // Through the reader's storage: sealed in an encrypted repository.
        let (policies, problems) = read_policies(reader.store.as_ref()).await?;
        let root = reader.root().await?;
        let snapshots = candidates(&reader, &root).await?;
        Ok(Some(Survey {
            reader,
            root,
            snapshots,
            policies,
            problems,
        }))
    }

    /// Reads the root again (after losing a commit race) and the snapshots
    /// in it.
    pub async fn reread_root(&mut self) -> Result<()> {
        self.root = self.reader.root().await?;
        self.snapshots = candidates(&self.reader, &self.root).await?;
        Ok(())
    }

    /// Each policy's health at `now_ms`.
    pub fn health(&self, now_ms: i64) -> Vec<PolicyHealth> {
        self.policies
            .iter()
            .map(|(record, policy)| {
                let watched = Watched {
                    id: &record.id,
                    threshold_ms: policy.unhealthy_if_no_snapshot_within_ms,
                    modified_ms: record.modified_date_millis,
                };
                policy_health(watched, &self.snapshots, now_ms)
            })
            .collect()
    }
}

/// The policy records, sorted by id; a record that does not read is a
/// problem to report, not a failure of the whole repository.
async fn read_policies(
    store: &dyn Storage,
) -> Result<(Vec<(StoredPolicy, SlmPolicy)>, Vec<String>)> {
    let mut policies = Vec::new();
    let mut problems = Vec::new();
    for meta in store.list(POLICY_PREFIX).await? {
        if parse_policy_key(&meta.key).is_none() {
            continue;
        }
        let bytes = match store.get(&meta.key, None).await {
            Ok(b) => b,
            // Deleted between the listing and the read.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        match StoredPolicy::decode(&meta.key, &bytes) {
            Ok(p) => policies.push(p),
            Err(e) => problems.push(e.to_string()),
        }
    }
    policies.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    Ok((policies, problems))
}

/// The root's snapshots as retention sees them; a summary that lost its
/// policy is completed from its manifest.
async fn candidates(reader: &RepoReader, root: &Root) -> Result<Vec<Candidate>> {
    let mut out = Vec::with_capacity(root.snapshots.len());
    for s in &root.snapshots {
        out.push(reader.retention_candidate(s).await?);
    }
    Ok(out)
}
