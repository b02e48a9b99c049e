//! The part of restore planning that needs only the repository: pick the
//! snapshot's indices, rename them, load their trees. Every shell plans the
//! same way; the native one then adds what its target folder holds.

use std::collections::HashMap;
use std::sync::Arc;

use crate::core::format::id::Id;
use crate::core::format::index::RepoIndex;
use crate::core::format::manifest::IndexStats;
use crate::core::format::naming::validate_name;
use crate::core::format::tree::Tree;
use crate::core::plan::read::{DEFAULT_MAX_GAP, DEFAULT_MAX_RANGE};
use crate::core::plan::restore::{
    plan_restore, Declared, IndexToRestore, PlanError, PlanRequest, RestorePlan, TargetState,
};
use crate::core::policy::include::PathFilter;
use crate::core::policy::selection::{rename_all, Rename, Selection};
use crate::error::{Error, Result};
use crate::repo::reader::RepoReader;

/// What to restore from which snapshot.
#[derive(Debug, Clone, Default)]
pub struct RestoreChoice {
    pub snapshot: String,
    pub selection: Selection,
    pub rename: Option<Rename>,
    pub include_global_state: bool,
    /// `--include`: only the paths this selects (see `core::plan::subset`).
    pub include: Option<PathFilter>,
}

/// A snapshot's selected indices, renamed, with every tree they reach.
#[derive(Debug)]
pub struct Prepared {
    pub snapshot: String,
    pub snapshot_uuid: String,
    /// (index in the snapshot, name it is restored as).
    pub renamed: Vec<(String, String)>,
    pub indices: Vec<IndexToRestore>,
    pub global_state: Option<Id>,
    pub global_declared: Declared,
    pub trees: HashMap<Id, Tree>,
    pub index: RepoIndex,
    pub include: Option<PathFilter>,
}

pub async fn prepare(reader: &RepoReader, choice: &RestoreChoice) -> Result<Prepared> {
    let (root, index) = reader.root_and_index().await?;
    let summary = root
        .snapshot(&choice.snapshot)
        .ok_or_else(|| Error::SnapshotMissing(choice.snapshot.clone()))?;
    let manifest = reader.manifest(summary).await?;
    let available: Vec<String> = manifest.indices.keys().cloned().collect();
    let selected = choice.selection.select(&available)?;
    let renamed = rename_all(&selected, choice.rename.as_ref())?;
    let mut indices = Vec::new();
    for (from, to) in &renamed {
        validate_name("index", to)?;
        let s = &manifest.indices[from];
        indices.push(IndexToRestore {
            source: from.clone(),
            target: to.clone(),
            tree: s.tree,
            mode: s.root_mode,
            mtime_ns: s.root_mtime_ns,
            attrs: s.root_attrs.clone().map(Arc::new),
            declared: declared(s),
        });
    }
    let global_state = if choice.include_global_state {
        manifest.global_state.as_ref().and_then(|g| g.tree)
    } else {
        None
    };
    let global_declared = manifest
        .global_state
        .as_ref()
        .map(declared)
        .unwrap_or_default();
    let roots: Vec<Id> = indices
        .iter()
        .filter_map(|i| i.tree)
        .chain(global_state)
        .collect();
    let trees = reader.load_trees(&index, &roots).await?;
    Ok(Prepared {
        snapshot: summary.snapshot.clone(),
        global_declared,
        snapshot_uuid: summary.uuid.clone(),
        renamed,
        indices,
        global_state,
        trees,
        index,
        include: choice.include.clone(),
    })
}

impl Prepared {
    /// The core's plan for restoring into a target that holds `target`.
    pub fn plan(&self, target: TargetState) -> Result<RestorePlan> {
        let request = PlanRequest {
            indices: self.indices.clone(),
            global_state: self.global_state,
            global_declared: self.global_declared,
            trees: &self.trees,
            index: &self.index,
            target,
            max_gap: DEFAULT_MAX_GAP,
            max_range: DEFAULT_MAX_RANGE,
            include: self.include.as_ref(),
        };
        plan_restore(&request).map_err(|e| match e {
            PlanError::Unsafe { path, reason } => Error::UnsafePath { path, reason },
            e @ PlanError::RenameCollision { .. } => Error::Usage(e.to_string()),
            PlanError::NothingIncluded(patterns) => Error::NotFound(format!(
                "a path of snapshot [{}] matching --include {patterns}",
                self.snapshot
            )),
            other => Error::DamagedSnapshot {
                snapshot: self.snapshot.clone(),
                detail: other.to_string(),
            },
        })
    }
}

fn declared(s: &IndexStats) -> Declared {
    Declared {
        files: s.files,
        dirs: s.dirs,
    }
}
