//! A follower's decisions: what to do after each read of its leader, how
//! long to wait after a failure, and the figures `_ccr/stats` shows.

use serde::{Deserialize, Serialize};

use crate::core::ccr::checkpoint::Point;
use crate::core::ccr::lineage::{relate, History, Relation};

/// The follow request's tunables, with Elasticsearch's names and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowParams {
    /// How long to wait for a new checkpoint before looking again.
    pub read_poll_timeout_ms: i64,
    /// The longest wait between retries after failures.
    pub max_retry_delay_ms: i64,
    /// Resync a folder whose history diverged from the leader's (failback
    /// of an old leader): its own later checkpoints are replaced.
    pub reuse_existing: bool,
}

impl Default for FollowParams {
    fn default() -> FollowParams {
        FollowParams {
            read_poll_timeout_ms: 60_000,
            max_retry_delay_ms: 500,
            reuse_existing: false,
        }
    }
}

/// Why a follower stopped following until someone acts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PauseReason {
    /// `_ccr/pause_follow`.
    Requested,
    /// Files of the follower folder were changed locally: a follower is
    /// not for writes, and overwriting them would lose them.
    LocalChange { paths: Vec<String> },
    /// The folder holds history the leader does not have (split brain, or
    /// a failback without `reuse_existing`).
    Diverged {
        common: Option<Point>,
        local_after: u64,
    },
}

impl PauseReason {
    /// The reason in the user's terms, for `fatal_exception.reason`.
    pub fn describe(&self) -> String {
        match self {
            PauseReason::Requested => "paused by request".into(),
            PauseReason::LocalChange { paths } => format!(
                "the follower folder was changed locally ({}); a follower index is read-only: \
                 unfollow it to write, or restore it and resume",
                paths.join(", ")
            ),
            PauseReason::Diverged {
                common: Some(c),
                local_after,
            } => format!(
                "the follower holds {local_after} checkpoint(s) after {c} that the leader's history \
                 does not have (split brain); follow with reuse_existing to replace them"
            ),
            PauseReason::Diverged { common: None, .. } => {
                "the follower folder shares no history with the leader index; follow with \
                 reuse_existing to replace it"
                    .into()
            }
        }
    }
}

/// What one read of the leader showed.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub history: &'a History,
    pub head: Option<&'a Point>,
}

/// The follower's next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing newer: read again at `at_ms`.
    Wait { at_ms: i64 },
    /// Apply `point` over the folder; `resync` when it replaces diverged
    /// history the user allowed to replace.
    Apply { point: Point, resync: bool },
    /// Stop until the user acts.
    Pause(PauseReason),
}

/// How many locally changed paths a pause reason names.
pub const NAMED_LOCAL_CHANGES: usize = 5;

/// The step after a read at `now_ms` that showed `view`, for a follower
/// holding `held` whose folder has `local_changes` against it.
pub fn decide(
    held: Option<&Point>,
    view: View<'_>,
    local_changes: &[String],
    params: FollowParams,
    now_ms: i64,
) -> Step {
    if !local_changes.is_empty() {
        let paths = local_changes
            .iter()
            .take(NAMED_LOCAL_CHANGES)
            .cloned()
            .collect();
        return Step::Pause(PauseReason::LocalChange { paths });
    }
    let wait = Step::Wait {
        at_ms: now_ms.saturating_add(params.read_poll_timeout_ms),
    };
    match (relate(view.history, view.head, held), view.head) {
        (Relation::UpToDate, _) | (_, None) => wait,
        (Relation::Behind { .. }, Some(head)) => Step::Apply {
            point: head.clone(),
            resync: false,
        },
        (Relation::Diverged { .. }, Some(head)) if params.reuse_existing => Step::Apply {
            point: head.clone(),
            resync: true,
        },
        (
            Relation::Diverged {
                common,
                local_after,
            },
            Some(_),
        ) => Step::Pause(PauseReason::Diverged {
            common,
            local_after,
        }),
    }
}

/// The wait after `failures` consecutive failed reads or applies: doubling
/// from 50 ms up to `max_retry_delay_ms`. A follower never gives up
/// retrying; it shows the failures in its stats instead.
pub fn retry_delay_ms(failures: u32, params: FollowParams) -> i64 {
    let doubled = 50i64.saturating_mul(1i64 << failures.min(40));
    doubled.min(params.max_retry_delay_ms.max(50))
}

/// A follower's running figures, updated by its shell after each event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracker {
    /// The checkpoint the folder holds and its time (leader's clock).
    pub held: Option<(Point, i64)>,
    /// The newest checkpoint seen at the last read and its time.
    pub leader: Option<(Point, i64)>,
    pub last_read_ms: Option<i64>,
    pub consecutive_failures: u32,
    pub failed_reads: u64,
    pub checkpoints_applied: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub files_written: u64,
    pub last_error: Option<String>,
    pub paused: Option<PauseReason>,
}

impl Tracker {
    pub fn read_ok(&mut self, head: Option<(Point, i64)>, now_ms: i64) {
        self.leader = head;
        self.last_read_ms = Some(now_ms);
        self.consecutive_failures = 0;
    }

    pub fn failed(&mut self, error: String) {
        self.failed_reads += 1;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.last_error = Some(error);
    }

    pub fn applied(&mut self, point: (Point, i64), read: u64, written: u64, files: u64) {
        self.held = Some(point);
        self.checkpoints_applied += 1;
        self.bytes_read += read;
        self.bytes_written += written;
        self.files_written += files;
        self.consecutive_failures = 0;
    }

    /// The lag behind the last seen leader checkpoint, in checkpoints and
    /// in milliseconds between the two checkpoints' times (both taken on
    /// the leader's clock, so skew between the nodes does not enter).
    pub fn lag(&self, history: &History) -> (u64, i64) {
        let head = self.leader.as_ref().map(|(p, _)| p);
        let held = self.held.as_ref().map(|(p, _)| p);
        let steps = match relate(history, head, held) {
            Relation::UpToDate | Relation::Diverged { .. } => 0,
            Relation::Behind { checkpoints } => checkpoints,
        };
        let millis = match (&self.leader, &self.held) {
            _ if steps == 0 => 0,
            (Some((_, head)), Some((_, held))) => (head - held).max(0),
            (Some((_, head)), None) => (*head).max(0),
            _ => 0,
        };
        (steps, millis)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbb";

    #[test]
    fn a_follower_applies_the_newest_checkpoint_or_waits() {
        let h = History::start(A).unwrap();
        let head = Point::new(A, 5);
        let view = View {
            history: &h,
            head: Some(&head),
        };
        let p = FollowParams::default();
        let apply = Step::Apply {
            point: head.clone(),
            resync: false,
        };
        assert_eq!(decide(None, view, &[], p, 0), apply);
        assert_eq!(decide(Some(&Point::new(A, 2)), view, &[], p, 0), apply);
        assert_eq!(
            decide(Some(&head), view, &[], p, 1_000),
            Step::Wait { at_ms: 61_000 }
        );
        let none = View {
            history: &h,
            head: None,
        };
        assert_eq!(decide(None, none, &[], p, 0), Step::Wait { at_ms: 60_000 });
    }

    #[test]
    fn local_writes_and_divergence_pause_with_the_reason() {
        let h = History::start(A)
            .unwrap()
            .fork(&Point::new(A, 3), B)
            .unwrap();
        let head = Point::new(B, 1);
        let view = View {
            history: &h,
            head: Some(&head),
        };
        let p = FollowParams::default();
        let changed: Vec<String> = (0..9).map(|i| format!("f{i}")).collect();
        let Step::Pause(PauseReason::LocalChange { paths }) =
            decide(Some(&head), view, &changed, p, 0)
        else {
            panic!("local changes pause the follower");
        };
        assert_eq!(paths.len(), NAMED_LOCAL_CHANGES);

        let old_leader = Point::new(A, 6);
        let step = decide(Some(&old_leader), view, &[], p, 0);
        let Step::Pause(reason) = step else {
            panic!("{step:?}")
        };
        assert!(reason
            .describe()
            .contains("3 checkpoint(s) after aaaaaaaaaaaaaaaa:3"));
        let failback = FollowParams {
            reuse_existing: true,
            ..p
        };
        assert_eq!(
            decide(Some(&old_leader), view, &[], failback, 0),
            Step::Apply {
                point: head,
                resync: true
            }
        );
    }

    #[test]
    fn retries_back_off_to_the_cap_and_never_stop() {
        let p = FollowParams::default();
        let waits: Vec<i64> = (0..6).map(|n| retry_delay_ms(n, p)).collect();
        assert_eq!(waits, [50, 100, 200, 400, 500, 500]);
        assert_eq!(retry_delay_ms(u32::MAX, p), 500);
    }

    #[test]
    fn lag_is_measured_on_the_leaders_clock() {
        let h = History::start(A).unwrap();
        let mut t = Tracker::default();
        t.read_ok(Some((Point::new(A, 4), 40_000)), 999_999);
        t.applied((Point::new(A, 1), 10_000), 10, 20, 1);
        assert_eq!(t.lag(&h), (3, 30_000));
        t.applied((Point::new(A, 4), 40_000), 10, 20, 1);
        assert_eq!(t.lag(&h), (0, 0));
        assert_eq!(
            (t.checkpoints_applied, t.bytes_written, t.files_written),
            (2, 40, 2)
        );
    }
}
