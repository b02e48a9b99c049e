//! Every storage backend passes the shared conformance suite.

use std::sync::Arc;

use std::time::{Duration, Instant};

use bytes::Bytes;
use snapkeep::storage::conformance::{run_all, run_read_only};
use snapkeep::storage::counting::{CountingStore, RequestCounter};
use snapkeep::storage::faulty::{Fault, FaultyStore, Op, When};
use snapkeep::storage::guard::{ReadOnlyStore, ThrottledStore};
use snapkeep::storage::local::LocalStore;
use snapkeep::storage::memory::MemoryStore;
use snapkeep::storage::retry::RetryStore;
use snapkeep::storage::{PutMode, Storage, StorageError};

fn memory() -> Arc<dyn Storage> {
    Arc::new(MemoryStore::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms() {
    run_all(memory()).await;
}

/// The wrappers every repository's store goes through keep the port's
/// guarantees of the store they wrap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_retry_wrapper_conforms_and_hides_transient_failures() {
    run_all(Arc::new(RetryStore::new(memory()))).await;
    // Every kind of request fails now and then, before taking effect: the
    // retries make it invisible to the suite.
    let fault = |op, key_prefix: &str| Fault {
        op,
        key_prefix: key_prefix.into(),
        skip: 1,
        times: 2,
        when: When::Before,
        error: StorageError::Unavailable {
            detail: "injected transient failure".into(),
        },
    };
    let faults = vec![
        fault(Op::Put, "rt/"),
        fault(Op::Get, "range/"),
        fault(Op::Put, "race/"),
        fault(Op::List, "ls/"),
        fault(Op::Delete, "del/"),
        fault(Op::Head, "rt/"),
    ];
    let faulty = Arc::new(FaultyStore::new(memory(), faults));
    let retry = RetryStore::with_policy(faulty.clone(), 4, Duration::from_millis(1));
    run_all(Arc::new(retry)).await;
    assert_eq!(faulty.fired(), [2; 6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_counting_wrapper_conforms_and_counts() {
    let counter = Arc::new(RequestCounter::default());
    run_all(Arc::new(CountingStore::new(memory(), counter.clone()))).await;
    let stats = counter.stats();
    assert!(
        [
            stats.gets,
            stats.puts,
            stats.lists,
            stats.deletes,
            stats.heads
        ]
        .iter()
        .all(|n| *n > 0),
        "{stats:?}"
    );
    // The large object went up once and came back whole once.
    assert!(stats.bytes_sent > 21 << 20, "{stats:?}");
    assert!(stats.bytes_received > 21 << 20, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_throttled_wrapper_conforms_at_its_rate() {
    let rate = 256 << 20;
    let started = Instant::now();
    run_all(Arc::new(ThrottledStore::new(
        memory(),
        Some(rate),
        Some(rate),
    )))
    .await;
    // The large object alone is 21 MiB each way.
    let least = Duration::from_secs_f64(2.0 * (21 << 20) as f64 / rate as f64);
    assert!(started.elapsed() >= least, "{:?}", started.elapsed());
}

/// The read-only wrapper refuses writes, so the suite writes through the
/// store it wraps and reads through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_read_only_wrapper_reads_like_its_store_and_refuses_writes() {
    let inner = memory();
    run_read_only(Arc::new(ReadOnlyStore::new(inner.clone())), inner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    run_all(Arc::new(LocalStore::open(dir.path()).unwrap())).await;
}

/// Separate store instances on one folder behave like separate processes:
/// each has its own temp-file names and only the filesystem orders them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_create_only_has_one_winner_across_independent_stores() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..10 {
        let key = format!("index-{round}");
        let tasks: Vec<_> = (0..8u8)
            .map(|i| {
                let store = LocalStore::open(dir.path()).unwrap();
                let key = key.clone();
                tokio::spawn(async move {
                    (
                        i,
                        store
                            .put(&key, Bytes::from(vec![i; 100_000]), PutMode::Create)
                            .await,
                    )
                })
            })
            .collect();
        let mut winners = vec![];
        for t in tasks {
            match t.await.unwrap() {
                (i, Ok(())) => winners.push(i),
                (_, Err(StorageError::AlreadyExists { .. })) => {}
                (_, Err(e)) => panic!("{e}"),
            }
        }
        assert_eq!(winners.len(), 1);
        let store = LocalStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(&key, None).await.unwrap(),
            Bytes::from(vec![winners[0]; 100_000])
        );
    }
    // No temp files are left behind or listed.
    let store = LocalStore::open(dir.path()).unwrap();
    assert_eq!(store.list("").await.unwrap().len(), 10);
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".tmp-")));
}

#[test]
fn a_missing_local_root_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        LocalStore::open(&dir.path().join("nope")),
        Err(StorageError::NotFound { .. })
    ));
}
