//! The repository layer's write side runs inside a multi-threaded tokio
//! runtime (as a server would run it): commits race and rebase, markers beat
//! on a clock the test moves, and nothing blocks or starts a runtime. So
//! does its read side's maintenance: check, verify and analyze.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;
use snapkeep::core::format::codec::ruzstd_decode;
use snapkeep::core::format::config::RepoConfig;
use snapkeep::core::format::index::IndexFile;
use snapkeep::core::format::keys;
use snapkeep::core::format::manifest::{Manifest, SnapshotState};
use snapkeep::core::format::root::RootChange;
use snapkeep::core::policy::inflight::Activity;
use snapkeep::error::Error;
use snapkeep::repo::check::ReadData;
use snapkeep::repo::clock::{Clock, ManualClock};
use snapkeep::repo::findings::FindingKind;
use snapkeep::repo::inflight::{scan, InFlight, HEARTBEAT};
use snapkeep::repo::writer::{self, RepoWriter};
use snapkeep::repo::RepoReader;
use snapkeep::storage::local::LocalStore;
use snapkeep::storage::memory::MemoryStore;
use snapkeep::storage::{PutMode, Storage};

fn manifest(name: &str) -> Manifest {
    Manifest {
        version: 1,
        snapshot: name.into(),
        uuid: format!("uuid-{name}"),
        state: SnapshotState::Success,
        start_time_in_millis: 1,
        end_time_in_millis: 2,
        indices: BTreeMap::new(),
        global_state: None,
        metadata: BTreeMap::new(),
        failures: Vec::new(),
    }
}

async fn new_repo(clock: Arc<ManualClock>) -> (Arc<dyn Storage>, RepoWriter) {
    let store: Arc<dyn Storage> = Arc::new(MemoryStore::new());
    let reader = writer::init(
        store.clone(),
        RepoConfig::new("test".into(), 0),
        ruzstd_decode,
    )
    .await
    .unwrap();
    (store, RepoWriter::new(reader, clock))
}

/// Writes a snapshot's manifest and commits it, the way every writer does.
async fn add_snapshot(writer: &RepoWriter, name: &str) -> Result<u64, Error> {
    let m = manifest(name);
    let mut summary = m.summary();
    summary.manifest = Some(writer.put_manifest(&m).await?);
    let base = writer.reader().root().await?.index_files;
    let change = RootChange::AddSnapshot {
        summary,
        index_file: Some(writer.put_index_file(&IndexFile::default()).await?),
        base_index_files: base,
        slot: None,
    };
    Ok(writer.commit(&change).await?.generation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_on_a_server_runtime_each_commit_once() {
    let clock = Arc::new(ManualClock::at(0));
    let (store, first) = new_repo(clock.clone()).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        // Each task is its own writer (its own caches), like separate
        // processes sharing one bucket.
        let reader = RepoReader::open(store.clone(), ruzstd_decode)
            .await
            .unwrap();
        let writer = RepoWriter::new(reader, clock.clone());
        tasks.push(tokio::spawn(async move {
            add_snapshot(&writer, &format!("snap-{i}")).await.unwrap()
        }));
    }
    let mut generations = Vec::new();
    for t in tasks {
        generations.push(t.await.unwrap());
    }
    generations.sort();
    assert_eq!(generations, (1..=8).collect::<Vec<u64>>());
    let root = first.reader().root().await.unwrap();
    assert_eq!(root.generation, 8);
    assert_eq!(root.snapshots.len(), 8);
    for s in &root.snapshots {
        let m = first.reader().manifest(s).await.unwrap();
        assert_eq!(m.snapshot, s.snapshot);
    }
    let hint = store.get(keys::LATEST, None).await.unwrap();
    assert_eq!(&hint[..], b"8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_taken_meanwhile_is_refused_not_retried() {
    let (store, writer) = new_repo(Arc::new(ManualClock::at(0))).await;
    add_snapshot(&writer, "nightly").await.unwrap();
    let other = RepoWriter::new(
        RepoReader::open(store, ruzstd_decode).await.unwrap(),
        Arc::new(ManualClock::at(0)),
    );
    let err = add_snapshot(&other, "nightly").await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert_eq!(other.reader().root().await.unwrap().generation, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_refuses_to_commit_over_a_lost_root() {
    let (store, writer) = new_repo(Arc::new(ManualClock::at(0))).await;
    add_snapshot(&writer, "a").await.unwrap();
    add_snapshot(&writer, "b").await.unwrap();
    store.delete(&keys::root(2)).await.unwrap();
    let fresh = RepoWriter::new(
        RepoReader::open(store, ruzstd_decode).await.unwrap(),
        Arc::new(ManualClock::at(0)),
    );
    let err = add_snapshot(&fresh, "c").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::LostRoot {
                hinted: 2,
                newest: 1
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_the_storage_truncates_fails_before_anything_refers_to_it() {
    #[derive(Debug)]
    struct Truncating(MemoryStore);
    #[async_trait::async_trait]
    impl Storage for Truncating {
        fn location(&self) -> String {
            self.0.location()
        }
        fn capabilities(&self) -> snapkeep::storage::Capabilities {
            self.0.capabilities()
        }
        async fn get(
            &self,
            key: &str,
            range: Option<std::ops::Range<u64>>,
        ) -> snapkeep::storage::StorageResult<Bytes> {
            self.0.get(key, range).await
        }
        async fn put(
            &self,
            key: &str,
            data: Bytes,
            mode: PutMode,
        ) -> snapkeep::storage::StorageResult<()> {
            self.0.put(key, data.slice(..data.len() / 2), mode).await
        }
        async fn list(
            &self,
            prefix: &str,
        ) -> snapkeep::storage::StorageResult<Vec<snapkeep::storage::ObjectMeta>> {
            self.0.list(prefix).await
        }
        async fn delete(&self, key: &str) -> snapkeep::storage::StorageResult<()> {
            self.0.delete(key).await
        }
        async fn head(
            &self,
            key: &str,
        ) -> snapkeep::storage::StorageResult<snapkeep::storage::ObjectMeta> {
            self.0.head(key).await
        }
    }
    let store = Truncating(MemoryStore::new());
    let bytes = Bytes::from(vec![7u8; 1000]);
    let id = snapkeep::core::format::id::Id::of(&bytes);
    let err = writer::put_pack(&store, &id, bytes).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("storage kept 500 of the 1000 bytes"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_beat_on_the_given_clock_and_go_stale_without_it() {
    // The memory store stamps objects with the system clock, and a scan
    // counts that stamp as a sign of life too: start the clock there.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let clock = Arc::new(ManualClock::at(now));
    let (store, _) = new_repo(clock.clone()).await;
    let marker = InFlight::start(
        store.clone(),
        clock.clone(),
        Activity::Snapshot,
        "u1",
        "nightly",
        3,
    )
    .await
    .unwrap();
    let live = scan(store.as_ref(), clock.now_ms()).await.unwrap();
    assert_eq!(live.live.len(), 1);
    assert_eq!(live.oldest_snapshot_base(), Some(3));

    // Six silent minutes: others may soon take it for dead, so no commit.
    clock.advance(Duration::from_secs(6 * 60));
    let err = marker.ensure_fresh().unwrap_err();
    assert!(matches!(err, Error::Stalled { seconds: 360 }), "{err}");
    marker.beat().await;
    marker.ensure_fresh().unwrap();

    // Eleven minutes without a beat: the marker is stale to a scan.
    clock.advance(Duration::from_secs(11 * 60));
    let stale = scan(store.as_ref(), clock.now_ms()).await.unwrap();
    assert!(stale.live.is_empty());
    assert_eq!(stale.stale.len(), 1);

    marker.finish().await;
    let gone = scan(store.as_ref(), clock.now_ms()).await.unwrap();
    assert!(gone.live.is_empty() && gone.stale.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_refreshes_each_period_and_returns_when_stopped() {
    // The manual clock's sleep moves time instead of waiting, so each loop
    // of the heartbeat is one period later.
    let clock = Arc::new(ManualClock::at(0));
    let (store, _) = new_repo(clock.clone()).await;
    let marker = Arc::new(
        InFlight::start(
            store.clone(),
            clock.clone(),
            Activity::Delete,
            "u2",
            "old-*",
            0,
        )
        .await
        .unwrap(),
    );
    let (stop, stopped) = oneshot::channel();
    let beating = marker.clone();
    let sleep = clock.clone();
    let beat = tokio::spawn(async move { beating.heartbeat(sleep.as_ref(), stopped).await });
    // Wait until the heartbeat has run a few periods on the moved clock.
    while clock.now_ms() < 3 * HEARTBEAT.as_millis() as i64 {
        tokio::task::yield_now().await;
    }
    stop.send(()).unwrap();
    beat.await.unwrap();
    let stored = store.get(&keys_inflight("u2"), None).await.unwrap();
    let m: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    assert!(m["heartbeat_ms"].as_i64().unwrap() >= 2 * HEARTBEAT.as_millis() as i64);
    marker.ensure_fresh().unwrap();
}

fn keys_inflight(uuid: &str) -> String {
    snapkeep::core::policy::inflight::key(uuid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_runs_on_a_server_runtime_under_its_marker() {
    let clock = Arc::new(ManualClock::at(0));
    let (store, writer) = new_repo(clock.clone()).await;
    for name in ["keep-1", "old-1", "old-2"] {
        add_snapshot(&writer, name).await.unwrap();
    }
    let patterns = vec!["old-*".to_string()];
    let delete = snapkeep::repo::delete::Delete {
        writer: &writer,
        control: store.clone(),
        clock: clock.clone(),
        sleep: clock.as_ref(),
        uuid: "delete-1",
        patterns: &patterns,
        tight: false,
    };
    let out = delete.run().await.unwrap();
    assert_eq!(out.deleted, ["old-1", "old-2"]);
    let root = writer.reader().root().await.unwrap();
    let left: Vec<&str> = root.snapshots.iter().map(|s| s.snapshot.as_str()).collect();
    assert_eq!(left, ["keep-1"]);
    // The deleted manifests are gone and the marker was removed.
    assert!(store
        .get(&keys::manifest("uuid-old-1"), None)
        .await
        .is_err());
    assert!(store.list("inflight/").await.unwrap().is_empty());

    let missing = vec!["old-*".to_string()];
    let again = snapkeep::repo::delete::Delete {
        patterns: &missing,
        uuid: "delete-2",
        ..delete
    };
    let err = again.run().await.unwrap_err();
    assert!(matches!(err, Error::SnapshotMissing(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_runs_on_a_server_runtime_and_judges_age_by_the_time_given() {
    let (store, writer) = new_repo(Arc::new(ManualClock::at(0))).await;
    let stray = keys::pack(&snapkeep::core::format::id::Id::of(
        b"left by a killed snapshot",
    ));
    store
        .put(&stray, Bytes::from_static(b"stray"), PutMode::Create)
        .await
        .unwrap();
    // The stray pack must predate the newest root by more than the
    // whole-second rounding cleanup allows for: anything written after the
    // newest root is kept whatever its age.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    add_snapshot(&writer, "kept").await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let grace = Duration::from_secs(3600);
    let cleanup = snapkeep::repo::cleanup::cleanup;

    // Within the grace period the stray pack is young and kept.
    let young = cleanup(writer.reader(), false, now, grace, false)
        .await
        .unwrap();
    assert_eq!((young.objects, young.kept_young), (0, 1));
    // Two hours later it is removed; what the root references stays.
    let later = now + 2 * 3600 * 1000;
    let old = cleanup(writer.reader(), false, later, grace, false)
        .await
        .unwrap();
    assert_eq!(old.keys, vec![stray.clone()]);
    assert!(store.head(&stray).await.is_err());
    let root = writer.reader().root().await.unwrap();
    writer.reader().manifest(&root.snapshots[0]).await.unwrap();
    // A read-only repository refuses, unless it is a dry run.
    assert!(cleanup(writer.reader(), true, later, grace, false)
        .await
        .is_err());
    cleanup(writer.reader(), true, later, grace, true)
        .await
        .unwrap();
}

/// Runs each CPU job on a thread of its own, as a server's pool would
/// (off the runtime's threads), counting them.
#[derive(Debug, Default)]
struct Threads {
    jobs: std::sync::atomic::AtomicUsize,
}

impl snapkeep::repo::cpu::Cpu for Threads {
    fn spawn(&self, job: snapkeep::repo::cpu::Job) {
        self.jobs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::thread::spawn(job);
    }
}

/// Counts the bytes a step reports.
#[derive(Debug, Default)]
struct Counted {
    total: std::sync::atomic::AtomicU64,
    done: std::sync::atomic::AtomicU64,
    finished: std::sync::atomic::AtomicBool,
}

impl snapkeep::repo::progress::Progress for Counted {
    fn start(&self, total: u64) {
        self.total.store(total, std::sync::atomic::Ordering::SeqCst);
    }
    fn advance(&self, bytes: u64) {
        self.done
            .fetch_add(bytes, std::sync::atomic::Ordering::SeqCst);
    }
    fn finish(&self) {
        self.finished
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Checks on a spawned task of the server runtime (so the future must be
/// `Send`), with blobs hashed on [`Threads`].
async fn check_on_server(
    reader: &RepoReader,
    read_data: ReadData,
) -> (
    snapkeep::repo::check::CheckReport,
    Arc<Threads>,
    Arc<Counted>,
) {
    let (reader, cpu, progress) = (
        reader.clone(),
        Arc::new(Threads::default()),
        Arc::new(Counted::default()),
    );
    let (c, p) = (cpu.clone(), progress.clone());
    let report = tokio::spawn(async move {
        let check = snapkeep::repo::Check {
            reader: &reader,
            read_data,
            clock: &ManualClock::at(0),
            cpu: c.as_ref(),
            progress: p.as_ref(),
            salt: b"salt",
        };
        check.run().await
    })
    .await
    .unwrap()
    .unwrap();
    (report, cpu, progress)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_runs_on_a_server_runtime_and_reading_data_finds_a_damaged_pack() {
    use std::sync::atomic::Ordering::SeqCst;
    // A real repository, written by the real binary.
    let (_t, src, repo, _) = common::scene();
    common::init(&repo);
    common::write(&src.join("logs/victim.bin"), &common::noise(2 << 20, 5));
    common::write(&src.join("logs/small.txt"), b"hello");
    common::ok(&[
        "snapshot",
        "create",
        common::s(&repo),
        "s1",
        "--source",
        common::s(&src),
    ]);
    let store: Arc<dyn Storage> = Arc::new(LocalStore::open(&repo).unwrap());
    let reader = RepoReader::open(store, ruzstd_decode).await.unwrap();

    let (clean, cpu, _) = check_on_server(&reader, ReadData::All).await;
    assert!(clean.is_ok(), "{:?}", clean.findings);
    assert_eq!((clean.generation, clean.snapshots), (1, 1));
    assert!(clean.blobs > 0 && clean.trees_checked > 0);
    assert_eq!(clean.packs_read, clean.packs);
    assert_eq!(cpu.jobs.load(SeqCst), clean.packs);

    // The data pack is the big one; flip a byte in the middle of it.
    let pack = common::pack_files(&repo)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&pack, &bytes).unwrap();

    // Structure alone cannot see it and reads no pack.
    let (structure, cpu, progress) = check_on_server(&reader, ReadData::None).await;
    assert!(structure.is_ok(), "{:?}", structure.findings);
    assert_eq!((structure.packs_read, cpu.jobs.load(SeqCst)), (0, 0));
    assert!(!progress.finished.load(SeqCst));

    // Reading the data names the pack and the file the bad blob breaks.
    let (damaged, _, progress) = check_on_server(&reader, ReadData::All).await;
    let kinds: Vec<FindingKind> = damaged.findings.iter().map(|f| f.kind).collect();
    assert!(kinds.contains(&FindingKind::PackHashMismatch), "{kinds:?}");
    let blob = damaged
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::BlobDamaged)
        .expect("the flipped byte's blob is named");
    assert_eq!(blob.snapshots, vec!["s1".to_string()]);
    let paths: Vec<(&str, &str)> = blob
        .files
        .iter()
        .map(|f| (f.index.as_str(), f.path.as_str()))
        .collect();
    assert_eq!(paths, vec![("logs", "victim.bin")]);
    assert_eq!(damaged.damaged().len(), 1);
    // Progress saw every byte read, and the step's end.
    assert_eq!(progress.total.load(SeqCst), damaged.bytes_read);
    assert_eq!(progress.done.load(SeqCst), damaged.bytes_read);
    assert!(progress.finished.load(SeqCst));
}

/// Claims every delete worked and forgets none of them.
#[derive(Debug)]
struct KeepsDeleted(MemoryStore);

#[async_trait::async_trait]
impl Storage for KeepsDeleted {
    fn location(&self) -> String {
        self.0.location()
    }
    fn capabilities(&self) -> snapkeep::storage::Capabilities {
        self.0.capabilities()
    }
    async fn get(
        &self,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> snapkeep::storage::StorageResult<Bytes> {
        self.0.get(key, range).await
    }
    async fn put(
        &self,
        key: &str,
        data: Bytes,
        mode: PutMode,
    ) -> snapkeep::storage::StorageResult<()> {
        self.0.put(key, data, mode).await
    }
    async fn list(
        &self,
        prefix: &str,
    ) -> snapkeep::storage::StorageResult<Vec<snapkeep::storage::ObjectMeta>> {
        self.0.list(prefix).await
    }
    async fn delete(&self, _: &str) -> snapkeep::storage::StorageResult<()> {
        Ok(())
    }
    async fn head(
        &self,
        key: &str,
    ) -> snapkeep::storage::StorageResult<snapkeep::storage::ObjectMeta> {
        self.0.head(key).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_analyze_probe_a_real_store_on_a_server_runtime() {
    let (_t, _, repo, _) = common::scene();
    common::init(&repo);
    let store: Arc<dyn Storage> = Arc::new(LocalStore::open(&repo).unwrap());
    let reader = RepoReader::open(store.clone(), ruzstd_decode)
        .await
        .unwrap();
    // On a spawned task, as an axum handler runs: the futures are `Send`.
    let probes = tokio::spawn(async move {
        let clock = ManualClock::at(0);
        snapkeep::repo::verify(&reader, &clock, "run-1")
            .await
            .unwrap();
        snapkeep::repo::analyze(&reader, &clock, "run-1").await
    })
    .await
    .unwrap();
    let names: Vec<&str> = probes.iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "read-after-write",
            "list-after-write",
            "range-reads",
            "create-only-conflicts",
            "large-upload",
            "delete"
        ]
    );
    assert!(probes.iter().all(|p| p.ok), "{probes:?}");
    // Every probe removed what it wrote.
    assert!(store.list("verify/").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_analyze_report_a_store_that_keeps_deleted_objects() {
    let store: Arc<dyn Storage> = Arc::new(KeepsDeleted(MemoryStore::new()));
    let reader = writer::init(store, RepoConfig::new("test".into(), 0), ruzstd_decode)
        .await
        .unwrap();
    let clock = ManualClock::at(0);

    let err = snapkeep::repo::verify(&reader, &clock, "run-1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ProbeMisbehaved {
                read_back: true,
                listed: true,
                deleted: false
            }
        ),
        "{err}"
    );
    let probes = snapkeep::repo::analyze(&reader, &clock, "run-2").await;
    let failed: Vec<(&str, &str)> = probes
        .iter()
        .filter(|p| !p.ok)
        .map(|p| (p.name, p.detail.as_str()))
        .collect();
    // Each create-only round has a key of its own, so only the delete
    // probe sees the kept object.
    assert_eq!(failed, vec![("delete", "object still there after delete")]);
}

/// A reader keeping its index (a follower's between applies, a leader's
/// between delta requests) merges a root's index once: with the index
/// files gone, the same root still reads from it, where a reader that
/// does not keep it cannot. A commit that adds an index file is read
/// with its blobs.
#[test]
fn a_kept_reader_merges_each_roots_index_once() {
    use snapkeep::native::location::Location;
    use snapkeep::native::repo::Repo;

    let (_t, src, repo_dir, _) = common::scene();
    common::write(&src.join("logs/a"), &common::noise(300_000, 1));
    common::init(&repo_dir);
    let snapshot = |name: &str| {
        common::ok(&[
            "snapshot",
            "create",
            common::s(&repo_dir),
            name,
            "--source",
            common::s(&src),
        ])
    };
    snapshot("s1");
    let location = Location::Local(repo_dir.clone());
    let kept = Repo::open(&location).unwrap().keeping_index();
    let plain = Repo::open(&location).unwrap();
    let (_, first) = kept.root_and_index().unwrap();
    plain.root_and_index().unwrap();

    let (index, aside) = (repo_dir.join("index"), repo_dir.join("index-aside"));
    std::fs::rename(&index, &aside).unwrap();
    std::fs::create_dir(&index).unwrap();
    let (_, again) = kept.root_and_index().unwrap();
    assert_eq!(again.blob_count(), first.blob_count());
    // A reader that does not keep it (the default) reads them again.
    assert!(
        plain.root_and_index().is_err(),
        "the index files are needed"
    );
    std::fs::remove_dir(&index).unwrap();
    std::fs::rename(&aside, &index).unwrap();

    common::write(&src.join("logs/b"), &common::noise(300_000, 2));
    snapshot("s2");
    let (root, after) = kept.root_and_index().unwrap();
    assert!(after.blob_count() > first.blob_count());
    assert_eq!(root.snapshots.len(), 2);
}
