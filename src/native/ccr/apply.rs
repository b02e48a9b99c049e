//! Applying a checkpoint over a follower folder.
//!
//! The next version is built beside the live folder: a hard-linked copy of
//! it, brought to the checkpoint by a restore with `--overwrite` (which
//! keeps files already right and replaces the others by renaming new files
//! over them, so the live folder's inodes are never written), then swapped
//! with the live folder in one exchange. Readers that open the folder see
//! the old checkpoint or the new one, never a mix. Only chunks the folder
//! lacks are read from the checkpoint repository, and with a leader that
//! answers chunk deltas (`delta.rs`) most chunks edited in place are
//! rebuilt from the ones they replace instead.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use serde::Serialize;

use crate::core::policy::selection::{Rename, Selection};
use crate::native::ccr::delta::{self, DeltaUse, Deltas};
use crate::native::ccr::switch::{exchange, link_tree};
use crate::native::error::{Error, Result};
use crate::native::job::Abort;
use crate::native::progress::ProgressMode;
use crate::native::repo::Repo;
use crate::native::restore::{
    plan, plan_over, restore_planned, Planned, RestoreOptions, RestoreOutcome, Walked,
};

/// Numbers this process's old versions awaiting removal.
static OLD_COUNTER: AtomicU64 = AtomicU64::new(0);

/// This process among others that used the same data folder: the time it
/// first switched a folder, in nanoseconds (a pid repeats across restarts,
/// in a container always).
fn this_run() -> u128 {
    static RUN: OnceLock<u128> = OnceLock::new();
    *RUN.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    })
}

/// What to apply where.
pub struct Follow<'a> {
    /// The checkpoint repository, opened on any storage.
    pub repo: &'a Repo,
    pub leader_index: &'a str,
    /// The follower node's data folder and the follower index in it.
    pub data: &'a Path,
    pub follower_index: &'a str,
}

/// What [`Follow::examine`] found.
pub struct Examined {
    /// Paths that differ from the held checkpoint (local writes).
    pub changes: Vec<String>,
    /// The walk of the folder the comparison made.
    pub walked: Option<Walked>,
    /// The comparison's plan of the held checkpoint (for chunk deltas).
    pub planned: Planned,
}

/// What an apply can start from, made beforehand: all optional.
#[derive(Default)]
pub struct Prepared<'a> {
    /// Chunk deltas to ask for (with a leader that answers them).
    pub deltas: Option<&'a Deltas<'a>>,
    /// The live folder's walk by [`Follow::examine`] just before: the
    /// apply plans over it instead of walking the linked copy again.
    pub walked: Option<Walked>,
    /// The stage, linked by [`Follow::link_stage`] (beside the examine,
    /// say).
    pub staged: Option<Staged>,
}

/// A stage made by [`Follow::link_stage`]: the live folder's hard-linked
/// copy, or an empty stage where there is no live folder yet.
#[derive(Debug)]
pub struct Staged(());

/// The next apply's stage, being linked on a thread of its own from the
/// folder a switch has just made live ([`Follow::link_stage_ahead`]), so
/// that the next apply does not wait for thousands of links. It is that
/// apply's stage only while the live folder is unchanged since: whoever
/// takes it checks the folder first (`Follow::examine` finding no local
/// write), as a stage linked beside that check is taken. Dropped, it
/// waits for its thread: nobody removes a stage still being linked.
#[derive(Debug)]
pub struct StageAhead(Option<std::thread::JoinHandle<Result<Staged>>>);

impl StageAhead {
    /// Waits for the linking: the stage, or why there is none.
    pub fn finish(mut self) -> Result<Staged> {
        let thread = self.0.take().expect("a stage ahead is finished once");
        thread.join().expect("the stage's thread panicked")
    }
}

impl Drop for StageAhead {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

/// What applying one checkpoint did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// Files of the checkpoint, and those that had to be written.
    pub files: u64,
    pub files_written: u64,
    /// Bytes of the checkpoint, and those that were not already in place.
    pub bytes: u64,
    pub bytes_written: u64,
    /// Bytes read from the leader: stored bytes of the checkpoint
    /// repository's packs, and the answers of delta requests.
    pub bytes_read: u64,
    /// Paths the checkpoint no longer has, removed.
    pub removed: usize,
    /// What chunk deltas gave (with a leader that answers them).
    pub deltas: Option<DeltaUse>,
}

impl Follow<'_> {
    /// Where this follower index's folders are.
    fn place(&self) -> Place {
        Place {
            data: self.data.to_path_buf(),
            follower_index: self.follower_index.to_string(),
        }
    }

    fn options(&self, snapshot: &str, target: &Path, abort: Abort) -> Result<RestoreOptions> {
        let selection = Selection::parse(self.leader_index)?;
        let pattern = format!("^{}$", regex::escape(self.leader_index));
        let rename = Rename::new(&pattern, &self.follower_index.replace('$', "$$"))?;
        Ok(RestoreOptions {
            snapshot: snapshot.to_string(),
            target: target.to_path_buf(),
            selection,
            rename: Some(rename),
            include_global_state: false,
            include: None,
            overwrite: true,
            update_in_place: false,
            progress: ProgressMode::Quiet,
            concurrency: None,
            status: None,
            cache: None,
            abort,
        })
    }

    /// Paths inside the follower folder that differ from checkpoint `held`
    /// (the one it was last switched to): changed, added or removed since,
    /// by the same size, mtime and mode rule restore reuses files by.
    pub fn local_changes(&self, held: &str) -> Result<Vec<String>> {
        Ok(self.examine(held)?.changes)
    }

    /// [`Follow::local_changes`], with the walk of the folder it made: an
    /// apply that follows at once plans over it instead of walking the
    /// folder's linked copy again (its files are the same inodes). A local
    /// write made between the two is then kept, not replaced, and the next
    /// comparison finds it.
    pub fn examine(&self, held: &str) -> Result<Examined> {
        let mut planned = plan(self.repo, &self.options(held, self.data, Abort::new())?)?;
        let mut walked = planned.walked.take();
        if let Some(w) = walked.as_mut() {
            w.know(&planned.plan, &planned.index);
        }
        let p = &planned.plan;
        let prefix = format!("{}/", self.follower_index);
        let inside = |path: &String| path.strip_prefix(&prefix).unwrap_or(path).to_string();
        let mut changed: Vec<String> = p
            .files
            .iter()
            .filter(|f| !f.done)
            .map(|f| inside(&f.path))
            .chain(p.deletes.iter().map(inside))
            .collect();
        changed.sort();
        Ok(Examined {
            changes: changed,
            walked,
            planned,
        })
    }

    /// The restore `opts` with the chunks the leader gives (`deltas`) taken
    /// from it instead of fetched: asked for on a thread of their own
    /// while the restore fetches and copies the rest.
    fn restore_with_deltas(
        &self,
        deltas: &Deltas,
        mut planned: Planned,
        opts: &RestoreOptions,
    ) -> Result<(RestoreOutcome, Option<DeltaUse>)> {
        let asks = delta::asks(self.repo, deltas, &planned.plan, opts)?;
        let (send, receive) = std::sync::mpsc::sync_channel(delta::AHEAD);
        planned.expect_held(&asks.ids(), receive)?;
        std::thread::scope(|s| {
            let getting = s.spawn(|| {
                delta::get(
                    self.repo,
                    deltas.source,
                    &asks,
                    self.data,
                    &opts.abort,
                    send,
                )
            });
            let outcome = restore_planned(self.repo, &planned, opts);
            planned.stop_expecting();
            // What went wrong with the deltas was the restore's to meet:
            // it fetched the chunks (an abort is its to report too).
            let used = getting
                .join()
                .expect("the delta thread panicked")
                .unwrap_or_default();
            Ok((outcome?, Some(used)))
        })
    }

    /// Brings the follower folder to checkpoint `snapshot` in one switch.
    /// A run killed at any point leaves the live folder at its old
    /// checkpoint; the next run starts its stage afresh.
    pub fn apply(&self, snapshot: &str, abort: Abort) -> Result<Applied> {
        self.apply_with(snapshot, Prepared::default(), abort)
    }

    /// Makes the stage of the next apply afresh: the live folder's
    /// hard-linked copy (what a killed run left there is removed first).
    /// It only reads the live folder, so it can run beside
    /// [`Follow::examine`]: a file replaced between the two is either
    /// found by the examine or kept by the apply and found by the next
    /// one, as a write after the examine is.
    pub fn link_stage(&self) -> Result<Staged> {
        self.place().link_stage()
    }

    /// [`Follow::link_stage`] on a thread of its own, for the apply after
    /// the next local-write check (see [`StageAhead`]).
    pub fn link_stage_ahead(&self) -> StageAhead {
        let place = self.place();
        StageAhead(Some(std::thread::spawn(move || place.link_stage())))
    }

    /// [`Follow::apply`] from what `prepared` holds: asking for chunk
    /// deltas first when it has them and the live folder exists (it holds
    /// the bases), planning over its walk, and taking its stage instead of
    /// linking one.
    pub fn apply_with(&self, snapshot: &str, prepared: Prepared, abort: Abort) -> Result<Applied> {
        let place = self.place();
        let (live, stage) = (place.live(), place.stage());
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e| Error::io(&p, e)
        };
        let Prepared {
            deltas,
            walked,
            staged,
        } = prepared;
        if staged.is_none() {
            self.link_stage()?;
        }
        let next = stage.join(self.follower_index);
        let opts = self.options(snapshot, &stage, abort)?;
        let walked = walked.filter(|_| live.is_dir());
        let planned = plan_over(self.repo, &opts, walked)?;
        let (outcome, used) = match deltas.filter(|_| live.is_dir()) {
            Some(d) => self.restore_with_deltas(d, planned, &opts)?,
            None => (restore_planned(self.repo, &planned, &opts)?, None),
        };
        if live.is_dir() {
            exchange(&live, &next).map_err(io(&live))?;
        } else {
            std::fs::rename(&next, &live).map_err(io(&live))?;
        }
        // The stage now holds the old version: moved out of the way in one
        // rename and removed on a thread of its own, so the next read of
        // the leader does not wait for thousands of unlinks.
        let old = self.data.join(format!(
            "{}{}",
            place.old_prefix(),
            OLD_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::rename(&stage, &old).map_err(io(&stage))?;
        std::thread::spawn(move || {
            let _ = std::fs::remove_dir_all(&old);
        });
        let s = &outcome.plan;
        Ok(Applied {
            files: outcome.files,
            files_written: s.files.saturating_sub(s.files_unchanged),
            bytes: outcome.bytes,
            bytes_written: s.bytes.saturating_sub(s.bytes_in_place),
            bytes_read: s.bytes_to_fetch
                + outcome.cache.as_ref().map_or(0, |c| c.refetched_bytes)
                + used.as_ref().map_or(0, |u| u.bytes_received),
            removed: outcome.deleted.len(),
            deltas: used,
        })
    }
}

/// Where a follower index's folders are, owned (a stage linked ahead
/// outlives the [`Follow`] that started it).
struct Place {
    data: PathBuf,
    follower_index: String,
}

impl Place {
    fn live(&self) -> PathBuf {
        self.data.join(&self.follower_index)
    }

    /// Where the next version is built: a hidden folder of the data folder
    /// (the same file system, as the exchange needs).
    fn stage(&self) -> PathBuf {
        self.data.join(format!(".ccr-next-{}", self.follower_index))
    }

    /// Where versions before 2026-12-07 kept chunks rebuilt from deltas
    /// during an apply (they are held in memory now): a node of such a
    /// version killed mid-apply left it behind.
    fn old_delta_cache(&self) -> PathBuf {
        self.data
            .join(format!(".ccr-deltas-{}", self.follower_index))
    }

    /// Old versions are moved to `.ccr-old-<index>-<run>-<n>` after a
    /// switch and removed in the background; `<run>` names this process.
    fn old_prefix(&self) -> String {
        format!("{}{}-", self.old_of_index(), this_run())
    }

    fn old_of_index(&self) -> String {
        format!(".ccr-old-{}-", self.follower_index)
    }

    /// Removes old versions an earlier process (killed, say) left before
    /// its background removal was done; this process's own are being
    /// removed by their threads.
    fn remove_old_of_other_runs(&self) {
        remove_old_versions(&self.data, &self.follower_index, Some(&self.old_prefix()));
    }

    /// See [`Follow::link_stage`].
    fn link_stage(&self) -> Result<Staged> {
        let (live, stage) = (self.live(), self.stage());
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e| Error::io(&p, e)
        };
        if stage.exists() {
            std::fs::remove_dir_all(&stage).map_err(io(&stage))?;
        }
        let _ = std::fs::remove_dir_all(self.old_delta_cache());
        self.remove_old_of_other_runs();
        std::fs::create_dir(&stage).map_err(io(&stage))?;
        if live.is_dir() {
            link_tree(&live, &stage.join(&self.follower_index)).map_err(io(&live))?;
        }
        Ok(Staged(()))
    }
}

/// Removes the old versions of follower index `index` left in `data`
/// (`.ccr-old-<index>-<run>-<n>`), but for those starting with `keep`.
pub fn remove_old_versions(data: &Path, index: &str, keep: Option<&str>) {
    let any = format!(".ccr-old-{index}-");
    let Ok(entries) = std::fs::read_dir(data) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = name.strip_prefix(&any).is_some_and(|rest| {
            // Another index's name may extend this one's: `<run>-<n>`.
            rest.split('-').count() == 2 && !keep.is_some_and(|k| name.starts_with(k))
        });
        if ours {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
