//! Consistency hooks: commands a snapshot runs before and after it reads
//! an index (a database's backup start/stop, a filesystem freeze). This
//! module decides which hook applies to an index, how a failed run reads
//! in a snapshot's `failures`, and what failures make of the snapshot; the
//! shell only runs the processes.

use std::fmt;

use crate::core::es::patterns::NamePatterns;
use crate::core::format::manifest::{Failure, SnapshotState};

/// How long a hook may run when its entry names no `timeout_secs`.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// The longest stderr line a failure quotes; hooks may print a lot.
const MAX_QUOTED: usize = 300;

/// A hook entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookRuleError {
    #[error("hooks[{entry}].indices is empty (use \"*\" for every index)")]
    NoIndices { entry: usize },
    #[error("hooks[{entry}].{stage} is an empty command (give at least the program)")]
    EmptyCommand { entry: usize, stage: Stage },
    #[error("hooks[{entry}] has neither `before` nor `after`")]
    NoCommand { entry: usize },
    #[error("hooks[{entry}].timeout_secs must be at least 1")]
    ZeroTimeout { entry: usize },
}

/// When a hook runs, relative to its index's read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Before,
    After,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Before => "before",
            Stage::After => "after",
        })
    }
}

/// One `[[hooks]]` entry: the indices it applies to and its commands, each
/// an argv (program, then arguments; no shell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRule {
    /// The entry's `indices` as written, for messages.
    pub indices_text: String,
    indices: NamePatterns,
    pub before: Option<Vec<String>>,
    pub after: Option<Vec<String>>,
    pub timeout_secs: u64,
}

impl HookRule {
    /// Checks entry number `entry` (0-based, as the config lists them).
    pub fn new(
        entry: usize,
        indices: &str,
        before: Option<Vec<String>>,
        after: Option<Vec<String>>,
        timeout_secs: Option<u64>,
    ) -> Result<HookRule, HookRuleError> {
        if indices.split(',').all(|p| p.trim().is_empty()) {
            return Err(HookRuleError::NoIndices { entry });
        }
        for (stage, argv) in [(Stage::Before, &before), (Stage::After, &after)] {
            if argv
                .as_ref()
                .is_some_and(|a| a.first().is_none_or(|p| p.is_empty()))
            {
                return Err(HookRuleError::EmptyCommand { entry, stage });
            }
        }
        if before.is_none() && after.is_none() {
            return Err(HookRuleError::NoCommand { entry });
        }
        let timeout_secs = timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if timeout_secs == 0 {
            return Err(HookRuleError::ZeroTimeout { entry });
        }
        Ok(HookRule {
            indices_text: indices.to_string(),
            indices: NamePatterns::parse(indices),
            before,
            after,
            timeout_secs,
        })
    }

    /// The command for `stage`, if the entry has one.
    pub fn command(&self, stage: Stage) -> Option<&[String]> {
        match stage {
            Stage::Before => self.before.as_deref(),
            Stage::After => self.after.as_deref(),
        }
    }
}

/// Every entry, in the config's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookRules {
    pub rules: Vec<HookRule>,
}

impl HookRules {
    /// The entry that applies to `index`: the first whose `indices`
    /// patterns select it (list specific patterns before general ones).
    /// One entry per index keeps the bracket simple: its `after` runs
    /// exactly when its `before` ran.
    pub fn for_index(&self, index: &str) -> Option<&HookRule> {
        self.rules.iter().find(|r| r.indices.matches(index))
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// How a hook's process ended, when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookExit {
    Code(i32),
    Signal(i32),
    /// Still running at its timeout; it was killed.
    TimedOut {
        secs: u64,
    },
    /// It could not be started at all.
    Spawn(String),
}

/// A hook that did not succeed, as a snapshot's failure reason says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookFailure {
    pub stage: Stage,
    pub program: String,
    pub exit: HookExit,
    /// The last non-empty line the hook wrote to stderr.
    pub stderr_tail: Option<String>,
}

impl fmt::Display for HookFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} hook [{}] ", self.stage, self.program)?;
        match &self.exit {
            HookExit::Code(c) => write!(f, "failed with exit code {c}")?,
            HookExit::Signal(s) => write!(f, "was killed by signal {s}")?,
            HookExit::TimedOut { secs } => write!(f, "timed out after {secs}s and was killed")?,
            HookExit::Spawn(e) => write!(f, "could not be started: {e}")?,
        }
        match &self.stderr_tail {
            Some(line) => write!(f, ": {line}"),
            None => Ok(()),
        }
    }
}

impl HookFailure {
    /// The failure of `index` a snapshot records: the whole index (no
    /// path), since a hook speaks for all of it.
    pub fn of_index(&self, index: &str) -> Failure {
        Failure {
            index: index.to_string(),
            path: String::new(),
            reason: self.to_string(),
        }
    }
}

/// The last non-empty line of a hook's stderr, shortened to a quote.
pub fn last_line(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let mut quoted: String = line.chars().take(MAX_QUOTED).collect();
    if quoted.len() < line.len() {
        quoted.push('…');
    }
    Some(quoted)
}

/// What a snapshot's failures (files that could not be read, indices whose
/// hooks failed) make of it: SUCCESS without any; PARTIAL with some when
/// the request allows it; otherwise the first failure fails the snapshot,
/// which is then not committed. A snapshot whose data a failed hook may
/// have left inconsistent is thus never reported SUCCESS.
pub fn snapshot_state(partial: bool, failures: &[Failure]) -> Result<SnapshotState, &Failure> {
    match failures.first() {
        None => Ok(SnapshotState::Success),
        Some(_) if partial => Ok(SnapshotState::Partial),
        Some(first) => Err(first),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn argv(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    fn rule(indices: &str, program: &str) -> HookRule {
        HookRule::new(0, indices, argv(&[program]), None, None).unwrap()
    }

    #[test]
    fn the_first_matching_entry_applies() {
        let rules = HookRules {
            rules: vec![
                rule("db-main", "main"),
                rule("db-*,-db-tmp", "db"),
                rule("*", "all"),
            ],
        };
        let program = |index: &str| {
            rules
                .for_index(index)
                .map(|r| r.before.clone().unwrap()[0].clone())
        };
        assert_eq!(program("db-main").as_deref(), Some("main"));
        assert_eq!(program("db-2").as_deref(), Some("db"));
        assert_eq!(program("db-tmp").as_deref(), Some("all"));
        assert_eq!(program("logs").as_deref(), Some("all"));
        let only_db = HookRules {
            rules: vec![rule("db-*", "db")],
        };
        assert!(only_db.for_index("logs").is_none());
        assert!(HookRules::default().for_index("db-1").is_none());
    }

    #[test]
    fn entries_are_checked() {
        let new = |indices: &str, before, after, timeout| {
            HookRule::new(2, indices, before, after, timeout)
        };
        assert_eq!(
            new(" , ", argv(&["x"]), None, None),
            Err(HookRuleError::NoIndices { entry: 2 })
        );
        assert_eq!(
            new("*", argv(&[]), None, None),
            Err(HookRuleError::EmptyCommand {
                entry: 2,
                stage: Stage::Before
            })
        );
        assert_eq!(
            new("*", argv(&["x"]), argv(&[""]), None),
            Err(HookRuleError::EmptyCommand {
                entry: 2,
                stage: Stage::After
            })
        );
        assert_eq!(
            new("*", None, None, None),
            Err(HookRuleError::NoCommand { entry: 2 })
        );
        assert_eq!(
            new("*", None, argv(&["x"]), Some(0)),
            Err(HookRuleError::ZeroTimeout { entry: 2 })
        );
        let ok = new("*", None, argv(&["x", "y"]), None).unwrap();
        assert_eq!(ok.timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert_eq!(ok.command(Stage::Before), None);
        assert_eq!(ok.command(Stage::After).unwrap()[1], "y");
        let text = HookRuleError::EmptyCommand {
            entry: 1,
            stage: Stage::After,
        }
        .to_string();
        assert_eq!(
            text,
            "hooks[1].after is an empty command (give at least the program)"
        );
    }

    #[test]
    fn failures_name_the_hook_how_it_ended_and_its_last_words() {
        let failure = |exit, tail: Option<&str>| HookFailure {
            stage: Stage::Before,
            program: "psql".into(),
            exit,
            stderr_tail: tail.map(str::to_string),
        };
        assert_eq!(
            failure(HookExit::Code(3), Some("FATAL: no such role")).to_string(),
            "before hook [psql] failed with exit code 3: FATAL: no such role"
        );
        assert_eq!(
            failure(HookExit::TimedOut { secs: 2 }, None).to_string(),
            "before hook [psql] timed out after 2s and was killed"
        );
        let f = HookFailure {
            stage: Stage::After,
            ..failure(HookExit::Signal(9), None)
        }
        .of_index("db-1");
        assert_eq!(f.index, "db-1");
        assert_eq!(f.path, "");
        assert_eq!(f.reason, "after hook [psql] was killed by signal 9");
    }

    #[test]
    fn the_last_line_of_stderr_is_quoted() {
        assert_eq!(
            last_line(b"starting\nERROR: boom\n\n  \n").as_deref(),
            Some("ERROR: boom")
        );
        assert_eq!(last_line(b""), None);
        assert_eq!(last_line(b"\n \n"), None);
        let long = "x".repeat(1000);
        let quoted = last_line(long.as_bytes()).unwrap();
        assert_eq!(quoted.chars().count(), MAX_QUOTED + 1);
        assert!(quoted.ends_with('…'));
        assert_eq!(
            last_line(b"bad \xff byte").as_deref(),
            Some("bad \u{fffd} byte")
        );
    }

    #[test]
    fn failures_make_a_snapshot_partial_or_fail_it() {
        let failed = HookFailure {
            stage: Stage::After,
            program: "thaw".into(),
            exit: HookExit::Code(1),
            stderr_tail: None,
        }
        .of_index("db-1");
        assert_eq!(snapshot_state(false, &[]), Ok(SnapshotState::Success));
        assert_eq!(snapshot_state(true, &[]), Ok(SnapshotState::Success));
        let failures = [failed.clone()];
        assert_eq!(snapshot_state(true, &failures), Ok(SnapshotState::Partial));
        assert_eq!(snapshot_state(false, &failures), Err(&failed));
    }
}
