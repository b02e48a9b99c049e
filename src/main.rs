fn main() -> std::process::ExitCode {
    tune_allocator();
    quiet_broken_pipes();
    snapkeep::cli::main()
}

/// Output piped into a reader that stops early (`snapkeep snapshot ls R S |
/// head`) ends the command quietly, as it ends `ls` or `cat`: Rust ignores
/// SIGPIPE, so the next write fails and `println!` panics. Socket writes
/// are unaffected (std sends with `MSG_NOSIGNAL`). The node keeps SIGPIPE
/// ignored: its hooks' pipes must never kill it.
#[cfg(unix)]
fn quiet_broken_pipes() {
    if std::env::args().skip(1).any(|a| a == "node") {
        return;
    }
    // SAFETY: restores the default action of one signal before any other
    // thread exists.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn quiet_broken_pipes() {}

/// glibc serves large blocks with mmap only above a threshold that it raises
/// to the size of the largest such block freed (up to 32 MiB). snapkeep
/// frees many multi-MiB buffers (packs, read windows, pack ranges, decoded
/// chunks), so the threshold soon sits above them all, freed buffers stay in
/// the heap and the resident size grows by tens of MiB (measured: a 1 GiB
/// snapshot peaked at 139 MB instead of 93 MB, a restore at 155 MB instead of
/// 98 MB). A fixed 1 MiB threshold returns such buffers to the system.
///
/// Fixing it also fixes the trim threshold at its 128 KiB default: every
/// heap whose free top passes 128 KiB gives those pages back, and the next
/// small buffers (file reads, compressed blobs) fault them in again, each
/// zeroed (725 `madvise` calls and ~4% of a 50k-file snapshot's CPU in page
/// faults). Blocks in the heaps are all below 1 MiB, so a 4 MiB trim
/// threshold ends that churn (3 `madvise` calls) and bounds what a heap
/// keeps.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only changes a malloc tuning parameter; it is called
    // before any other thread exists.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 4 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
