//! Lineages: how the follower's folder relates to the leader's history.

use serde::{Deserialize, Serialize};

use crate::core::ccr::checkpoint::{is_lineage_id, Point};

/// One line of an index's history: its id and the checkpoint of the
/// lineage before it that it was forked from (none for the first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<Point>,
}

/// Why a recorded history cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("a history needs at least one lineage")]
    Empty,
    #[error("lineage id [{0}] is not 16 lowercase hexadecimal digits")]
    BadId(String),
    #[error("lineage [{0}] appears twice in one history")]
    Repeated(String),
    #[error("lineage [{id}] must fork from a checkpoint (seq 1 or later) of the lineage before it, [{previous}]")]
    BadFork { id: String, previous: String },
}

/// An index's history as its leader records it: lineages from the first to
/// the current one, each forked from the one before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    lineages: Vec<Lineage>,
}

impl History {
    /// The history of a new index: one lineage.
    pub fn start(id: &str) -> Result<History, HistoryError> {
        History::from_lineages(vec![Lineage {
            id: id.to_string(),
            forked_from: None,
        }])
    }

    /// Checks a recorded history: well-formed distinct ids, and each
    /// lineage after the first forked from a checkpoint of its predecessor.
    pub fn from_lineages(lineages: Vec<Lineage>) -> Result<History, HistoryError> {
        let first = lineages.first().ok_or(HistoryError::Empty)?;
        if first.forked_from.is_some() {
            return Err(HistoryError::BadFork {
                id: first.id.clone(),
                previous: String::new(),
            });
        }
        for (i, l) in lineages.iter().enumerate() {
            if !is_lineage_id(&l.id) {
                return Err(HistoryError::BadId(l.id.clone()));
            }
            if lineages[..i].iter().any(|o| o.id == l.id) {
                return Err(HistoryError::Repeated(l.id.clone()));
            }
            if i > 0 {
                let previous = &lineages[i - 1].id;
                let ok = l
                    .forked_from
                    .as_ref()
                    .is_some_and(|p| &p.lineage == previous && p.seq > 0);
                if !ok {
                    return Err(HistoryError::BadFork {
                        id: l.id.clone(),
                        previous: previous.clone(),
                    });
                }
            }
        }
        Ok(History { lineages })
    }

    pub fn lineages(&self) -> &[Lineage] {
        &self.lineages
    }

    /// The lineage new checkpoints belong to.
    pub fn current(&self) -> &str {
        &self.lineages.last().expect("a history has a lineage").id
    }

    /// The history after a promotion of a follower holding `at` (a
    /// checkpoint of this history): a new lineage `id` forked at `at`.
    pub fn fork(&self, at: &Point, id: &str) -> Result<History, HistoryError> {
        let kept = self
            .position(&at.lineage)
            .filter(|&i| at.seq > 0 && self.end_of(i).is_none_or(|end| at.seq <= end));
        let Some(i) = kept else {
            return Err(HistoryError::BadFork {
                id: id.to_string(),
                previous: at.to_string(),
            });
        };
        let mut lineages = self.lineages[..=i].to_vec();
        lineages.push(Lineage {
            id: id.to_string(),
            forked_from: Some(at.clone()),
        });
        History::from_lineages(lineages)
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.lineages.iter().position(|l| l.id == id)
    }

    /// The last checkpoint of lineage `i` that is part of this history:
    /// the one the next lineage forked from, or none (unbounded) for the
    /// current lineage.
    fn end_of(&self, i: usize) -> Option<u64> {
        let next = self.lineages.get(i + 1)?;
        next.forked_from.as_ref().map(|p| p.seq)
    }

    /// Whether checkpoint `p` is part of this history.
    pub fn contains(&self, p: &Point) -> bool {
        self.position(&p.lineage)
            .is_some_and(|i| p.seq > 0 && self.end_of(i).is_none_or(|end| p.seq <= end))
    }
}

/// How what a follower holds relates to its leader's newest checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "relation", rename_all = "snake_case")]
pub enum Relation {
    /// The follower holds the leader's newest checkpoint (or both hold none).
    UpToDate,
    /// The follower holds an earlier checkpoint of the leader's history:
    /// applying the newest is a fast-forward over `checkpoints` steps.
    Behind { checkpoints: u64 },
    /// The follower holds checkpoints the leader's history does not have:
    /// both sides wrote after `common` (none: the histories share
    /// nothing). `local_after` counts the follower's own checkpoints past
    /// it that a resync would replace.
    Diverged {
        common: Option<Point>,
        local_after: u64,
    },
}

/// How `held` (what the follower's folder holds; none for an empty one)
/// relates to `head`, the newest checkpoint of `history` (none yet).
pub fn relate(history: &History, head: Option<&Point>, held: Option<&Point>) -> Relation {
    let Some(held) = held else {
        let steps = history_length(history, head);
        return match steps {
            0 => Relation::UpToDate,
            n => Relation::Behind { checkpoints: n },
        };
    };
    let Some(i) = history.position(&held.lineage) else {
        return Relation::Diverged {
            common: None,
            local_after: held.seq,
        };
    };
    let is_current = i + 1 == history.lineages.len();
    let end = match history.end_of(i) {
        Some(end) => end,
        None => head.map_or(0, |h| h.seq),
    };
    if held.seq > end {
        let common = (end > 0).then(|| Point::new(&held.lineage, end));
        let common = common.or_else(|| fork_of(history, i));
        return Relation::Diverged {
            common,
            local_after: held.seq - end,
        };
    }
    let later = if is_current {
        0
    } else {
        history_length_from(history, i + 1, head)
    };
    match (end - held.seq) + later {
        0 => Relation::UpToDate,
        n => Relation::Behind { checkpoints: n },
    }
}

/// Where lineage `i` itself forked from: the newest checkpoint before its
/// first, shared by every lineage after it.
fn fork_of(history: &History, i: usize) -> Option<Point> {
    history.lineages[i].forked_from.clone()
}

/// Checkpoints of the whole history up to `head`.
fn history_length(history: &History, head: Option<&Point>) -> u64 {
    history_length_from(history, 0, head)
}

/// Checkpoints of lineages `from..` of the history up to `head`.
fn history_length_from(history: &History, from: usize, head: Option<&Point>) -> u64 {
    let last = history.lineages.len() - 1;
    (from..=last)
        .map(|i| match history.end_of(i) {
            Some(end) => end,
            None => head
                .filter(|h| h.lineage == history.lineages[i].id)
                .map_or(0, |h| h.seq),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccc";

    fn p(l: &str, seq: u64) -> Point {
        Point::new(l, seq)
    }

    #[test]
    fn a_follower_of_one_lineage_is_behind_up_to_date_or_diverged() {
        let h = History::start(A).unwrap();
        let head = p(A, 7);
        assert_eq!(
            relate(&h, Some(&head), None),
            Relation::Behind { checkpoints: 7 }
        );
        assert_eq!(relate(&h, None, None), Relation::UpToDate);
        assert_eq!(
            relate(&h, Some(&head), Some(&p(A, 4))),
            Relation::Behind { checkpoints: 3 }
        );
        assert_eq!(relate(&h, Some(&head), Some(&head)), Relation::UpToDate);
        // A leader whose history lost checkpoints the follower applied.
        assert_eq!(
            relate(&h, Some(&head), Some(&p(A, 9))),
            Relation::Diverged {
                common: Some(p(A, 7)),
                local_after: 2
            }
        );
        assert_eq!(
            relate(&h, Some(&head), Some(&p(B, 3))),
            Relation::Diverged {
                common: None,
                local_after: 3
            }
        );
    }

    #[test]
    fn after_a_promotion_the_old_leader_that_kept_writing_has_diverged() {
        // B was promoted holding A:17; the old leader went on to A:19.
        let h = History::start(A).unwrap().fork(&p(A, 17), B).unwrap();
        let head = p(B, 4);
        assert_eq!(
            relate(&h, Some(&head), Some(&p(A, 19))),
            Relation::Diverged {
                common: Some(p(A, 17)),
                local_after: 2
            }
        );
        // A follower that held A:17 or earlier only fast-forwards.
        assert_eq!(
            relate(&h, Some(&head), Some(&p(A, 17))),
            Relation::Behind { checkpoints: 4 }
        );
        assert_eq!(
            relate(&h, Some(&head), Some(&p(A, 15))),
            Relation::Behind { checkpoints: 6 }
        );
        assert_eq!(relate(&h, None, Some(&p(A, 17))), Relation::UpToDate);
        assert_eq!(
            relate(&h, Some(&head), None),
            Relation::Behind { checkpoints: 21 }
        );
    }

    #[test]
    fn failback_and_a_second_failover_keep_the_chain() {
        let h = History::start(A)
            .unwrap()
            .fork(&p(A, 17), B)
            .unwrap()
            .fork(&p(B, 5), C)
            .unwrap();
        assert!(h.contains(&p(A, 17)) && !h.contains(&p(A, 18)));
        assert!(h.contains(&p(B, 5)) && !h.contains(&p(B, 6)));
        assert_eq!(
            relate(&h, Some(&p(C, 2)), Some(&p(B, 6))),
            Relation::Diverged {
                common: Some(p(B, 5)),
                local_after: 1
            }
        );
        assert_eq!(
            relate(&h, Some(&p(C, 2)), Some(&p(A, 10))),
            Relation::Behind {
                checkpoints: 7 + 5 + 2
            }
        );
        // Forking again at a checkpoint past a lineage's end is refused.
        assert!(h.fork(&p(A, 18), "dddddddddddddddd").is_err());
        // A fork at an earlier lineage's checkpoint drops the lineages
        // after it from the new history.
        let h2 = h.fork(&p(A, 3), "dddddddddddddddd").unwrap();
        assert_eq!(h2.lineages().len(), 2);
    }

    #[test]
    fn malformed_histories_are_refused() {
        assert_eq!(History::from_lineages(vec![]), Err(HistoryError::Empty));
        assert!(History::start("short").is_err());
        let fork = |id: &str, from: Option<Point>| Lineage {
            id: id.into(),
            forked_from: from,
        };
        assert!(History::from_lineages(vec![fork(A, None), fork(B, None)]).is_err());
        assert!(History::from_lineages(vec![fork(A, None), fork(B, Some(p(C, 2)))]).is_err());
        assert!(History::from_lineages(vec![fork(A, None), fork(B, Some(p(A, 0)))]).is_err());
        assert!(History::from_lineages(vec![fork(A, None), fork(A, Some(p(A, 1)))]).is_err());
        assert!(History::from_lineages(vec![fork(A, None), fork(B, Some(p(A, 1)))]).is_ok());
    }
}
