//! Runs consistency hooks: the commands `core::policy::hooks` chose for an
//! index, as processes with a timeout. Which hook applies and what its
//! failure means are the core's; this file only starts, waits and kills.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid, Signal};

use crate::core::policy::hooks::{last_line, HookExit, HookFailure, HookRules, Stage};
use crate::native::backup::hooks::IndexHooks;

/// How much of a hook's stderr is kept (its end: the last line is quoted).
const STDERR_KEPT: usize = 64 * 1024;
/// How often a running hook is checked for its exit.
const POLL: Duration = Duration::from_millis(10);
/// How long stderr is read after the hook exited: a process it left running
/// in the background (a held database session) may keep the pipe open.
const STDERR_GRACE: Duration = Duration::from_millis(200);

/// The node's `[[hooks]]`, run for one snapshot of one repository.
#[derive(Debug)]
pub struct CommandHooks {
    pub rules: Arc<HookRules>,
    pub repository: String,
    pub snapshot: String,
}

impl CommandHooks {
    /// The hooks a snapshot runs, or none when no entry is configured.
    pub fn for_snapshot(
        rules: &Arc<HookRules>,
        repository: &str,
        snapshot: &str,
    ) -> Option<Arc<dyn IndexHooks>> {
        if rules.is_empty() {
            return None;
        }
        Some(Arc::new(CommandHooks {
            rules: rules.clone(),
            repository: repository.to_string(),
            snapshot: snapshot.to_string(),
        }))
    }
}

impl IndexHooks for CommandHooks {
    fn run(&self, stage: Stage, index: &str, path: &Path) -> Result<(), HookFailure> {
        let Some(rule) = self.rules.for_index(index) else {
            return Ok(());
        };
        let Some(argv) = rule.command(stage) else {
            return Ok(());
        };
        let env = [
            ("SNAPKEEP_HOOK", stage.to_string()),
            ("SNAPKEEP_INDEX", index.to_string()),
            ("SNAPKEEP_INDEX_PATH", path.display().to_string()),
            ("SNAPKEEP_SNAPSHOT", self.snapshot.clone()),
            ("SNAPKEEP_REPOSITORY", self.repository.clone()),
        ];
        run_command(stage, argv, &env, Duration::from_secs(rule.timeout_secs))
    }
}

/// Runs `argv` (no shell) with `env` added, stdin and stdout closed, in a
/// process group of its own so that a timeout kills whatever it started.
pub fn run_command(
    stage: Stage,
    argv: &[String],
    env: &[(&str, String)],
    timeout: Duration,
) -> Result<(), HookFailure> {
    use std::os::unix::process::CommandExt;
    let program = argv.first().cloned().unwrap_or_default();
    let fail = |exit, stderr: &[u8]| HookFailure {
        stage,
        program: program.clone(),
        exit,
        stderr_tail: last_line(stderr),
    };
    let spawned = Command::new(&program)
        .args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let mut child = spawned.map_err(|e| fail(HookExit::Spawn(e.to_string()), b""))?;
    let stderr = StderrTail::start(&mut child);
    let ended = wait_or_kill(&mut child, timeout);
    let tail = stderr.collect();
    match ended {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(fail(exit_of(status), &tail)),
        Err(exit) => Err(fail(exit, &tail)),
    }
}

/// Waits for the hook until `timeout`, then kills its process group.
fn wait_or_kill(child: &mut Child, timeout: Duration) -> Result<ExitStatus, HookExit> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(None) => {
                kill_group(child);
                let _ = child.wait();
                return Err(HookExit::TimedOut {
                    secs: timeout.as_secs(),
                });
            }
            Err(e) => {
                kill_group(child);
                let _ = child.wait();
                return Err(HookExit::Spawn(format!("cannot wait for it: {e}")));
            }
        }
    }
}

fn kill_group(child: &mut Child) {
    let group = i32::try_from(child.id()).ok().and_then(Pid::from_raw);
    let killed = group.is_some_and(|g| kill_process_group(g, Signal::KILL).is_ok());
    if !killed {
        let _ = child.kill();
    }
}

fn exit_of(status: ExitStatus) -> HookExit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => HookExit::Code(code),
        (None, Some(signal)) => HookExit::Signal(signal),
        (None, None) => HookExit::Code(-1),
    }
}

/// The end of a hook's stderr, read on a thread of its own so a chatty
/// hook never blocks on a full pipe.
struct StderrTail {
    kept: Arc<Mutex<Vec<u8>>>,
    done: Option<mpsc::Receiver<()>>,
}

impl StderrTail {
    fn start(child: &mut Child) -> StderrTail {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let Some(mut pipe) = child.stderr.take() else {
            return StderrTail { kept, done: None };
        };
        let (tx, rx) = mpsc::channel();
        let sink = kept.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                let mut kept = sink.lock().unwrap_or_else(|e| e.into_inner());
                kept.extend_from_slice(&buf[..n]);
                let excess = kept.len().saturating_sub(STDERR_KEPT);
                kept.drain(..excess);
            }
            let _ = tx.send(());
        });
        StderrTail {
            kept,
            done: Some(rx),
        }
    }

    /// What was read once the pipe closed, or after a short grace.
    fn collect(self) -> Vec<u8> {
        if let Some(done) = &self.done {
            let _ = done.recv_timeout(STDERR_GRACE);
        }
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn run(v: &[&str], timeout: Duration) -> Result<(), HookFailure> {
        run_command(Stage::Before, &argv(v), &[("X", "42".into())], timeout)
    }

    #[test]
    fn success_exit_codes_and_stderr() {
        let long = Duration::from_secs(10);
        assert_eq!(run(&["true"], long), Ok(()));
        let e = run(
            &["sh", "-c", "echo first >&2; echo \"x=$X\" >&2; exit 3"],
            long,
        )
        .unwrap_err();
        assert_eq!(e.exit, HookExit::Code(3));
        assert_eq!(e.stderr_tail.as_deref(), Some("x=42"));
        let e = run(&["sh", "-c", "kill -TERM $$"], long).unwrap_err();
        assert_eq!(e.exit, HookExit::Signal(15));
        let e = run(&["/nonexistent/hook"], long).unwrap_err();
        assert!(matches!(e.exit, HookExit::Spawn(_)), "{e:?}");
    }

    #[test]
    fn a_hung_hook_and_its_children_are_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let started = Instant::now();
        let e = run(&["sh", "-c", &script], Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.exit, HookExit::TimedOut { secs: 1 });
        assert!(started.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(
            !marker.exists(),
            "the hook's background child was killed too"
        );
    }

    #[test]
    fn a_background_process_left_running_does_not_hold_the_hook() {
        let started = Instant::now();
        let r = run(
            &["sh", "-c", "sleep 5 & echo started >&2"],
            Duration::from_secs(10),
        );
        assert_eq!(r, Ok(()));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
