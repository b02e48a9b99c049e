//! Times incremental snapshots of a folder of a few large database-like
//! files after scattered in-place page rewrites, and prints the peak
//! resident memory (VmHWM) of those snapshots: how docs/PERFORMANCE.md
//! measured the number of read windows `native::backup::windows` keeps in
//! flight.
//!
//! `cargo run --example incremental_windows -- [DIR] [FILES] [MIB_EACH] [ROUNDS]`
//!
//! DIR (default: a folder under the system temp folder, removed at the
//! end) receives `src/` (kept and reused by later runs in the same DIR)
//! and `repo/` (made afresh each run). Each of FILES files (default 3) of
//! MIB_EACH MiB (default 200) is made of 8 KiB pages with PostgreSQL page
//! headers, so `auto` cuts them at 64 KiB page groups. A first snapshot
//! reads everything; then each of ROUNDS rounds (default 3) rewrites one
//! page in every 2 MiB of every file in place and takes a snapshot, timed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use snapkeep::core::format::config::RepoConfig;
use snapkeep::core::policy::selection::Selection;
use snapkeep::core::seeded::noise;
use snapkeep::native::backup::{create_snapshot, SnapshotOptions};
use snapkeep::native::location::Location;
use snapkeep::native::repo::Repo;

const PAGE: usize = 8192;
const MIB: usize = 1 << 20;
/// One page rewritten per this many bytes of each file, per round.
const STRIDE: usize = 2 * MIB;

/// A page that checks out as a PostgreSQL heap page.
fn page(seed: u64) -> Vec<u8> {
    let mut p = noise(PAGE, seed);
    // pd_lower 40, pd_upper 7936, pd_special 8192, 8 KiB layout 4.
    p[12..20].copy_from_slice(&[40, 0, 0, 31, 0, 32, 4, 32]);
    // Half the page zeroed, like a database's free space.
    p[4096..].fill(0);
    p
}

/// Writes `file` page by page (a MiB at a time, so building it costs no
/// memory to speak of).
fn build(file: &Path, mib: usize, seed: u64) -> std::io::Result<()> {
    let mut f = File::create(file)?;
    for m in 0..mib {
        let block: Vec<u8> = (0..MIB / PAGE)
            .flat_map(|i| page(seed * 1_000_000 + (m * MIB / PAGE + i) as u64))
            .collect();
        f.write_all(&block)?;
    }
    f.sync_all()
}

/// Rewrites one page in every `STRIDE` bytes of `file`, in place.
fn rewrite_pages(file: &Path, mib: usize, round: u64) -> std::io::Result<()> {
    let f = OpenOptions::new().write(true).open(file)?;
    let pages_per_stride = (STRIDE / PAGE) as u64;
    for (i, at) in (0..mib * MIB).step_by(STRIDE).enumerate() {
        let which = (i as u64 * 7 + round * 13) % pages_per_stride;
        f.write_at(
            &page(round * 1_000_003 + i as u64),
            at as u64 + which * PAGE as u64,
        )?;
    }
    f.sync_all()
}

/// Peak resident memory since the last reset, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// CPU seconds (user and system) this process has used so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Starts peak resident memory afresh (Linux: writing 5 to clear_refs).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let temp = std::env::temp_dir().join(format!("incremental-windows-{}", std::process::id()));
    let dir = args.first().map_or(temp.clone(), PathBuf::from);
    let num =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (files, mib, rounds) = (num(1, 3), num(2, 200), num(3, 3));
    let (src, repo_dir) = (dir.join("src"), dir.join("repo"));
    let db = src.join("db");
    std::fs::create_dir_all(&db)?;
    let paths: Vec<PathBuf> = (0..files).map(|i| db.join(format!("1636{i}"))).collect();
    for (i, p) in paths.iter().enumerate() {
        // Files left by an earlier run in DIR are reused (the first
        // snapshot reads them whole anyway).
        let built = std::fs::metadata(p).is_ok_and(|m| m.len() == (mib * MIB) as u64);
        if !built {
            build(p, mib, i as u64 + 1)?;
        }
    }
    // A fresh repository each run.
    let _ = std::fs::remove_dir_all(&repo_dir);
    let config = RepoConfig::new(format!("windows-{}", std::process::id()), 0);
    let repo = Repo::init(&Location::Local(repo_dir.clone()), config)?;
    let snap = |name: String| -> Result<(f64, u64), Box<dyn std::error::Error>> {
        let started = Instant::now();
        let out = create_snapshot(
            &repo,
            &SnapshotOptions {
                name,
                source: src.clone(),
                selection: Selection::all(),
                ..Default::default()
            },
        )?;
        Ok((
            started.elapsed().as_secs_f64(),
            out.manifest.totals().new_bytes,
        ))
    };
    let (initial, _) = snap("s0".into())?;
    println!(
        "{files} files of {mib} MiB: initial snapshot {initial:.2} s, peak RSS {:.0} MiB",
        peak_rss_mib()
    );
    let mut times = Vec::new();
    reset_peak_rss();
    // Rounds of a later run in the same DIR must change pages again.
    let run = u64::from(std::process::id()) << 8;
    for round in 1..=rounds as u64 {
        for p in &paths {
            rewrite_pages(p, mib, run + round)?;
        }
        // As a stopped database: files last written more than a clock
        // tick before the snapshot (a later mtime makes it read twice).
        std::thread::sleep(std::time::Duration::from_millis(200));
        let cpu = cpu_seconds();
        let (secs, new) = snap(format!("s{round}"))?;
        println!(
            "incremental {round}: {secs:.2} s, {:.2} CPU s, {:.1} MiB new",
            cpu_seconds() - cpu,
            new as f64 / MIB as f64
        );
        times.push(secs);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "median incremental {:.2} s; peak RSS of the incrementals {:.0} MiB",
        times[times.len() / 2],
        peak_rss_mib()
    );
    if args.is_empty() {
        std::fs::remove_dir_all(&temp)?;
    }
    Ok(())
}
