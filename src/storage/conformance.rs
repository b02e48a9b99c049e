//! The conformance suite every storage backend must pass. Backends' tests
//! call [`run_all`] on a fresh, empty store; each check uses its own key
//! prefix. A failed check panics with what went wrong.

#![cfg(feature = "native")]

use std::sync::Arc;

use bytes::Bytes;

use super::{PutMode, Storage, StorageError};

/// Runs every check against `store` (which should start empty).
pub async fn run_all(store: Arc<dyn Storage>) {
    put_then_get_returns_the_same_bytes(&*store).await;
    head_and_get_of_missing_keys_are_not_found(&*store).await;
    ranged_gets_return_exactly_the_range(&*store).await;
    overwrite_replaces_the_object(&*store).await;
    create_refuses_an_existing_key(&*store).await;
    one_of_many_concurrent_creators_wins(store.clone()).await;
    list_returns_sorted_keys_under_a_prefix(&*store).await;
    delete_removes_and_is_idempotent(&*store).await;
    unsafe_keys_are_refused(&*store).await;
    concurrent_puts_are_all_visible(store.clone()).await;
    large_objects_round_trip(&*store).await;
    listings_carry_sizes_and_modification_times(&*store).await;
}

fn payload(len: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<_>>(),
    )
}

pub async fn put_then_get_returns_the_same_bytes(s: &dyn Storage) {
    for (key, len) in [
        ("rt/empty", 0),
        ("rt/small", 17),
        ("rt/deep/er/key", 3000),
        ("rt/big", 3 << 20),
    ] {
        let data = payload(len, 1);
        s.put(key, data.clone(), PutMode::Overwrite).await.unwrap();
        assert_eq!(s.get(key, None).await.unwrap(), data, "{key}");
        assert_eq!(s.head(key).await.unwrap().size, len as u64, "{key}");
    }
}

pub async fn head_and_get_of_missing_keys_are_not_found(s: &dyn Storage) {
    assert!(matches!(
        s.get("missing/x", None).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        s.head("missing/x").await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        s.get("missing/x", Some(0..1)).await,
        Err(StorageError::NotFound { .. })
    ));
}

pub async fn ranged_gets_return_exactly_the_range(s: &dyn Storage) {
    let data = payload(10_000, 2);
    s.put("range/obj", data.clone(), PutMode::Overwrite)
        .await
        .unwrap();
    let get = |r: std::ops::Range<u64>| s.get("range/obj", Some(r));
    assert_eq!(get(100..200).await.unwrap(), data.slice(100..200));
    assert_eq!(get(0..1).await.unwrap(), data.slice(0..1));
    assert_eq!(get(9_990..10_000).await.unwrap(), data.slice(9_990..));
    assert_eq!(
        get(9_990..20_000).await.unwrap(),
        data.slice(9_990..),
        "end past the object is cut"
    );
    assert_eq!(get(500..500).await.unwrap().len(), 0);
    assert!(matches!(
        get(10_001..10_002).await,
        Err(StorageError::InvalidRange { .. })
    ));
}

pub async fn overwrite_replaces_the_object(s: &dyn Storage) {
    s.put("ow/k", payload(100, 3), PutMode::Overwrite)
        .await
        .unwrap();
    s.put("ow/k", payload(50, 4), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(s.get("ow/k", None).await.unwrap(), payload(50, 4));
}

pub async fn create_refuses_an_existing_key(s: &dyn Storage) {
    s.put("cr/k", payload(10, 5), PutMode::Create)
        .await
        .unwrap();
    let again = s.put("cr/k", payload(20, 6), PutMode::Create).await;
    assert!(
        matches!(again, Err(StorageError::AlreadyExists { .. })),
        "{again:?}"
    );
    assert_eq!(
        s.get("cr/k", None).await.unwrap(),
        payload(10, 5),
        "loser must not change it"
    );
}

pub async fn one_of_many_concurrent_creators_wins(s: Arc<dyn Storage>) {
    for round in 0..5u8 {
        let key = format!("race/k{round}");
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let (s, key) = (s.clone(), key.clone());
                tokio::spawn(
                    async move { (i, s.put(&key, payload(4096, i), PutMode::Create).await) },
                )
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                (i, Ok(())) => winners.push(i),
                (_, Err(StorageError::AlreadyExists { .. })) => {}
                (_, Err(e)) => panic!("unexpected error in create race: {e}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "exactly one creator wins, got {winners:?}"
        );
        assert_eq!(s.get(&key, None).await.unwrap(), payload(4096, winners[0]));
    }
}

pub async fn list_returns_sorted_keys_under_a_prefix(s: &dyn Storage) {
    for key in ["ls/b", "ls/a/2", "ls/a/1", "ls/ab", "lsx/other"] {
        s.put(key, payload(key.len(), 7), PutMode::Overwrite)
            .await
            .unwrap();
    }
    let keys =
        |v: Vec<super::ObjectMeta>| v.into_iter().map(|m| (m.key, m.size)).collect::<Vec<_>>();
    assert_eq!(
        keys(s.list("ls/").await.unwrap()),
        [
            ("ls/a/1".into(), 6),
            ("ls/a/2".into(), 6),
            ("ls/ab".into(), 5),
            ("ls/b".into(), 4)
        ]
    );
    assert_eq!(keys(s.list("ls/a/").await.unwrap()).len(), 2);
    assert_eq!(keys(s.list("ls/a").await.unwrap()).len(), 3);
    assert!(s.list("nothing-here/").await.unwrap().is_empty());
}

pub async fn delete_removes_and_is_idempotent(s: &dyn Storage) {
    s.put("del/k", payload(5, 8), PutMode::Overwrite)
        .await
        .unwrap();
    s.delete("del/k").await.unwrap();
    assert!(s.head("del/k").await.unwrap_err().is_not_found());
    s.delete("del/k").await.unwrap();
    s.delete("del/never-existed").await.unwrap();
    assert!(s.list("del/").await.unwrap().is_empty());
}

pub async fn unsafe_keys_are_refused(s: &dyn Storage) {
    for key in [
        "",
        "/abs",
        "a//b",
        "../escape",
        "a/../../b",
        "a/./b",
        "trailing/",
    ] {
        let r = s.put(key, payload(1, 9), PutMode::Overwrite).await;
        assert!(
            matches!(r, Err(StorageError::InvalidKey { .. })),
            "{key:?}: {r:?}"
        );
        assert!(
            matches!(s.get(key, None).await, Err(StorageError::InvalidKey { .. })),
            "{key:?}"
        );
    }
}

pub async fn concurrent_puts_are_all_visible(s: Arc<dyn Storage>) {
    let tasks: Vec<_> = (0..32u8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.put(&format!("many/{i:02}"), payload(1000, i), PutMode::Create)
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let listed = s.list("many/").await.unwrap();
    assert_eq!(listed.len(), 32);
    for (i, m) in listed.iter().enumerate() {
        assert_eq!(s.get(&m.key, None).await.unwrap(), payload(1000, i as u8));
    }
}

/// Objects above the object-storage backends' multipart threshold (16 MiB)
/// go up in parts; they must read back whole and by ranges across parts.
pub async fn large_objects_round_trip(s: &dyn Storage) {
    let data = payload(21 << 20, 10);
    s.put("large/obj", data.clone(), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(s.head("large/obj").await.unwrap().size, data.len() as u64);
    assert!(s.get("large/obj", None).await.unwrap() == data);
    let across = (8 << 20) - 100..(8 << 20) + 100;
    assert_eq!(
        s.get("large/obj", Some(across.clone())).await.unwrap(),
        data.slice(across.start as usize..across.end as usize)
    );
    s.delete("large/obj").await.unwrap();
}

/// Cleanup keeps young objects, so every backend must say when an object was
/// last written, in milliseconds since the epoch; and `list("")` lists all.
pub async fn listings_carry_sizes_and_modification_times(s: &dyn Storage) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    s.put("times/a", payload(123, 11), PutMode::Overwrite)
        .await
        .unwrap();
    let listed = s.list("times/").await.unwrap();
    assert_eq!(listed.len(), 1);
    let head = s.head("times/a").await.unwrap();
    for meta in [&listed[0], &head] {
        assert_eq!(meta.size, 123);
        let m = meta.modified_ms.expect("a modification time");
        // Generous: the servers' clocks and second-granular times.
        assert!((m - now).abs() < 10 * 60 * 1000, "modified {m}, now {now}");
    }
    let all = s.list("").await.unwrap();
    assert!(all.iter().any(|m| m.key == "times/a"));
    assert!(all.iter().any(|m| m.key == "ls/a/1"));
    assert!(all.windows(2).all(|w| w[0].key < w[1].key), "sorted");
}
