//! Which snapshots a request names once some are running: the node takes
//! snapshots in the background, and ES's get, status and delete APIs see
//! the running ones beside those in the repository (reference 3.3, 3.4,
//! 3.6). The node passes in the names of both kinds; these functions say
//! which of each a request selects, or which name is missing.
//!
//! A name is normally one or the other. It can be both for a moment: a
//! create accepted while a snapshot of that name was being committed fails
//! once it reads the root. The stored one is then the real one.

use super::errors::EsError;
use super::patterns::NamePatterns;
use crate::core::policy::selection::wildcard_match;

/// The running snapshots a get-snapshots request lists of one repository;
/// the stored ones are those `patterns.matches`, which the caller filters
/// while it reads the root (matching 10,000 names twice, or collecting and
/// looking them up, costs a listing more than the filter itself). A literal
/// name that is neither running nor stored is 404
/// `snapshot_missing_exception` unless `ignore_unavailable` (ES's
/// `SnapshotNamePredicate.requiredNames`). A name both running and stored
/// is the stored one.
pub fn listed_running<'a>(
    repo: &str,
    patterns: &NamePatterns,
    running: &[&'a str],
    stored: &[&str],
    ignore_unavailable: bool,
) -> Result<Vec<&'a str>, EsError> {
    if !ignore_unavailable {
        let known = |n: &str| running.contains(&n) || stored.contains(&n);
        if let Some(missing) = patterns.literal_names().into_iter().find(|n| !known(n)) {
            return Err(EsError::snapshot_missing(repo, missing));
        }
    }
    Ok(running
        .iter()
        .copied()
        .filter(|n| patterns.selects(n, true) && !stored.contains(n))
        .collect())
}

/// The names of a `_status` path: none for the paths without a list, and
/// none for `_all` alone (ES's `RestSnapshotsStatusAction`); names are
/// exact, no wildcards.
pub fn status_names(list: Option<&str>) -> Vec<&str> {
    match list {
        None => Vec::new(),
        Some(l) if l.eq_ignore_ascii_case("_all") => Vec::new(),
        Some(l) => {
            let mut names: Vec<&str> = Vec::new();
            for n in l.split(',').filter(|n| !n.is_empty()) {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            names
        }
    }
}

/// One snapshot a `_status` answer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPick<'a> {
    /// Live, from the running snapshot's progress.
    Running(&'a str),
    /// From the stored snapshot's manifest.
    Stored(&'a str),
}

/// What `_status` reports, in ES's order (`TransportSnapshotsStatusAction`):
/// without names every running snapshot; with names the running ones
/// named, then the stored ones named in the order given. A name that is
/// neither is 404 unless `ignore_unavailable`.
pub fn status_picks<'a>(
    repo: &str,
    names: &[&'a str],
    running: &[&'a str],
    stored: &[&'a str],
    ignore_unavailable: bool,
) -> Result<Vec<StatusPick<'a>>, EsError> {
    if names.is_empty() {
        return Ok(running.iter().map(|n| StatusPick::Running(n)).collect());
    }
    let is_stored = |n: &str| stored.contains(&n);
    let mut picks: Vec<StatusPick> = running
        .iter()
        .copied()
        .filter(|n| names.contains(n) && !is_stored(n))
        .map(StatusPick::Running)
        .collect();
    for &name in names {
        if is_stored(name) {
            picks.push(StatusPick::Stored(name));
        } else if !running.contains(&name) && !ignore_unavailable {
            return Err(EsError::snapshot_missing(repo, name));
        }
    }
    Ok(picks)
}

/// What a delete does: the running snapshots it aborts and the patterns
/// it hands the repository's delete.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeletePlan<'a> {
    pub abort: Vec<&'a str>,
    /// Empty: nothing stored to delete (the repository's delete is not
    /// run; it would call an empty selection missing).
    pub stored: Vec<String>,
}

/// Plans `DELETE /_snapshot/<repo>/<patterns>`: names and `*` patterns
/// select running and stored snapshots alike (ES's `deleteSnapshots`
/// aborts the running ones it matches). A literal name that is neither is
/// 404. With nothing running selected the patterns go to the repository's
/// delete unchanged, so its own rules (a selection matching nothing is
/// missing) stay in force.
pub fn delete_plan<'a>(
    repo: &str,
    patterns: &[String],
    running: &[&'a str],
    stored: &[&str],
) -> Result<DeletePlan<'a>, EsError> {
    let hits = |p: &str, names: &[&str]| names.iter().any(|n| wildcard_match(p, n));
    let abort: Vec<&str> = running
        .iter()
        .copied()
        .filter(|n| patterns.iter().any(|p| wildcard_match(p, n)))
        .collect();
    if abort.is_empty() {
        return Ok(DeletePlan {
            abort,
            stored: patterns.to_vec(),
        });
    }
    let mut to_store = Vec::new();
    for p in patterns {
        let literal = !p.contains('*');
        if literal && !running.contains(&p.as_str()) && !stored.contains(&p.as_str()) {
            return Err(EsError::snapshot_missing(repo, p));
        }
        if hits(p, stored) {
            to_store.push(p.clone());
        }
    }
    Ok(DeletePlan {
        abort,
        stored: to_store,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn strings(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn listings_see_running_snapshots_through_current_names_and_wildcards() {
        let running = ["live-1", "live-2"];
        let stored = ["old-1", "old-2"];
        let get = |list: &str| {
            let patterns = NamePatterns::parse(list);
            let live = listed_running("r", &patterns, &running, &stored, false)?;
            let kept: Vec<&str> = stored.into_iter().filter(|n| patterns.matches(n)).collect();
            Ok::<_, EsError>((live, kept))
        };
        assert_eq!(get("_current").unwrap(), (vec!["live-1", "live-2"], vec![]));
        let (live, kept) = get("_all").unwrap();
        assert_eq!((live.len(), kept.len()), (2, 2));
        assert_eq!(
            get("live-2,old-1").unwrap(),
            (vec!["live-2"], vec!["old-1"])
        );
        assert_eq!(get("*-1").unwrap(), (vec!["live-1"], vec!["old-1"]));
        let e = get("live-1,gone").unwrap_err();
        assert_eq!(e.kind, "snapshot_missing_exception");
        assert_eq!(e.reason, "[r:gone] is missing");
        let ignored = listed_running(
            "r",
            &NamePatterns::parse("gone,live-1"),
            &running,
            &stored,
            true,
        );
        assert_eq!(ignored.unwrap(), ["live-1"]);
    }

    #[test]
    fn a_name_both_running_and_stored_is_the_stored_one() {
        let l = listed_running("r", &NamePatterns::parse("_all"), &["s"], &["s"], false).unwrap();
        assert!(l.is_empty());
        let picks = status_picks("r", &["s"], &["s"], &["s"], false).unwrap();
        assert_eq!(picks, [StatusPick::Stored("s")]);
    }

    #[test]
    fn status_without_names_is_running_only_and_with_names_running_first() {
        assert!(status_names(None).is_empty());
        assert!(status_names(Some("_all")).is_empty());
        assert_eq!(status_names(Some("a,b,a")), ["a", "b"]);
        let running = ["live"];
        let stored = ["old-1", "old-2"];
        let none = status_picks("r", &[], &running, &stored, false).unwrap();
        assert_eq!(none, [StatusPick::Running("live")]);
        let named = status_picks("r", &["old-2", "live", "old-1"], &running, &stored, false);
        assert_eq!(
            named.unwrap(),
            [
                StatusPick::Running("live"),
                StatusPick::Stored("old-2"),
                StatusPick::Stored("old-1")
            ]
        );
        let e = status_picks("r", &["live", "gone"], &running, &stored, false).unwrap_err();
        assert_eq!(e.reason, "[r:gone] is missing");
        let skipped = status_picks("r", &["live", "gone"], &running, &stored, true).unwrap();
        assert_eq!(skipped, [StatusPick::Running("live")]);
        let idle = status_picks("r", &[], &[], &stored, false).unwrap();
        assert!(
            idle.is_empty(),
            "stored snapshots are not listed without names"
        );
    }

    #[test]
    fn deletes_abort_running_matches_and_keep_only_patterns_with_stored_matches() {
        let running = ["live-1", "live-2"];
        let stored = ["old-1"];
        let plan = |p: &[&str]| delete_plan("r", &strings(p), &running, &stored);
        let one = plan(&["live-1"]).unwrap();
        assert_eq!(one.abort, ["live-1"]);
        assert!(one.stored.is_empty(), "nothing stored to delete");
        let mixed = plan(&["live-2", "old-1"]).unwrap();
        assert_eq!(
            (mixed.abort, mixed.stored),
            (vec!["live-2"], strings(&["old-1"]))
        );
        let star = plan(&["*"]).unwrap();
        assert_eq!((star.abort.len(), star.stored), (2, strings(&["*"])));
        let only_live = plan(&["live-*", "x-*"]).unwrap();
        assert_eq!(only_live.abort.len(), 2);
        assert!(only_live.stored.is_empty());
        let e = plan(&["live-1", "gone"]).unwrap_err();
        assert_eq!(e.kind, "snapshot_missing_exception");
        // Nothing running selected: the patterns go on unchanged, and the
        // repository's delete judges them.
        let stored_only = plan(&["old-1", "gone-*"]).unwrap();
        assert!(stored_only.abort.is_empty());
        assert_eq!(stored_only.stored, strings(&["old-1", "gone-*"]));
        let idle = delete_plan("r", &strings(&["gone"]), &[], &stored).unwrap();
        assert_eq!(idle.stored, strings(&["gone"]));
    }
}
