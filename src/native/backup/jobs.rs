//! Running the read jobs in parallel, with the rules that keep a snapshot
//! consistent: a file that changed while read is read once more, and a file
//! modified so recently that its timestamps cannot prove it was still (its
//! mtime lies within one filesystem clock tick of the read) is read a
//! second time after a tick has passed, and kept only if both reads agree.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rayon::prelude::*;

use crate::core::chunking::Cutting;
use crate::native::backup::packer::{Added, Packer};
use crate::native::backup::read_error::ReadError;
use crate::native::backup::reader::{largest_window, read_file, FileRead};
use crate::native::backup::walk::Job;
use crate::native::clock::now_ns;
use crate::native::error::Error;
use crate::native::progress::Progress;

/// Filesystems stamp mtimes with a coarse clock (a few ms on Linux, 2 s on
/// FAT); a write inside the same tick as our read leaves the stamps equal.
/// Files with mtimes this close to their read are verified by a second read.
pub const RACY_WINDOW: Duration = Duration::from_millis(50);

/// A file's outcome, held for every file until its tree is written: boxed
/// variants keep the list of them small (three copies of it existed at
/// once while a snapshot of many files gathered its results).
pub enum JobResult {
    Read(Box<FileRead>),
    Failed(String),
    Fatal(Box<Error>),
    Skipped,
}

/// Reads a file, retrying once if it changed while being read.
fn read_with_retry(
    job: &Job,
    cutting: &Cutting,
    packer: &Packer,
    progress: &Progress,
) -> Result<(FileRead, i64), JobResult> {
    let mut changed_once = false;
    // Chunks stored by a read that then saw the file change were still
    // stored: count them with the read that is kept.
    let mut wasted = Added::default();
    // The first read trusts the walk's stamp; a retry takes a fresh one.
    let mut walked = Some(job.stamp);
    // A chunking rule that matched the file's path overrides the mode.
    let ruled;
    let cutting = match job.chunking {
        Some(mode) => {
            ruled = Cutting { mode, ..*cutting };
            &ruled
        }
        None => cutting,
    };
    loop {
        let started = now_ns();
        match read_file(
            &job.path,
            walked.take(),
            cutting,
            packer,
            progress,
            job.previous.clone(),
        ) {
            Ok(mut r) => {
                r.added.plain += wasted.plain;
                r.added.stored += wasted.stored;
                return Ok((r, started));
            }
            Err(ReadError::Changed(a)) if !changed_once => {
                changed_once = true;
                wasted.plain += a.plain;
                wasted.stored += a.stored;
            }
            Err(ReadError::Changed(_)) => {
                return Err(JobResult::Failed(
                    "file changed while it was read, twice".into(),
                ))
            }
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(JobResult::Failed(
                    "file disappeared before it was read".into(),
                ))
            }
            Err(ReadError::Io(e)) => return Err(JobResult::Failed(format!("cannot read: {e}"))),
            Err(ReadError::Store(e)) => return Err(JobResult::Fatal(Box::new(e))),
        }
    }
}

/// Reads every job. With `stop_on_failure`, the first failure stops the
/// remaining reads (the snapshot will not be committed anyway). `on_read`
/// hears of each job read, by its position and size; `on_settled` of each
/// job whose result is final (read and verified, failed or skipped), except
/// racy files left unverified because the run stopped.
pub fn run_jobs(
    jobs: &[Job],
    cutting: &Cutting,
    packer: &Packer,
    progress: &Progress,
    stop_on_failure: bool,
    on_read: &(dyn Fn(usize, u64) + Sync),
    on_settled: &(dyn Fn(usize) + Sync),
) -> Vec<JobResult> {
    let abort = AtomicBool::new(false);
    let first_read = |i: usize| -> (JobResult, Option<i64>) {
        let job = &jobs[i];
        if abort.load(Ordering::Relaxed) {
            return (JobResult::Skipped, None);
        }
        progress.file_started(&job.path);
        let out = match read_with_retry(job, cutting, packer, progress) {
            Ok((r, started)) => {
                let racy = r.stamp.mtime_ns > started - RACY_WINDOW.as_nanos() as i64;
                let mtime = r.stamp.mtime_ns;
                on_read(i, job.size);
                progress.file_done();
                (JobResult::Read(Box::new(r)), racy.then_some(mtime))
            }
            Err(e) => {
                if matches!(e, JobResult::Failed(_)) {
                    progress.file_failed();
                }
                (e, None)
            }
        };
        if matches!(out.0, JobResult::Fatal(_))
            || (stop_on_failure && matches!(out.0, JobResult::Failed(_)))
        {
            abort.store(true, Ordering::Relaxed);
        }
        out
    };
    let run = |i: usize| {
        let out = first_read(i);
        if out.1.is_none() {
            on_settled(i);
        }
        out
    };
    // Files longer than the largest window stream one at a time, each using
    // every core through its chunk queue, while the pool reads the other
    // files: two large files at once would only hold twice the buffers.
    let window = largest_window(&cutting.params) as u64;
    let (large, small): (Vec<usize>, Vec<usize>) =
        (0..jobs.len()).partition(|&i| jobs[i].size > window);
    let (large_done, small_done) = rayon::join(
        || large.iter().map(|&i| (i, run(i))).collect::<Vec<_>>(),
        || small.par_iter().map(|&i| (i, run(i))).collect::<Vec<_>>(),
    );
    let mut slots: Vec<Option<(JobResult, Option<i64>)>> = (0..jobs.len()).map(|_| None).collect();
    for (i, r) in large_done.into_iter().chain(small_done) {
        slots[i] = Some(r);
    }
    let first: Vec<(JobResult, Option<i64>)> = slots
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect();
    let racy: Vec<usize> = first
        .iter()
        .enumerate()
        .filter_map(|(i, (_, r))| r.map(|_| i))
        .collect();
    let mut results: Vec<JobResult> = first.into_iter().map(|(r, _)| r).collect();
    if racy.is_empty() || abort.load(Ordering::Relaxed) {
        return results;
    }
    // Wait once, for all racy files together, until a tick has passed since
    // the newest of their mtimes (bounded, in case of clocks in the future).
    std::thread::sleep(RACY_WINDOW);
    let verified: Vec<(usize, JobResult)> = racy
        .par_iter()
        .map(|&i| {
            let JobResult::Read(first) = &results[i] else {
                unreachable!("racy entries are reads")
            };
            let again = match read_with_retry(&jobs[i], cutting, packer, &Progress::hidden()) {
                Ok((r, _)) if r.stamp == first.stamp && r.chunks == first.chunks => {
                    JobResult::Read(Box::new(r))
                }
                Ok(_) => JobResult::Failed(
                    "file changed while it was read (in-place write within one timestamp tick)"
                        .into(),
                ),
                Err(e) => e,
            };
            on_settled(i);
            (i, again)
        })
        .collect();
    for (i, r) in verified {
        // Keep the first read's accounting of new data: the second read
        // found every chunk already stored.
        if let (JobResult::Read(_), JobResult::Read(_)) = (&r, &results[i]) {
            continue;
        }
        results[i] = r;
    }
    results
}
