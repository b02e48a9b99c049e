//! How page-group chunking (issue #21) compares with content-defined
//! chunking on a database's incremental: `BEFORE` and `AFTER` are copies
//! of one data folder (e.g. a PostgreSQL data folder before and after an
//! update workload).
//!
//! `cargo run --release --example page_chunking -- BEFORE AFTER`
//!
//! `cargo run --release --example page_chunking -- --sizes DIR...` prints
//! instead, for each folder, the distribution of chunk sizes FastCDC (the
//! repository default) and `auto` (64 KiB page groups) cut it into: chunks
//! and bytes per power-of-two size class.
//!
//! For each mode it chunks every regular file of both, and prints how many
//! chunks and bytes of `AFTER` are new (not in `BEFORE`), what they store
//! as zstd level 3 blobs, how many chunks `AFTER` has in all (the index a
//! repository keeps grows with it), and how many files `auto` took as
//! paged. Modes: FastCDC with the repository defaults and with 64 KiB
//! average chunks, and `auto` (pages for files `detect` recognises,
//! FastCDC for the rest) with groups of 16 KiB to 256 KiB.

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;

mod common;

use common::files_under;
use snapkeep::core::chunker::ChunkerParams;
use snapkeep::core::chunking::detect::{detect, HEAD_BYTES};
use snapkeep::core::chunking::pages::{PageGroups, DEFAULT_GROUP_BYTES};
use snapkeep::core::format::codec::Compression;
use snapkeep::core::format::id::Id;
use snapkeep::native::backup::compressor::with_encoded;

const MIB: f64 = 1048576.0;

#[derive(Clone, Copy)]
enum Mode {
    Cdc(ChunkerParams),
    /// Pages for detected files, in groups of this many bytes.
    Auto(ChunkerParams, u32),
}

impl Mode {
    /// The chunks of `file`, and whether it was cut as pages.
    fn cut(&self, file: &[u8]) -> (Vec<Range<usize>>, bool) {
        match *self {
            Mode::Cdc(p) => (p.split_all(file), false),
            Mode::Auto(p, group) => {
                let head = &file[..file.len().min(HEAD_BYTES)];
                match detect(file.len() as u64, head) {
                    Some(paged) => {
                        let groups = PageGroups::new(paged.page_size, group);
                        (groups.split(0, file, true), true)
                    }
                    None => (p.split_all(file), false),
                }
            }
        }
    }
}

fn modes() -> Vec<(Mode, String)> {
    let small = ChunkerParams {
        min: 32 << 10,
        avg: 64 << 10,
        max: 1 << 20,
        ..ChunkerParams::default()
    };
    let mut out = vec![
        (
            Mode::Cdc(ChunkerParams::default()),
            "cdc 512 KiB avg".to_string(),
        ),
        (Mode::Cdc(small), "cdc 64 KiB avg".to_string()),
    ];
    for kib in [16u32, 32, 64, 128, 256] {
        out.push((
            Mode::Auto(ChunkerParams::default(), kib << 10),
            format!("auto, {kib} KiB page groups"),
        ));
    }
    out
}

fn read_all(dir: &str) -> std::io::Result<Vec<Vec<u8>>> {
    let mut paths = Vec::new();
    files_under(Path::new(dir), &mut paths)?;
    paths.sort();
    paths.into_iter().map(std::fs::read).collect()
}

/// Chunks and bytes per size class (`[2^k, 2^(k+1))`), by `k`.
#[derive(Default)]
struct Sizes {
    classes: std::collections::BTreeMap<u32, (u64, u64)>,
    chunks: u64,
    bytes: u64,
    at_max: u64,
}

impl Sizes {
    fn add(&mut self, len: usize, max: u32) {
        let class = self.classes.entry(len.max(1).ilog2()).or_default();
        class.0 += 1;
        class.1 += len as u64;
        self.chunks += 1;
        self.bytes += len as u64;
        if len as u32 == max {
            self.at_max += 1;
        }
    }

    fn print(&self, name: &str) {
        let mean = self.bytes as f64 / self.chunks.max(1) as f64 / 1024.0;
        println!(
            "\n{name}: {} chunks, mean {mean:.1} KiB, {} cut at the maximum\n",
            self.chunks, self.at_max
        );
        println!("| size | chunks | bytes | share of bytes |");
        println!("|---|---:|---:|---:|");
        for (k, (n, b)) in &self.classes {
            println!(
                "| {} to {} | {n} | {:.1} MiB | {:.1}% |",
                human(1u64 << k),
                human(1u64 << (k + 1)),
                *b as f64 / MIB,
                100.0 * *b as f64 / self.bytes.max(1) as f64
            );
        }
    }
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

/// `--sizes DIR...`: each folder's chunk sizes with FastCDC and with auto.
fn sizes(dirs: &[String]) -> std::io::Result<()> {
    let defaults = ChunkerParams::default();
    let modes = [
        (Mode::Cdc(defaults), "FastCDC, 512 KiB average"),
        (
            Mode::Auto(defaults, DEFAULT_GROUP_BYTES),
            "auto (64 KiB page groups, FastCDC for the rest)",
        ),
    ];
    for dir in dirs {
        let mut paths = Vec::new();
        files_under(Path::new(dir), &mut paths)?;
        println!("\n### {dir}: {} files", paths.len());
        let mut by_mode: Vec<Sizes> = modes.iter().map(|_| Sizes::default()).collect();
        for path in paths {
            let file = std::fs::read(path)?;
            for ((mode, _), sizes) in modes.iter().zip(&mut by_mode) {
                for r in mode.cut(&file).0 {
                    sizes.add(r.len(), defaults.max);
                }
            }
        }
        for ((_, name), sizes) in modes.iter().zip(&by_mode) {
            sizes.print(name);
        }
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--sizes") {
        return sizes(&args[1..]);
    }
    let [before, after] = args.as_slice() else {
        eprintln!("usage: page_chunking BEFORE AFTER | --sizes DIR...");
        std::process::exit(2)
    };
    let (old_files, new_files) = (read_all(before)?, read_all(after)?);
    let total: usize = new_files.iter().map(Vec::len).sum();
    println!(
        "AFTER: {} files, {:.1} MiB",
        new_files.len(),
        total as f64 / MIB
    );
    for (mode, name) in modes() {
        let mut old = HashSet::new();
        for f in &old_files {
            for r in mode.cut(f).0 {
                old.insert(Id::of(&f[r]));
            }
        }
        let (mut chunks, mut paged, mut paged_bytes) = (0usize, 0usize, 0usize);
        let (mut new_chunks, mut new_bytes, mut stored) = (0usize, 0u64, 0u64);
        let mut seen = HashSet::new();
        for f in &new_files {
            let (cuts, as_pages) = mode.cut(f);
            if as_pages {
                paged += 1;
                paged_bytes += f.len();
            }
            chunks += cuts.len();
            for r in cuts {
                let chunk = &f[r];
                let id = Id::of(chunk);
                if !old.contains(&id) && seen.insert(id) {
                    new_chunks += 1;
                    new_bytes += chunk.len() as u64;
                    stored += with_encoded(Compression::Zstd, 3, chunk, |_, s| s.len()) as u64;
                }
            }
        }
        println!(
            "{name}: {new_chunks} new chunks, {:.2} MiB new, stored {:.2} MiB; {chunks} chunks in all; {paged} files ({:.1} MiB) as pages",
            new_bytes as f64 / MIB,
            stored as f64 / MIB,
            paged_bytes as f64 / MIB
        );
    }
    Ok(())
}
