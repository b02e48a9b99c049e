//! Grows a repository to N snapshots quickly, for the node benchmark's
//! listing of a repository with 10,000 snapshots (bench/node.py).
//!
//! `many_snapshots REPO N`: REPO holds at least one snapshot (made by
//! `snapkeep snapshot create`); its newest one is copied as `s00001`,
//! `s00002`, ... until the repository holds N. Each copy is a real
//! snapshot as a clone makes it (`repo::clone`): its own manifest naming
//! the source's trees, so every copy can be listed, inspected and restored,
//! and `snapkeep repo check` passes.
//!
//! Committing the copies one by one (9,999 `_clone` calls) rewrites the
//! whole root each time: quadratic in the number of snapshots (gigabytes of
//! root generations for 10,000). Here the manifests are written
//! concurrently and every `AddSnapshot` change is applied to the root in
//! memory with the same checks a commit makes (`Root::apply`), then the
//! result is committed once as the next generation, with the same
//! create-only put a commit uses.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use snapkeep::core::format::keys;
use snapkeep::core::format::manifest::Manifest;
use snapkeep::core::format::root::RootChange;
use snapkeep::native::clock::{now_millis, TokioSleep};
use snapkeep::native::decompressor::libzstd_decode;
use snapkeep::native::location::Location;
use snapkeep::native::runtime::block_on;
use snapkeep::repo::{RepoReader, RepoWriter};
use snapkeep::storage::PutMode;

/// Manifests written at once.
const CONCURRENCY: usize = 32;

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [repo, count] = args.as_slice() else {
        return Err("usage: many_snapshots REPO N".into());
    };
    let count: usize = count.parse()?;
    let added = block_on(grow(repo, count))?;
    println!("{added}");
    Ok(())
}

/// Adds copies until the repository holds `count` snapshots; returns how
/// many were added.
async fn grow(location: &str, count: usize) -> Result<usize, Failure> {
    let store = Location::parse(location)?.open(false)?;
    let reader = RepoReader::open(store.clone(), libzstd_decode).await?;
    let root = reader.root().await?;
    let source = root
        .snapshots
        .last()
        .ok_or("the repository has no snapshot")?;
    let template = reader.manifest(source).await?;
    let missing = count.saturating_sub(root.snapshots.len());
    let base = now_millis();
    let copies: Vec<Manifest> = (1..=missing)
        .map(|i| copy(&template, i, base + i as i64))
        .collect();
    let writer = RepoWriter::new(reader.clone(), Arc::new(TokioSleep));
    let hashes: Vec<_> = stream::iter(copies.iter().map(|m| writer.put_manifest(m)))
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut next = root.clone();
    for (manifest, hash) in copies.iter().zip(hashes) {
        let mut summary = manifest.summary();
        summary.manifest = Some(hash);
        next = next.apply(&RootChange::AddSnapshot {
            summary,
            index_file: None,
            base_index_files: root.index_files.clone(),
            slot: None,
        })?;
    }
    // One commit: the generation after the one read.
    next.generation = root.generation + 1;
    store
        .put(
            &keys::root(next.generation),
            Bytes::from(next.encode()),
            PutMode::Create,
        )
        .await?;
    let hint = Bytes::from(next.generation.to_string());
    store.put(keys::LATEST, hint, PutMode::Overwrite).await?;
    Ok(missing)
}

/// The `i`th copy of `source`: a fresh name and uuid, the same trees, no
/// bytes of its own (as `repo::clone` makes a clone).
fn copy(source: &Manifest, i: usize, at_ms: i64) -> Manifest {
    let mut m = source.clone();
    m.snapshot = format!("s{i:05}");
    m.uuid = uuid::Uuid::new_v4().to_string();
    m.start_time_in_millis = at_ms;
    m.end_time_in_millis = at_ms;
    for stats in m.indices.values_mut().chain(m.global_state.as_mut()) {
        stats.new_bytes = 0;
        stats.new_stored_bytes = 0;
        stats.files_read = 0;
    }
    m
}
