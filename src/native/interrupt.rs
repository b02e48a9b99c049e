//! Ctrl-C (SIGINT) and SIGTERM during a long CLI command: the first asks
//! the work to stop through its abort token (the node's abort path), so a
//! snapshot ends cleanly, keeps what it uploaded for its rerun and removes
//! its in-flight marker; a second one ends the process at once.
//!
//! The handlers are tokio's (`tokio::signal`, already in the tree for the
//! node's SIGTERM): registered on the shell's runtime before the work
//! starts, so no signal falls between the start and the registration.

use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinHandle;

use crate::native::job::Abort;
use crate::native::runtime::handle;

/// Exit status after a second signal: 128 + SIGINT, as shells report it.
const EXIT_AT_ONCE: i32 = 130;

/// Watches for the signals while held; dropping it stops watching.
pub struct StopOnSignals {
    task: Option<JoinHandle<()>>,
}

impl StopOnSignals {
    /// Aborts `abort` on the first SIGINT or SIGTERM and tells the user
    /// `what` stops; exits on the second. Watches nothing when the
    /// handlers cannot be installed (the work then runs as before).
    pub fn install(abort: Abort, what: &'static str) -> StopOnSignals {
        let _runtime = handle().enter();
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return StopOnSignals { task: None };
        };
        let task = handle().spawn(async move {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            eprintln!("\n{name} received: stopping the {what} (again to quit at once)");
            abort.abort();
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
            eprintln!("stopped at once");
            std::process::exit(EXIT_AT_ONCE);
        });
        StopOnSignals { task: Some(task) }
    }
}

impl Drop for StopOnSignals {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
