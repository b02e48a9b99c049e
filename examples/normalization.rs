//! How FastCDC's chunk limits and normalization level change deduplication
//! (docs/PERFORMANCE.md, finding 6): format v1's first limits (512 KiB
//! minimum, 1 MiB average) and today's defaults (256 KiB, 512 KiB), each
//! at levels 1, 2 and 3, all with an 8 MiB maximum.
//!
//! `cargo run --release --example normalization -- DIR...` chunks every
//! regular file of the given folders (e.g. successive versions of a tree)
//! with each and prints the unique chunks, their bytes, and what they store
//! as zstd level 3 blobs.
//!
//! `cargo run --release --example normalization -- --insert FILE` inserts
//! a few bytes at 60 places in the first 64 MiB of FILE, one at a time,
//! and prints the mean and worst new chunk bytes each insertion costs.

use std::collections::HashSet;
use std::path::Path;

mod common;

use common::files_under;
use snapkeep::core::chunker::ChunkerParams;
use snapkeep::core::format::codec::Compression;
use snapkeep::core::format::id::Id;
use snapkeep::native::backup::compressor::with_encoded;

const MIB: f64 = 1048576.0;

/// (minimum, average, normalization level) of each candidate.
fn candidates() -> Vec<(ChunkerParams, String)> {
    let mut out = Vec::new();
    for (min, avg) in [(512u32 << 10, 1u32 << 20), (256 << 10, 512 << 10)] {
        for level in [1, 2, 3] {
            let p = ChunkerParams {
                min,
                avg,
                normalization: level,
                ..ChunkerParams::default()
            };
            out.push((
                p,
                format!(
                    "min {} KiB, avg {} KiB, level {level}",
                    min >> 10,
                    avg >> 10
                ),
            ));
        }
    }
    out
}

fn dedup(dirs: &[String]) -> std::io::Result<()> {
    let mut data = Vec::new();
    for dir in dirs {
        let mut paths = Vec::new();
        files_under(Path::new(dir), &mut paths)?;
        paths.sort();
        for p in paths {
            data.push(std::fs::read(p)?);
        }
    }
    for (p, name) in candidates() {
        let mut seen = HashSet::new();
        let (mut bytes, mut stored) = (0u64, 0u64);
        for file in &data {
            for r in p.split_all(file) {
                let chunk = &file[r];
                if seen.insert(Id::of(chunk)) {
                    bytes += chunk.len() as u64;
                    stored += with_encoded(Compression::Zstd, 3, chunk, |_, s| s.len()) as u64;
                }
            }
        }
        println!(
            "{name}: {} unique chunks, {:.2} MiB, stored {:.2} MiB",
            seen.len(),
            bytes as f64 / MIB,
            stored as f64 / MIB
        );
    }
    Ok(())
}

fn insertions(file: &str) -> std::io::Result<()> {
    let mut data = std::fs::read(file)?;
    data.truncate(64 << 20);
    let trials = 60usize;
    for (p, name) in candidates() {
        let old: HashSet<Id> = p
            .split_all(&data)
            .into_iter()
            .map(|r| Id::of(&data[r]))
            .collect();
        let (mut total, mut worst) = (0usize, 0usize);
        for t in 0..trials {
            let at = ((((t * 1013) % 60 + 1) << 20) | (t * 7919)).min(data.len());
            let mut edited = data.clone();
            edited.splice(at..at, std::iter::repeat_n(7u8, 100 + t * 37));
            let new: usize = p
                .split_all(&edited)
                .into_iter()
                .filter(|r| !old.contains(&Id::of(&edited[r.clone()])))
                .map(|r| r.len())
                .sum();
            total += new;
            worst = worst.max(new);
        }
        println!(
            "{name}: new bytes per insertion, mean {:.2} MiB, worst {:.2} MiB",
            total as f64 / trials as f64 / MIB,
            worst as f64 / MIB
        );
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, file] if flag == "--insert" => insertions(file),
        [] => {
            eprintln!("usage: normalization DIR... | normalization --insert FILE");
            std::process::exit(2)
        }
        dirs => dedup(dirs),
    }
}
