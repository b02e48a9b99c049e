//! What the per-core kernels allow for one data set: reads every regular
//! file under DIR into memory, then times on one thread, with no IO in the
//! timed part, the kernel work a snapshot into a new repository must do:
//! FastCDC chunking, the blob encoder (zstd level 3, raw when it does not
//! shrink), and SHA-256 over every byte the format names by its hash, which
//! is each chunk (its blob id) and each pack of stored blobs (its pack id;
//! packs of the default size are filled with the encoded blobs in order).
//! The benchmark harness divides the sum by the number of cores to get the
//! pipeline's lower bound and compares the measured snapshot time with it.
//!
//! `cargo run --release --example kernel_bound -- DIR` prints one JSON line.

use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;

use common::files_under;
use snapkeep::core::chunker::ChunkerParams;
use snapkeep::core::format::codec::Compression;
use snapkeep::core::format::config::DEFAULT_PACK_SIZE;
use snapkeep::core::format::id::Id;
use snapkeep::native::backup::compressor::with_encoded;

#[derive(Default)]
struct Times {
    chunk: Duration,
    sha_chunks: Duration,
    zstd: Duration,
    sha_packs: Duration,
}

fn timed<R>(into: &mut Duration, f: impl FnOnce() -> R) -> R {
    let t = Instant::now();
    let r = f();
    *into += t.elapsed();
    r
}

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
    let pack_size = DEFAULT_PACK_SIZE as usize;
    let mut t = Times::default();
    let (mut bytes, mut stored, mut chunks, mut packs) = (0u64, 0u64, 0u64, 0u64);
    let mut pack = Vec::with_capacity(2 * pack_size);
    for path in &paths {
        let data = std::fs::read(path)?;
        bytes += data.len() as u64;
        let ranges = timed(&mut t.chunk, || params.split_all(&data));
        chunks += ranges.len() as u64;
        timed(&mut t.sha_chunks, || {
            for r in &ranges {
                std::hint::black_box(Id::of(&data[r.clone()]));
            }
        });
        for r in &ranges {
            // Copying into the pack is not kernel work: only the encoding
            // is timed.
            let encode = Instant::now();
            with_encoded(Compression::Zstd, 3, &data[r.clone()], |_, s| {
                t.zstd += encode.elapsed();
                stored += s.len() as u64;
                pack.extend_from_slice(s);
            });
            if pack.len() >= pack_size {
                timed(&mut t.sha_packs, || std::hint::black_box(Id::of(&pack)));
                packs += 1;
                pack.clear();
            }
        }
    }
    if !pack.is_empty() {
        timed(&mut t.sha_packs, || std::hint::black_box(Id::of(&pack)));
        packs += 1;
    }
    let total = t.chunk + t.sha_chunks + t.zstd + t.sha_packs;
    println!(
        "{{\"files\":{},\"bytes\":{},\"chunks\":{},\"stored\":{},\"packs\":{},\"chunk_s\":{:.3},\"sha256_s\":{:.3},\"sha256_packs_s\":{:.3},\"zstd_s\":{:.3},\"one_core_s\":{:.3}}}",
        paths.len(),
        bytes,
        chunks,
        stored,
        packs,
        t.chunk.as_secs_f64(),
        t.sha_chunks.as_secs_f64(),
        t.sha_packs.as_secs_f64(),
        t.zstd.as_secs_f64(),
        total.as_secs_f64()
    );
    Ok(())
}
