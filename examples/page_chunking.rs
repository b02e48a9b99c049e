//! How page-group chunking (issue #21) compares with content-defined
//! chunking on a database's incremental: `BEFORE` and `AFTER` are copies
//! of one data folder (e.g. a PostgreSQL data folder before and after an
//! update workload).
//!
//! `cargo run --release --example page_chunking -- BEFORE AFTER`
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
use snapkeep::core::chunking::pages::PageGroups;
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

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [before, after] = args.as_slice() else {
        eprintln!("usage: page_chunking BEFORE AFTER");
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
