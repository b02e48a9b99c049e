//! What the per-core kernels allow for one data set: reads every regular
//! file under DIR into memory, then times FastCDC chunking, SHA-256 and the
//! blob encoder (zstd level 3, raw when it does not shrink) on one thread,
//! with no IO in the timed part. The benchmark harness divides the sum by
//! the number of cores to get the pipeline's lower bound and compares the
//! measured snapshot time with it.
//!
//! `cargo run --release --example kernel_bound -- DIR` prints one JSON line.

use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;

use common::files_under;
use snapkeep::core::chunker::ChunkerParams;
use snapkeep::core::codec::Compression;
use snapkeep::core::id::Id;
use snapkeep::native::backup::compressor::with_encoded;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "usage: kernel_bound DIR")
        })?;
    let mut paths = Vec::new();
    files_under(&dir, &mut paths)?;
    paths.sort();
    let params = ChunkerParams::default();
    let (mut chunk_t, mut sha_t, mut zstd_t) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut bytes, mut stored, mut chunks) = (0u64, 0u64, 0u64);
    for path in &paths {
        let data = std::fs::read(path)?;
        bytes += data.len() as u64;
        let t = Instant::now();
        let ranges = params.split_all(&data);
        chunk_t += t.elapsed();
        chunks += ranges.len() as u64;
        let t = Instant::now();
        for r in &ranges {
            std::hint::black_box(Id::of(&data[r.clone()]));
        }
        sha_t += t.elapsed();
        let t = Instant::now();
        for r in &ranges {
            stored += with_encoded(Compression::Zstd, 3, &data[r.clone()], |_, s| s.len()) as u64;
        }
        zstd_t += t.elapsed();
    }
    let total = chunk_t + sha_t + zstd_t;
    println!(
        "{{\"files\":{},\"bytes\":{},\"chunks\":{},\"stored\":{},\"chunk_s\":{:.3},\"sha256_s\":{:.3},\"zstd_s\":{:.3},\"one_core_s\":{:.3}}}",
        paths.len(),
        bytes,
        chunks,
        stored,
        chunk_t.as_secs_f64(),
        sha_t.as_secs_f64(),
        zstd_t.as_secs_f64(),
        total.as_secs_f64()
    );
    Ok(())
}
