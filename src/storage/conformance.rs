//! The conformance suite every storage backend must pass. Backends' tests
//! call [`run_all`] on a fresh, empty store; each check uses its own key
//! prefix. A failed check panics with what went wrong.
//!
//! Each check writes through one handle and reads through another, which
//! are the same store for [`run_all`]. A store that refuses writes (the
//! read-only wrapper) runs [`run_read_only`]: every check writes through
//! the store it wraps and reads through it, and its own writes must fail.

#![cfg(feature = "native")]

use std::sync::Arc;

use bytes::Bytes;

use super::{PutMode, Storage, StorageError};

/// Runs every check against `store` (which should start empty).
pub async fn run_all(store: Arc<dyn Storage>) {
    run_split(store.clone(), &*store).await;
}

/// Runs every check reading through `store`, which refuses writes, over
/// `writer` (the empty store it wraps), then checks that its writes fail
/// and change nothing.
pub async fn run_read_only(store: Arc<dyn Storage>, writer: Arc<dyn Storage>) {
    run_split(writer.clone(), &*store).await;
    writes_are_refused(&*store, &*writer).await;
}

/// Every check, writing through `w` and reading through `r`.
async fn run_split(w: Arc<dyn Storage>, r: &dyn Storage) {
    put_then_get_returns_the_same_bytes(&*w, r).await;
    head_and_get_of_missing_keys_are_not_found(r).await;
    ranged_gets_return_exactly_the_range(&*w, r).await;
    overwrite_replaces_the_object(&*w, r).await;
    create_refuses_an_existing_key(&*w, r).await;
    one_of_many_concurrent_creators_wins(w.clone(), r).await;
    list_returns_sorted_keys_under_a_prefix(&*w, r).await;
    delete_removes_and_is_idempotent(&*w, r).await;
    unsafe_keys_are_refused(&*w, r).await;
    concurrent_puts_are_all_visible(w.clone(), r).await;
    large_objects_round_trip(&*w, r).await;
    listings_carry_sizes_and_modification_times(&*w, r).await;
}

fn payload(len: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<_>>(),
    )
}

pub async fn put_then_get_returns_the_same_bytes(w: &dyn Storage, r: &dyn Storage) {
    for (key, len) in [
        ("rt/empty", 0),
        ("rt/small", 17),
        ("rt/deep/er/key", 3000),
        ("rt/big", 3 << 20),
    ] {
        let data = payload(len, 1);
        w.put(key, data.clone(), PutMode::Overwrite).await.unwrap();
        assert_eq!(r.get(key, None).await.unwrap(), data, "{key}");
        assert_eq!(r.head(key).await.unwrap().size, len as u64, "{key}");
    }
}

pub async fn head_and_get_of_missing_keys_are_not_found(r: &dyn Storage) {
    assert!(matches!(
        r.get("missing/x", None).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        r.head("missing/x").await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        r.get("missing/x", Some(0..1)).await,
        Err(StorageError::NotFound { .. })
    ));
}

pub async fn ranged_gets_return_exactly_the_range(w: &dyn Storage, r: &dyn Storage) {
    let data = payload(10_000, 2);
    w.put("range/obj", data.clone(), PutMode::Overwrite)
        .await
        .unwrap();
    let get = |range: std::ops::Range<u64>| r.get("range/obj", Some(range));
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

pub async fn overwrite_replaces_the_object(w: &dyn Storage, r: &dyn Storage) {
    w.put("ow/k", payload(100, 3), PutMode::Overwrite)
        .await
        .unwrap();
    w.put("ow/k", payload(50, 4), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(r.get("ow/k", None).await.unwrap(), payload(50, 4));
}

pub async fn create_refuses_an_existing_key(w: &dyn Storage, r: &dyn Storage) {
    w.put("cr/k", payload(10, 5), PutMode::Create)
        .await
        .unwrap();
    let again = w.put("cr/k", payload(20, 6), PutMode::Create).await;
    assert!(
        matches!(again, Err(StorageError::AlreadyExists { .. })),
        "{again:?}"
    );
    assert_eq!(
        r.get("cr/k", None).await.unwrap(),
        payload(10, 5),
        "loser must not change it"
    );
}

pub async fn one_of_many_concurrent_creators_wins(w: Arc<dyn Storage>, r: &dyn Storage) {
    for round in 0..5u8 {
        let key = format!("race/k{round}");
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let (w, key) = (w.clone(), key.clone());
                tokio::spawn(
                    async move { (i, w.put(&key, payload(4096, i), PutMode::Create).await) },
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
        assert_eq!(r.get(&key, None).await.unwrap(), payload(4096, winners[0]));
    }
}

pub async fn list_returns_sorted_keys_under_a_prefix(w: &dyn Storage, r: &dyn Storage) {
    for key in ["ls/b", "ls/a/2", "ls/a/1", "ls/ab", "lsx/other"] {
        w.put(key, payload(key.len(), 7), PutMode::Overwrite)
            .await
            .unwrap();
    }
    let keys =
        |v: Vec<super::ObjectMeta>| v.into_iter().map(|m| (m.key, m.size)).collect::<Vec<_>>();
    assert_eq!(
        keys(r.list("ls/").await.unwrap()),
        [
            ("ls/a/1".into(), 6),
            ("ls/a/2".into(), 6),
            ("ls/ab".into(), 5),
            ("ls/b".into(), 4)
        ]
    );
    assert_eq!(keys(r.list("ls/a/").await.unwrap()).len(), 2);
    assert_eq!(keys(r.list("ls/a").await.unwrap()).len(), 3);
    assert!(r.list("nothing-here/").await.unwrap().is_empty());
}

pub async fn delete_removes_and_is_idempotent(w: &dyn Storage, r: &dyn Storage) {
    w.put("del/k", payload(5, 8), PutMode::Overwrite)
        .await
        .unwrap();
    w.delete("del/k").await.unwrap();
    assert!(r.head("del/k").await.unwrap_err().is_not_found());
    w.delete("del/k").await.unwrap();
    w.delete("del/never-existed").await.unwrap();
    assert!(r.list("del/").await.unwrap().is_empty());
}

pub async fn unsafe_keys_are_refused(w: &dyn Storage, r: &dyn Storage) {
    for key in [
        "",
        "/abs",
        "a//b",
        "../escape",
        "a/../../b",
        "a/./b",
        "trailing/",
    ] {
        let put = w.put(key, payload(1, 9), PutMode::Overwrite).await;
        assert!(
            matches!(put, Err(StorageError::InvalidKey { .. })),
            "{key:?}: {put:?}"
        );
        assert!(
            matches!(r.get(key, None).await, Err(StorageError::InvalidKey { .. })),
            "{key:?}"
        );
    }
}

pub async fn concurrent_puts_are_all_visible(w: Arc<dyn Storage>, r: &dyn Storage) {
    let tasks: Vec<_> = (0..32u8)
        .map(|i| {
            let w = w.clone();
            tokio::spawn(async move {
                w.put(&format!("many/{i:02}"), payload(1000, i), PutMode::Create)
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let listed = r.list("many/").await.unwrap();
    assert_eq!(listed.len(), 32);
    for (i, m) in listed.iter().enumerate() {
        assert_eq!(r.get(&m.key, None).await.unwrap(), payload(1000, i as u8));
    }
}

/// Objects above the object-storage backends' multipart threshold (16 MiB)
/// go up in parts; they must read back whole and by ranges across parts.
pub async fn large_objects_round_trip(w: &dyn Storage, r: &dyn Storage) {
    let data = payload(21 << 20, 10);
    w.put("large/obj", data.clone(), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(r.head("large/obj").await.unwrap().size, data.len() as u64);
    assert!(r.get("large/obj", None).await.unwrap() == data);
    let across = (8 << 20) - 100..(8 << 20) + 100;
    assert_eq!(
        r.get("large/obj", Some(across.clone())).await.unwrap(),
        data.slice(across.start as usize..across.end as usize)
    );
    w.delete("large/obj").await.unwrap();
}

/// Cleanup keeps young objects, so every backend must say when an object was
/// last written, in milliseconds since the epoch; and `list("")` lists all.
pub async fn listings_carry_sizes_and_modification_times(w: &dyn Storage, r: &dyn Storage) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    w.put("times/a", payload(123, 11), PutMode::Overwrite)
        .await
        .unwrap();
    let listed = r.list("times/").await.unwrap();
    assert_eq!(listed.len(), 1);
    let head = r.head("times/a").await.unwrap();
    for meta in [&listed[0], &head] {
        assert_eq!(meta.size, 123);
        let m = meta.modified_ms.expect("a modification time");
        // Generous: the servers' clocks and second-granular times.
        assert!((m - now).abs() < 10 * 60 * 1000, "modified {m}, now {now}");
    }
    let all = r.list("").await.unwrap();
    assert!(all.iter().any(|m| m.key == "times/a"));
    assert!(all.iter().any(|m| m.key == "ls/a/1"));
    assert!(all.windows(2).all(|w| w[0].key < w[1].key), "sorted");
}

/// A store that refuses writes refuses every one, naming itself, and the
/// objects under it stay as they were.
pub async fn writes_are_refused(s: &dyn Storage, writer: &dyn Storage) {
    writer
        .put("ro/k", payload(10, 12), PutMode::Overwrite)
        .await
        .unwrap();
    for mode in [PutMode::Overwrite, PutMode::Create] {
        for key in ["ro/k", "ro/new"] {
            let put = s.put(key, payload(20, 13), mode).await;
            assert!(
                matches!(put, Err(StorageError::ReadOnly { .. })),
                "{key}: {put:?}"
            );
        }
    }
    let delete = s.delete("ro/k").await;
    assert!(
        matches!(delete, Err(StorageError::ReadOnly { .. })),
        "{delete:?}"
    );
    assert_eq!(s.get("ro/k", None).await.unwrap(), payload(10, 12));
    assert!(s.head("ro/new").await.unwrap_err().is_not_found());
}
