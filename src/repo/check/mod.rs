//! `repo check`: structure (every referenced blob is indexed, every indexed
//! blob's pack exists and is long enough, every manifest and tree decodes)
//! and, with `--read-data`, a re-hash of every blob. What it finds is a
//! typed list ([`Finding`]) naming the snapshots and files each problem
//! affects.
//!
//! Async throughout, so a server awaits it on its own runtime; the native
//! shell blocks on it once (`native::check`). Re-hashing runs on the
//! [`Cpu`] given, off the executor's threads.

mod chunking;
mod damage;
mod read_data;
mod steps;

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::core::format::keys;
use crate::core::format::root::Root;
use crate::error::Result;
use crate::repo::clock::Clock;
use crate::repo::cpu::Cpu;
use crate::repo::findings::{self, Damage, Finding, FindingKind};
use crate::repo::inflight;
use crate::repo::progress::Progress;
use crate::repo::RepoReader;

use steps::Checker;

#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub generation: u64,
    pub snapshots: usize,
    pub index_files: usize,
    pub packs: usize,
    pub blobs: usize,
    pub trees_checked: usize,
    pub packs_read: usize,
    pub bytes_read: u64,
    /// Packs on storage that no index lists (left by interrupted work).
    pub unindexed_packs: usize,
    /// File entries of the distinct trees checked, by how their nodes say
    /// they were cut (`cdc`, `pages:8KiB`, ...). A file in a folder that
    /// did not change between snapshots sits in one shared tree and counts
    /// once.
    pub files_by_chunking: BTreeMap<String, u64>,
    /// Everything found wrong, in the order found.
    pub findings: Vec<Finding>,
    /// What is worth knowing but harms no data (files cut in a way this
    /// repository's chunking does not make, e.g. copied in from another
    /// repository): reported, and the check still passes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Finding>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// One line per problem not tied to files.
    pub fn problem_lines(&self) -> Vec<String> {
        findings::problem_lines(&self.findings)
    }

    /// Every file a bad blob affects.
    pub fn damaged(&self) -> Vec<Damage> {
        findings::damage(&self.findings)
    }

    /// How many lines the problems take: one per problem, one per damaged
    /// file.
    pub fn problem_count(&self) -> usize {
        self.problem_lines().len() + self.damaged().len()
    }
}

/// How much pack data `check` downloads and re-hashes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadData {
    /// Structure only.
    None,
    /// Every pack.
    All,
    /// About this fraction (0..=1) of the packs, chosen by [`Check::salt`].
    Subset(f64),
}

/// One check of one repository: what it reads and what it runs with.
pub struct Check<'a> {
    pub reader: &'a RepoReader,
    pub read_data: ReadData,
    /// The time markers of running operations are judged by.
    pub clock: &'a dyn Clock,
    /// Where blobs are re-hashed.
    pub cpu: &'a dyn Cpu,
    /// Bytes of packs downloaded (with `read_data` only).
    pub progress: &'a dyn Progress,
    /// Picks the packs of a [`ReadData::Subset`]: a fresh random value each
    /// run, so repeated runs cover the repository over time.
    pub salt: &'a [u8],
}

impl Check<'_> {
    pub async fn run(&self) -> Result<CheckReport> {
        let root = self.reader.root().await?;
        let report = CheckReport {
            generation: root.generation,
            snapshots: root.snapshots.len(),
            index_files: root.index_files.len(),
            findings: self.rollback_signs(&root).await?,
            ..Default::default()
        };
        let mut c = Checker::new(self.reader, report);
        c.load_index_files(&root).await;
        c.check_pack_sizes().await?;
        c.load_manifests(&root).await;
        c.load_trees().await;
        c.check_shapes();
        c.check_chunking();
        if self.read_data != ReadData::None {
            c.read_packs(self).await;
        }
        c.map_damage().await;
        Ok(c.report)
    }

    /// Signs that a newer root generation than `root` existed and was lost:
    /// `index.latest` naming a missing generation, and manifests no root
    /// lists that were written after the newest root while no snapshot is
    /// running.
    async fn rollback_signs(&self, root: &Root) -> Result<Vec<Finding>> {
        let store = self.reader.store.as_ref();
        let mut out = Vec::new();
        if let Some(hinted) = self.reader.lost_generation() {
            out.push(Finding::new(
                FindingKind::LostRoot,
                keys::root(hinted),
                format!(
                    "index.latest names generation {hinted} but index-{hinted} is missing (the newest root is index-{}): a root object was lost",
                    root.generation
                ),
            ));
        }
        let now = self.clock.now_ms();
        if root.generation == 0 || !inflight::scan(store, now).await?.live.is_empty() {
            return Ok(out);
        }
        let root_ms = store.head(&keys::root(root.generation)).await?.modified_ms;
        let listed: HashSet<String> = root
            .snapshots
            .iter()
            .map(|s| keys::manifest(&s.uuid))
            .collect();
        for m in store.list(keys::SNAPSHOT_PREFIX).await? {
            let newer = match (m.modified_ms, root_ms) {
                (Some(t), Some(r)) => t >= r,
                _ => false,
            };
            if newer && !listed.contains(&m.key) {
                let detail = format!(
                    "{} is newer than the newest root index-{} and no root lists it: a newer root generation may have been lost",
                    m.key, root.generation
                );
                out.push(Finding::new(FindingKind::UnlistedManifest, m.key, detail));
            }
        }
        Ok(out)
    }
}
