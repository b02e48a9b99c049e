//! Lazy reads of snapshot files through the bounded disk cache, against a
//! repository the real binary made: random reads return the source's
//! bytes, a chunk two snapshots share is cached once, a corrupted cache
//! entry is caught and fetched again, and the cache never holds more than
//! its bound plus its slack.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::servers::{create_bucket, moto, s3_env, s3_options};
use common::{noise, ok_env, s, scene, write};
use snapkeep::core::format::index::RepoIndex;
use snapkeep::core::format::tree::Node;
use snapkeep::core::lazy::reader::ReadAhead;
use snapkeep::native::decompressor::libzstd_decode;
use snapkeep::native::lazy::{DiskCache, LazyFile};
use snapkeep::repo::views::{locate, Located};
use snapkeep::repo::RepoReader;
use snapkeep::storage::local::LocalStore;
use snapkeep::storage::object::ObjectStorage;
use snapkeep::storage::Storage;

/// Largest chunk of the test repositories: the cache's slack.
const CHUNK_MAX: u64 = 256 * 1024;

/// A repository with small chunks and snapshots `snap-1` and `snap-2` of
/// index `data`; between them `big.bin` changes in its middle only.
/// Returns the source bytes of both versions.
fn two_snapshots(src: &Path, repo: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    two_snapshots_at(src, s(repo), &[])
}

/// [`two_snapshots`] in the repository at `url`, the binary run with `env`.
fn two_snapshots_at(
    src: &Path,
    repo: &str,
    env: &[(String, String)],
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    common::init_small_chunks(env, repo);
    let big = noise(3 * 1024 * 1024, 1);
    let text: Vec<u8> = (0..40_000)
        .flat_map(|i| format!("line {i} of a compressible log\n").into_bytes())
        .collect();
    write(&src.join("data/big.bin"), &big);
    write(&src.join("data/logs/text.log"), &text);
    ok_env(
        env,
        &["snapshot", "create", repo, "snap-1", "--source", s(src)],
    );
    let mut big2 = big.clone();
    big2[1_500_000..1_500_100].copy_from_slice(&[7u8; 100]);
    write(&src.join("data/big.bin"), &big2);
    ok_env(
        env,
        &["snapshot", "create", repo, "snap-2", "--source", s(src)],
    );
    (big, big2, text)
}

async fn open_repo(repo: &Path) -> (RepoReader, RepoIndex) {
    open_store(Arc::new(LocalStore::open(repo).unwrap())).await
}

async fn open_store(store: Arc<dyn Storage>) -> (RepoReader, RepoIndex) {
    let reader = RepoReader::open(store, libzstd_decode).await.unwrap();
    let (_, index) = reader.root_and_index().await.unwrap();
    (reader, index)
}

async fn node(reader: &RepoReader, index: &RepoIndex, snapshot: &str, path: &str) -> Node {
    let root = reader.root().await.unwrap();
    let manifest = reader
        .manifest(root.snapshot(snapshot).unwrap())
        .await
        .unwrap();
    match locate(reader, index, &manifest, "data", path)
        .await
        .unwrap()
    {
        Located::Entry(n) => n,
        Located::Dir(_) => panic!("{path} is a folder"),
    }
}

/// The cache's entries (not partial writes).
fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for sub in fs::read_dir(dir).unwrap() {
        for f in fs::read_dir(sub.unwrap().path()).unwrap() {
            let path = f.unwrap().path();
            if path.extension().is_none() {
                files.push(path);
            }
        }
    }
    files
}

/// Random reads (some continuing the last, most anywhere), each compared
/// with the source, the cache's bound checked after each.
async fn random_reads(file: &LazyFile, cache: &DiskCache, data: &[u8], seed: u64, count: usize) {
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut at = 0u64;
    for _ in 0..count {
        let r = next();
        let offset = if r % 3 == 0 {
            at
        } else {
            next() % (data.len() as u64 + 100)
        };
        let len = 1 + next() % 200_000;
        let bytes = file.read_at(offset, len).await.unwrap();
        let from = (offset as usize).min(data.len());
        let to = ((offset + len) as usize).min(data.len());
        assert!(bytes[..] == data[from..to], "bytes {offset}+{len} differ");
        assert!(
            cache.total() <= cache.limit(),
            "{} > {}",
            cache.total(),
            cache.limit()
        );
        at = to as u64;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_reads_through_a_small_cache_return_the_source_bytes() {
    let (_t, src, repo, dst) = scene();
    let (big, big2, text) = two_snapshots(&src, &repo);
    let (reader, index) = open_repo(&repo).await;
    let cache = Arc::new(DiskCache::open(&dst.join("cache"), 512 * 1024, CHUNK_MAX).unwrap());
    let files = [
        ("snap-1", "big.bin", &big),
        ("snap-2", "big.bin", &big2),
        ("snap-1", "logs/text.log", &text),
    ];
    // Files held open at once, read in turns.
    let mut open = Vec::new();
    for (snap, path, data) in files {
        let n = node(&reader, &index, snap, path).await;
        let f = LazyFile::open(
            reader.clone(),
            cache.clone(),
            &index,
            &n,
            ReadAhead::DEFAULT,
        );
        open.push((f.unwrap(), data));
    }
    for round in 0..4 {
        for (i, (f, data)) in open.iter().enumerate() {
            random_reads(f, &cache, data, (round * 10 + i + 1) as u64, 25).await;
        }
    }
    let stats = cache.stats();
    assert!(stats.evictions > 0 && stats.hits > 0, "{stats:?}");
    assert!(stats.bytes_read_from_repository > 0, "{stats:?}");
    // Chunks are written in the background: what the folder holds once
    // they are.
    cache.flush();
    let entries = cache_files(&dst.join("cache"));
    let chunks: u64 = entries.iter().map(|f| chunk_len(f)).sum();
    assert_eq!(chunks, cache.total());
    // With their block sums, within the bound and one chunk of slack.
    let on_disk: u64 = entries.iter().map(|f| f.metadata().unwrap().len()).sum();
    assert!(on_disk <= 512 * 1024 + CHUNK_MAX, "{on_disk}");
}

/// The chunk length of a cache entry: the file, or for a chunk of more
/// than 64 KiB the length its tail records (docs/ARCHITECTURE.md).
fn chunk_len(entry: &Path) -> u64 {
    let bytes = fs::read(entry).unwrap();
    if bytes.len() <= 64 * 1024 {
        return bytes.len() as u64;
    }
    let tail = &bytes[bytes.len() - 16..];
    assert_eq!(&tail[8..], b"skcache2");
    u64::from_le_bytes(tail[..8].try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_chunks_are_cached_once_and_corrupt_entries_refetched() {
    let (_t, src, repo, dst) = scene();
    let (big, big2, _) = two_snapshots(&src, &repo);
    let (reader, index) = open_repo(&repo).await;
    let dir = dst.join("cache");
    let cache = Arc::new(DiskCache::open(&dir, 64 * 1024 * 1024, CHUNK_MAX).unwrap());
    let n1 = node(&reader, &index, "snap-1", "big.bin").await;
    let f1 = LazyFile::open(
        reader.clone(),
        cache.clone(),
        &index,
        &n1,
        ReadAhead::DEFAULT,
    )
    .unwrap();
    assert_eq!(f1.read_at(0, big.len() as u64).await.unwrap(), big[..]);
    let first = cache.stats();
    assert!(first.bytes_read_from_repository >= big.len() as u64 / 2);
    cache.flush();
    let entries = cache_files(&dir).len();

    // The second snapshot's file differs in one place: only the chunks
    // around it are fetched and stored, the rest are hits.
    let n2 = node(&reader, &index, "snap-2", "big.bin").await;
    let f2 = LazyFile::open(
        reader.clone(),
        cache.clone(),
        &index,
        &n2,
        ReadAhead::DEFAULT,
    )
    .unwrap();
    assert_eq!(f2.read_at(0, big2.len() as u64).await.unwrap(), big2[..]);
    let second = cache.stats();
    let fetched = second.bytes_read_from_repository - first.bytes_read_from_repository;
    assert!(fetched > 0 && fetched <= 2 * CHUNK_MAX, "fetched {fetched}");
    assert!(second.hits > first.hits);
    cache.flush();
    assert!(cache_files(&dir).len() <= entries + 2);

    // A cache entry damaged on disk: detected, dropped, fetched again (by
    // a cache opened anew, as a new mount opens it: an open cache keeps
    // the chunks it verified last in memory).
    let victim = n1.chunks[n1.chunks.len() / 2].to_hex();
    let path = dir.join(&victim[..2]).join(&victim);
    let mut bytes = fs::read(&path).unwrap();
    bytes[10] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    drop((f1, f2));
    let cache = Arc::new(DiskCache::open(&dir, 64 * 1024 * 1024, CHUNK_MAX).unwrap());
    let f1 = LazyFile::open(
        reader.clone(),
        cache.clone(),
        &index,
        &n1,
        ReadAhead::DEFAULT,
    )
    .unwrap();
    assert_eq!(f1.read_at(0, big.len() as u64).await.unwrap(), big[..]);
    let third = cache.stats();
    assert_eq!(third.corrupt, 1, "{third:?}");
    assert_eq!(third.misses, 1, "a corrupt entry reads as a miss");
    assert!(third.bytes_read_from_repository > 0);
    cache.flush();
    let repaired = fs::read(&path).unwrap();
    assert_ne!(repaired, bytes, "the corrupt entry was replaced");

    // A cache opened again on the folder serves from it without fetching.
    drop(f1);
    let reopened = Arc::new(DiskCache::open(&dir, 64 * 1024 * 1024, CHUNK_MAX).unwrap());
    let f = LazyFile::open(
        reader.clone(),
        reopened.clone(),
        &index,
        &n2,
        ReadAhead::DEFAULT,
    )
    .unwrap();
    assert_eq!(
        f.read_at(1_000_000, 1_000_000).await.unwrap(),
        big2[1_000_000..2_000_000]
    );
    let stats = reopened.stats();
    assert_eq!(
        (stats.misses, stats.bytes_read_from_repository),
        (0, 0),
        "{stats:?}"
    );

    // Opened with a smaller bound, it evicts down to it; cleared, it is
    // empty (nothing is open).
    drop((f, reopened));
    let small = DiskCache::open(&dir, 512 * 1024, CHUNK_MAX).unwrap();
    assert!(small.total() <= 512 * 1024 && small.total() > 0);
    let on_disk: u64 = cache_files(&dir)
        .iter()
        .map(|f| f.metadata().unwrap().len())
        .sum();
    assert_eq!(on_disk, small.total());
    small.clear();
    assert_eq!((small.total(), cache_files(&dir).len()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_repository_reads_lazily_through_the_cache() {
    let server = moto();
    create_bucket(server.port, "lazy");
    let (_t, src, _, dst) = scene();
    let url = "s3://lazy/repo";
    let (big, _, text) = two_snapshots_at(&src, url, &s3_env(server.port));
    let store = ObjectStorage::open(url, &s3_options(server.port)).unwrap();
    let (reader, index) = open_store(Arc::new(store)).await;
    let cache = Arc::new(DiskCache::open(&dst.join("cache"), 1024 * 1024, CHUNK_MAX).unwrap());
    for (path, data) in [("big.bin", &big), ("logs/text.log", &text)] {
        let n = node(&reader, &index, "snap-1", path).await;
        let f = LazyFile::open(
            reader.clone(),
            cache.clone(),
            &index,
            &n,
            ReadAhead::DEFAULT,
        );
        random_reads(&f.unwrap(), &cache, data, 3, 30).await;
    }
    let stats = cache.stats();
    assert!(
        stats.bytes_read_from_repository > 0 && stats.hits > 0,
        "{stats:?}"
    );
}

/// Issue 18's first-byte target: once the mount has loaded the index and
/// the trees, the first byte of a file (at its start or in its middle)
/// costs at most 2 storage round trips over a cold cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_byte_takes_at_most_two_round_trips() {
    use snapkeep::storage::counting::{CountingStore, RequestCounter};
    let (_t, src, repo, dst) = scene();
    let (big, _, text) = two_snapshots(&src, &repo);
    let counter = Arc::new(RequestCounter::default());
    let local: Arc<dyn Storage> = Arc::new(LocalStore::open(&repo).unwrap());
    let (reader, index) = open_store(Arc::new(CountingStore::new(local, counter.clone()))).await;
    for (n, (path, data, at)) in [
        ("big.bin", &big, 0u64),
        ("big.bin", &big, big.len() as u64 / 2 + 12_345),
        ("logs/text.log", &text, 10),
    ]
    .into_iter()
    .enumerate()
    {
        let cache = Arc::new(
            DiskCache::open(&dst.join(format!("cache-{n}")), 64 << 20, CHUNK_MAX).unwrap(),
        );
        let file_node = node(&reader, &index, "snap-1", path).await;
        let before = counter.stats();
        let file = LazyFile::open(
            reader.clone(),
            cache,
            &index,
            &file_node,
            ReadAhead::DEFAULT,
        )
        .unwrap();
        let byte = file.read_at(at, 1).await.unwrap();
        assert_eq!(byte[..], data[at as usize..at as usize + 1]);
        let trips = counter.stats().total() - before.total();
        assert!(
            (1..=2).contains(&trips),
            "{path} at {at}: {trips} round trips"
        );
    }
}

/// A patch's base that the cache holds (the parent snapshot's page group,
/// read through the cache before) is taken from the cache, by a restore
/// from that cache and by a mount: reading the patched page costs one
/// ranged read, the patch's, not a second one for its base.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_whose_base_is_cached_reads_only_the_patch() {
    use snapkeep::storage::counting::{CountingStore, RequestCounter};
    const PAGE: usize = 8192;
    let (_t, src, repo, dst) = scene();
    common::ok(&["repo", "init", s(&repo), "-q"]);
    let file = src.join("data/16384");
    let first = common::pg_relation(512, 9);
    write(&file, &first);
    common::ok(&[
        "snapshot",
        "create",
        s(&repo),
        "snap-1",
        "--source",
        s(&src),
        "-q",
    ]);
    let mut second = first.clone();
    second[200 * PAGE + 100..200 * PAGE + 300].fill(0xab);
    write(&file, &second);
    common::ok(&[
        "snapshot",
        "create",
        s(&repo),
        "snap-2",
        "--source",
        s(&src),
        "-q",
    ]);

    let counter = Arc::new(RequestCounter::default());
    let local: Arc<dyn Storage> = Arc::new(LocalStore::open(&repo).unwrap());
    let (reader, index) = open_store(Arc::new(CountingStore::new(local, counter.clone()))).await;
    let cache = Arc::new(DiskCache::open(&dst.join("cache"), 64 << 20, CHUNK_MAX).unwrap());
    let open = |n: Node| {
        let (reader, cache, index) = (reader.clone(), cache.clone(), &index);
        LazyFile::open(reader, cache, index, &n, ReadAhead::DEFAULT).unwrap()
    };
    let old = open(node(&reader, &index, "snap-1", "16384").await);
    assert_eq!(old.read_at(0, first.len() as u64).await.unwrap(), first);
    // A restore from that cache reads no base either: of the repository
    // it reads only the index, the trees and the patch.
    let cache_dir = dst.join("cache");
    cache.flush();
    let target = dst.join("restored");
    let out = common::json(&[
        "restore",
        s(&repo),
        "snap-2",
        "--target",
        s(&target),
        "--cache",
        s(&cache_dir),
    ]);
    assert_eq!(fs::read(target.join("data/16384")).unwrap(), second);
    let received = out["snapshot"]["requests"]["bytes_received"].as_u64();
    // The base alone is a 64 KiB group of noise.
    assert!(received.is_some_and(|r| r < 32 * 1024), "{out}");
    let new = open(node(&reader, &index, "snap-2", "16384").await);
    let before = counter.stats();
    let at = (200 * PAGE) as u64;
    let page = new.read_at(at, PAGE as u64).await.unwrap();
    assert_eq!(page[..], second[200 * PAGE..201 * PAGE]);
    let trips = counter.stats().total() - before.total();
    assert_eq!(trips, 1, "the patch's range only, its base from the cache");
    assert_eq!(new.read_at(0, second.len() as u64).await.unwrap(), second);
}
