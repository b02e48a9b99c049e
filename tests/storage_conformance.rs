//! Every storage backend passes the shared conformance suite.

use std::sync::Arc;

use bytes::Bytes;
use snapkeep::storage::conformance::run_all;
use snapkeep::storage::local::LocalStore;
use snapkeep::storage::memory::MemoryStore;
use snapkeep::storage::{PutMode, Storage, StorageError};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms() {
    run_all(Arc::new(MemoryStore::new())).await;
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
