//! CPU-heavy work (re-hashing downloaded packs) handed to the shell's
//! choice of threads, so it does not occupy the async executor's threads:
//! a server's runtime keeps answering requests while `repo check` hashes
//! gigabytes. The native shell passes a rayon pool (`native::cpu::RayonCpu`);
//! the single-threaded wasm shells, which have no other thread, pass
//! [`Inline`].

use std::fmt;

use futures::channel::oneshot;

use crate::storage::MaybeSendSync;

/// One unit of CPU work; it reports its result itself (see [`run`]).
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Where CPU work runs.
pub trait Cpu: MaybeSendSync + fmt::Debug {
    /// Runs `job` to completion, now or later on another thread; it may
    /// return before the job has run.
    fn spawn(&self, job: Job);
}

/// Runs each job at once on the calling thread: for shells without other
/// threads, and tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inline;

impl Cpu for Inline {
    fn spawn(&self, job: Job) {
        job()
    }
}

/// Runs `f` on `cpu` and waits for its result without blocking the task's
/// thread.
pub async fn run<T: Send + 'static>(cpu: &dyn Cpu, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = oneshot::channel();
    cpu.spawn(Box::new(move || {
        // The receiver is gone only if the awaiting task was dropped.
        let _ = done.send(f());
    }));
    // A job that panicked dropped its sender: carry the panic on.
    result.await.expect("a CPU job panicked")
}
