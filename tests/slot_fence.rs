//! A lifecycle slot commits once, whatever the nodes do: two writers that
//! run the same slot (in threads, each with its own repository handle, on
//! a local folder and on S3) commit one snapshot between them, the other
//! gets `Error::SlotTaken`; a stale slot is refused after a newer one
//! committed; and the repository checks clean. The claims around it
//! (`repo::slot_claims`) are driven on a clock the test moves.

mod common;

use std::path::Path;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use snapkeep::core::format::codec::ruzstd_decode;
use snapkeep::core::format::config::RepoConfig;
use snapkeep::core::format::root::SlotFence;
use snapkeep::core::policy::hooks::{HookFailure, Stage};
use snapkeep::core::policy::selection::Selection;
use snapkeep::core::slm::claims::{
    claim_key, Handled, Release, BEAT_EVERY_MS, POLL_EVERY_MS, TAKEOVER_AFTER_MS,
};
use snapkeep::error::Error;
use snapkeep::native::backup::hooks::IndexHooks;
use snapkeep::native::backup::{create_snapshot, SnapshotOptions, SnapshotOutcome};
use snapkeep::native::location::Location;
use snapkeep::native::repo::Repo;
use snapkeep::repo::clock::{Clock, ManualClock};
use snapkeep::repo::slot_claims::{with_claim, Attempt, SlotClaimer, Turn};
use snapkeep::repo::writer;
use snapkeep::storage::memory::MemoryStore;
use snapkeep::storage::{PutMode, Storage};

const SLOT: i64 = 1_767_225_600_000;

fn fence(slot_ms: i64, epoch: u64) -> SlotFence {
    SlotFence {
        policy: "nightly".into(),
        slot_ms,
        epoch,
    }
}

fn opts(name: &str, src: &Path, slot: SlotFence) -> SnapshotOptions {
    SnapshotOptions {
        name: name.into(),
        source: src.to_path_buf(),
        selection: Selection::all(),
        slot: Some(slot),
        ..Default::default()
    }
}

fn source(src: &Path) {
    for i in 0..20 {
        write(&src.join(format!("idx/f{i:02}")), &noise(64 << 10, i));
    }
}

fn is_slot_taken(r: &Result<SnapshotOutcome, Error>, slot_ms: i64) -> bool {
    matches!(r, Err(Error::SlotTaken { policy, slot_ms: s, .. }) if policy == "nightly" && *s == slot_ms)
}

/// Stops a snapshot inside its read (after it read the root) until told.
#[derive(Debug)]
struct Gate {
    entered: Mutex<Option<Sender<()>>>,
    open: Mutex<Receiver<()>>,
}

impl IndexHooks for Gate {
    fn run(&self, stage: Stage, _index: &str, _path: &Path) -> Result<(), HookFailure> {
        if stage == Stage::Before {
            if let Some(tx) = self.entered.lock().unwrap().take() {
                tx.send(()).unwrap();
            }
            let _ = self.open.lock().unwrap().recv();
        }
        Ok(())
    }
}

/// The races and refusals, on the repository `location` names.
fn fence_holds(location: &Location, src: &Path) {
    source(src);
    Repo::init(location, RepoConfig::new("fence".into(), 0)).unwrap();
    let open = || Repo::open(location).unwrap();

    // A writer that read the root before the other committed the slot is
    // refused at its commit (not before: the slot was free when it began).
    let (entered_tx, entered) = channel();
    let (open_tx, open_rx) = channel();
    let gate = Arc::new(Gate {
        entered: Mutex::new(Some(entered_tx)),
        open: Mutex::new(open_rx),
    });
    let late = {
        let (repo, src) = (open(), src.to_path_buf());
        let mut o = opts("late", &src, fence(SLOT, 1));
        o.hooks = Some(gate);
        thread::spawn(move || create_snapshot(&repo, &o))
    };
    entered.recv().unwrap();
    create_snapshot(&open(), &opts("first", src, fence(SLOT, 2))).unwrap();
    open_tx.send(()).unwrap();
    let late = late.join().unwrap();
    assert!(is_slot_taken(&late, SLOT), "{late:?}");

    // Free-running races: one of each pair commits.
    for round in 1..=3_i64 {
        let slot = SLOT + round * 60_000;
        let start = Arc::new(Barrier::new(2));
        let racers: Vec<_> = ["a", "b"]
            .iter()
            .enumerate()
            .map(|(i, who)| {
                let (repo, src, start) = (open(), src.to_path_buf(), start.clone());
                let o = opts(&format!("r{round}-{who}"), &src, fence(slot, i as u64 + 1));
                thread::spawn(move || {
                    start.wait();
                    create_snapshot(&repo, &o)
                })
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        let won = results.iter().filter(|r| r.is_ok()).count();
        let refused = results.iter().filter(|r| is_slot_taken(r, slot)).count();
        assert_eq!((won, refused), (1, 1), "round {round}: {results:?}");
    }

    // A stale slot is refused once a newer one committed; newer ones pass.
    let newest = SLOT + 3 * 60_000;
    let stale = create_snapshot(&open(), &opts("stale", src, fence(newest - 60_000, 9)));
    assert!(is_slot_taken(&stale, newest - 60_000), "{stale:?}");
    create_snapshot(&open(), &opts("next", src, fence(newest + 60_000, 1))).unwrap();

    let root = open().root().unwrap();
    let names: Vec<_> = root.snapshots.iter().map(|s| s.snapshot.as_str()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(names.contains(&"first") && !names.contains(&"late") && !names.contains(&"stale"));
    let record = root.slm_slots["nightly"];
    assert_eq!((record.slot_ms, record.epoch), (newest + 60_000, 1));
}

/// Claims and a policy record, as nodes leave them: cleanup must keep them.
fn plant_slm_objects(location: &Location) -> Vec<String> {
    let repo = Repo::open(location).unwrap();
    let store = repo.reader().store.clone();
    let keys = vec![
        claim_key("nightly", SLOT, 1),
        claim_key("nightly", SLOT + 60_000, 2),
        "slm/policies/nightly".to_string(),
    ];
    for k in &keys {
        let put = store.put(k, bytes::Bytes::from_static(b"{}"), PutMode::Create);
        snapkeep::native::runtime::block_on(put).unwrap();
    }
    keys
}

fn slm_keys(location: &Location) -> Vec<String> {
    let repo = Repo::open(location).unwrap();
    let list = repo.reader().store.list("slm/");
    let listed = snapkeep::native::runtime::block_on(list).unwrap();
    listed.into_iter().map(|m| m.key).collect()
}

#[test]
fn a_slot_commits_once_on_a_local_repository() {
    let (_t, src, repo, _) = scene();
    let location = Location::Local(repo.clone());
    fence_holds(&location, &src);
    let planted = plant_slm_objects(&location);
    ok(&["repo", "check", s(&repo), "--read-data"]);
    ok(&["repo", "cleanup", s(&repo), "--grace", "0s"]);
    let mut left = slm_keys(&location);
    left.sort();
    let mut want = planted;
    want.sort();
    assert_eq!(left, want);
    ok(&["repo", "check", s(&repo), "--read-data"]);
}

#[test]
fn a_slot_commits_once_on_s3() {
    let server = common::servers::moto();
    common::servers::create_bucket(server.port, "fence");
    let (_t, src, _, _) = scene();
    let url = "s3://fence/repo";
    let location = Location::parse_with(url, &common::servers::s3_options(server.port)).unwrap();
    fence_holds(&location, &src);
    let planted = plant_slm_objects(&location);
    let env = common::servers::s3_env(server.port);
    ok_env(&env, &["repo", "check", url, "--read-data"]);
    ok_env(&env, &["repo", "cleanup", url, "--grace", "0s"]);
    assert_eq!(slm_keys(&location).len(), planted.len());
    ok_env(&env, &["repo", "check", url, "--read-data"]);
}

// The claims, on a memory repository and clocks the test moves.

fn summary(name: &str) -> snapkeep::core::format::manifest::SnapshotSummary {
    use snapkeep::core::format::manifest::{SnapshotState, SnapshotSummary};
    SnapshotSummary {
        snapshot: name.into(),
        uuid: format!("uuid-{name}"),
        state: SnapshotState::Success,
        start_time_in_millis: 0,
        end_time_in_millis: 0,
        indices: vec![],
        include_global_state: false,
        size_in_bytes: 0,
        new_bytes: 0,
        new_stored_bytes: 0,
        files: 0,
        failures: 0,
        manifest: None,
        policy: Some("nightly".into()),
    }
}

async fn memory_reader() -> snapkeep::repo::RepoReader {
    let store: Arc<dyn Storage> = Arc::new(MemoryStore::new());
    writer::init(store, RepoConfig::new("claims".into(), 0), ruzstd_decode)
        .await
        .unwrap()
}

fn node(reader: &snapkeep::repo::RepoReader, clock: &Arc<ManualClock>, name: &str) -> SlotClaimer {
    SlotClaimer::new(reader.clone(), clock.clone(), name)
}

async fn look(
    n: &SlotClaimer,
    watching: &mut Option<snapkeep::core::slm::claims::Observation>,
) -> Attempt {
    n.try_claim("nightly", SLOT, watching).await.unwrap()
}

#[tokio::test]
async fn a_silent_holder_is_taken_over_whatever_the_clocks_say() {
    let reader = memory_reader().await;
    // Node b's clock is an hour ahead of a's; only its own rate matters.
    let (clock_a, clock_b) = (
        Arc::new(ManualClock::at(SLOT)),
        Arc::new(ManualClock::at(SLOT + 3_600_000)),
    );
    let (a, b) = (
        node(&reader, &clock_a, "a/1"),
        node(&reader, &clock_b, "b/1"),
    );
    let Attempt::Turn(Turn::Mine(held)) = look(&a, &mut None).await else {
        panic!("the first look claims the slot")
    };
    assert_eq!(held.fence(), fence(SLOT, 1));
    // While a beats, b waits, however long.
    let mut watching = None;
    for _ in 0..20 {
        assert!(matches!(
            look(&b, &mut watching).await,
            Attempt::Wait { .. }
        ));
        held.beat().await;
        clock_b.advance(Duration::from_millis(POLL_EVERY_MS as u64));
    }
    // a stops beating: b takes over once it saw no change for the timeout.
    let mut looks = 0;
    let taken = loop {
        match look(&b, &mut watching).await {
            Attempt::Turn(Turn::Mine(c)) => break c,
            Attempt::Wait { at_ms } => {
                looks += 1;
                clock_b.advance(Duration::from_millis((at_ms - clock_b.now_ms()) as u64));
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(taken.epoch(), 2);
    assert!(
        looks as i64 <= TAKEOVER_AFTER_MS / POLL_EVERY_MS + 1,
        "{looks}"
    );
    // a learns it lost at its next beat and stops beating.
    held.beat().await;
    assert!(held.is_lost());
    let before = reader
        .store
        .get(&claim_key("nightly", SLOT, 1), None)
        .await
        .unwrap();
    held.beat().await;
    let after = reader
        .store
        .get(&claim_key("nightly", SLOT, 1), None)
        .await
        .unwrap();
    assert_eq!(before, after);
    assert!(!taken.is_lost());
}

#[tokio::test]
async fn a_failed_run_ends_the_slot_and_an_abandoned_one_is_taken_at_once() {
    let reader = memory_reader().await;
    let clock = Arc::new(ManualClock::at(SLOT));
    let (a, b) = (node(&reader, &clock, "a/1"), node(&reader, &clock, "b/1"));
    let Attempt::Turn(Turn::Mine(held)) = look(&a, &mut None).await else {
        panic!()
    };
    held.release(Release::Abandoned).await.unwrap();
    let Attempt::Turn(Turn::Mine(taken)) = look(&b, &mut None).await else {
        panic!("an abandoned claim is taken over without waiting")
    };
    let failed: Result<(), Error> = Err(Error::Aborted("snapshot"));
    taken.finish(&failed).await;
    assert!(matches!(
        look(&a, &mut None).await,
        Attempt::Turn(Turn::Done(Handled::Failed { epoch: 2 }))
    ));
}

#[tokio::test]
async fn claim_run_release_commits_the_slot_and_cleans_older_claims() {
    let reader = memory_reader().await;
    let clock = Arc::new(ManualClock::at(SLOT));
    let writer = snapkeep::repo::RepoWriter::new(reader.clone(), clock.clone());
    let n = node(&reader, &clock, "a/1");
    // An older slot's claim, left by a run that committed.
    let old = claim_key("nightly", SLOT - 60_000, 1);
    reader
        .store
        .put(&old, bytes::Bytes::from_static(b"{}"), PutMode::Create)
        .await
        .unwrap();
    let Turn::Mine(claim) = n.claim_slot("nightly", SLOT, clock.as_ref()).await.unwrap() else {
        panic!()
    };
    // The run beats beside the work; the commit carries the fence.
    let commit = async {
        clock.advance(Duration::from_millis(5 * BEAT_EVERY_MS as u64));
        let change = snapkeep::core::format::root::RootChange::AddSnapshot {
            summary: summary("nightly-1"),
            index_file: None,
            base_index_files: vec![],
            slot: Some(claim.fence()),
        };
        writer.commit(&change).await.map(|_| ())
    };
    let out = with_claim(&claim, clock.as_ref(), commit).await;
    claim.finish(&out).await;
    out.unwrap();
    // Every node now finds the slot done, and the older claim goes.
    let done = n.claim_slot("nightly", SLOT, clock.as_ref()).await.unwrap();
    assert!(matches!(done, Turn::Done(Handled::Committed(r)) if r.slot_ms == SLOT));
    assert!(reader.store.head(&old).await.is_err());
    assert!(reader
        .store
        .head(&claim_key("nightly", SLOT, 1))
        .await
        .is_ok());
    assert_eq!(n.cleanup("nightly").await.unwrap(), 0);
    // A node that claims every slot (and so never finds one done) removes
    // the claims each commit superseded when it claims the next.
    let next_slot = SLOT + 60_000;
    let Turn::Mine(next) = n
        .claim_slot("nightly", next_slot, clock.as_ref())
        .await
        .unwrap()
    else {
        panic!()
    };
    let change = snapkeep::core::format::root::RootChange::AddSnapshot {
        summary: summary("nightly-2"),
        index_file: None,
        base_index_files: vec![],
        slot: Some(next.fence()),
    };
    writer.commit(&change).await.unwrap();
    let Turn::Mine(_third) = n
        .claim_slot("nightly", next_slot + 60_000, clock.as_ref())
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(reader
        .store
        .head(&claim_key("nightly", SLOT, 1))
        .await
        .is_err());
    assert!(reader
        .store
        .head(&claim_key("nightly", next_slot, 1))
        .await
        .is_ok());
}
