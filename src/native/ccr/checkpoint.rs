//! The leader side on disk: checkpoints of one index, taken into a
//! checkpoint repository when the index changed since the newest one.

use std::path::Path;

use crate::core::ccr::checkpoint::{parse_snapshot_name, snapshot_name, Point};
use crate::core::format::manifest::SnapshotState;
use crate::core::policy::selection::Selection;
use crate::native::backup::{create_snapshot, SnapshotOptions};
use crate::native::error::Result;
use crate::native::job::Abort;
use crate::native::repo::Repo;

/// One leader index and the repository its checkpoints go to.
pub struct Leader<'a> {
    pub repo: &'a Repo,
    /// The leader node's data folder and the index in it.
    pub data: &'a Path,
    pub index: &'a str,
}

/// A checkpoint as the repository lists it: where it stands and when it
/// was taken (the leader's clock, from its snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub point: Point,
    pub snapshot: String,
    pub time_ms: i64,
}

impl Leader<'_> {
    /// This index's complete checkpoints of every lineage, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<Listed>> {
        let root = self.repo.root()?;
        let mut out: Vec<Listed> = root
            .snapshots
            .iter()
            .filter(|s| s.state == SnapshotState::Success)
            .filter_map(|s| {
                let (index, point) = parse_snapshot_name(&s.snapshot)?;
                (index == self.index).then(|| Listed {
                    point,
                    snapshot: s.snapshot.clone(),
                    time_ms: s.start_time_in_millis,
                })
            })
            .collect();
        out.sort_by(|a, b| a.point.cmp(&b.point));
        Ok(out)
    }

    /// The newest checkpoint of `lineage`.
    pub fn head(&self, lineage: &str) -> Result<Option<Listed>> {
        Ok(self
            .checkpoints()?
            .into_iter()
            .filter(|c| c.point.lineage == lineage)
            .max_by_key(|c| c.point.seq))
    }

    /// Takes the next checkpoint of `lineage` if the index differs from
    /// the newest one, or returns `None` when nothing changed. There is no
    /// comparison before it: the snapshot itself walks the index against
    /// the newest checkpoint (reading only what changed) and is not
    /// committed when its trees come out the same, which records each
    /// entry's size, mtime and mode (the rule restore reuses files by).
    pub fn checkpoint(&self, lineage: &str, abort: Abort) -> Result<Option<Listed>> {
        let head = self.head(lineage)?;
        let point = Point::new(lineage, head.as_ref().map_or(1, |h| h.point.seq + 1));
        let name = snapshot_name(self.index, &point);
        let opts = SnapshotOptions {
            name: name.clone(),
            source: self.data.to_path_buf(),
            selection: Selection::parse(self.index)?,
            include_global_state: false,
            unless_same_as: head.map(|h| h.snapshot),
            abort,
            ..SnapshotOptions::default()
        };
        let outcome = create_snapshot(self.repo, &opts)?;
        if outcome.unchanged {
            return Ok(None);
        }
        Ok(Some(Listed {
            point,
            snapshot: name,
            time_ms: outcome.manifest.start_time_in_millis,
        }))
    }
}
