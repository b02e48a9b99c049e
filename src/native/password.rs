//! Where a repository password comes from, in the order restic users
//! expect: `--password-command`, then `SNAPKEEP_PASSWORD_FILE`, then
//! `SNAPKEEP_PASSWORD`, then a prompt when standard input is a terminal.
//! Asked for only when a command opens an encrypted repository (format
//! v2, docs/FORMAT.md), once per process.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use std::sync::{Mutex, OnceLock};

use zeroize::Zeroizing;

use crate::repo::keyring::Unlock;
use crate::repo::sealing::NonceSource;

pub const PASSWORD_ENV: &str = "SNAPKEEP_PASSWORD";
pub const PASSWORD_FILE_ENV: &str = "SNAPKEEP_PASSWORD_FILE";
/// The new password of `repo key add` and `repo key passwd`.
pub const NEW_PASSWORD_ENV: &str = "SNAPKEEP_NEW_PASSWORD";
/// The source repository's password of `snapshot copy`, as restic's
/// `RESTIC_FROM_PASSWORD` and `RESTIC_FROM_PASSWORD_FILE`.
pub const FROM_PASSWORD_ENV: &str = "SNAPKEEP_FROM_PASSWORD";
pub const FROM_PASSWORD_FILE_ENV: &str = "SNAPKEEP_FROM_PASSWORD_FILE";

pub use crate::repo::keyring::Password;

/// One place a password is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// `sh -c COMMAND`; its standard output, less one trailing newline.
    Command(String),
    /// A file's content, less one trailing newline.
    File(PathBuf),
    /// The value of `SNAPKEEP_PASSWORD`.
    Env(OsString),
    /// Asked for on the terminal, not echoed.
    Prompt,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    #[error("no password given: set SNAPKEEP_PASSWORD or SNAPKEEP_PASSWORD_FILE, pass --password-command, or run on a terminal to be asked")]
    NoSource,
    #[error("give one password source, not {0} and {1}")]
    Conflicting(&'static str, &'static str),
    #[error("cannot read the password file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run the password command {command:?}: {source}")]
    CommandSpawn {
        command: String,
        source: std::io::Error,
    },
    #[error("the password command {command:?} failed ({status})")]
    CommandFailed { command: String, status: String },
    #[error("cannot read the password from the terminal: {0}")]
    Prompt(std::io::Error),
    #[error("the password from {0} is empty")]
    Empty(&'static str),
    #[error("the two passwords typed differ; nothing was changed")]
    Mismatch,
    #[error("no new password given: pass --new-password-file, set SNAPKEEP_NEW_PASSWORD, or run on a terminal to be asked")]
    NoNewSource,
}

/// The source a command uses, from its `--password-command`, the
/// environment (looked up through `env`, so tests pass their own) and
/// whether standard input is a terminal.
pub fn choose_source(
    command: Option<&str>,
    env: impl Fn(&str) -> Option<OsString>,
    stdin_is_terminal: bool,
) -> Result<PasswordSource, PasswordError> {
    let file = env(PASSWORD_FILE_ENV).filter(|v| !v.is_empty());
    let value = env(PASSWORD_ENV);
    match (command, file, value) {
        (Some(_), Some(_), _) => Err(PasswordError::Conflicting(
            "--password-command",
            PASSWORD_FILE_ENV,
        )),
        (Some(_), None, Some(_)) => Err(PasswordError::Conflicting(
            "--password-command",
            PASSWORD_ENV,
        )),
        (None, Some(_), Some(_)) => {
            Err(PasswordError::Conflicting(PASSWORD_FILE_ENV, PASSWORD_ENV))
        }
        (Some(c), None, None) => Ok(PasswordSource::Command(c.to_string())),
        (None, Some(f), None) => Ok(PasswordSource::File(PathBuf::from(f))),
        (None, None, Some(v)) => Ok(PasswordSource::Env(v)),
        (None, None, None) if stdin_is_terminal => Ok(PasswordSource::Prompt),
        (None, None, None) => Err(PasswordError::NoSource),
    }
}

/// `--password-command`, set once by the CLI before any repository opens.
static COMMAND: OnceLock<Option<String>> = OnceLock::new();
/// The password once read, so a process that opens several repositories
/// (or one twice) asks once.
static CACHED: Mutex<Option<Password>> = Mutex::new(None);

/// Records the command line's `--password-command`.
pub fn set_command(command: Option<String>) {
    let _ = COMMAND.set(command);
}

/// The process's password, read on first use.
pub fn process_password() -> Result<Password, PasswordError> {
    let mut cached = CACHED.lock().unwrap();
    if let Some(p) = cached.as_ref() {
        return Ok(p.clone());
    }
    let command = COMMAND.get().and_then(|c| c.as_deref());
    let p = password(command)?;
    *cached = Some(p.clone());
    Ok(p)
}

/// Fills `out` from the operating system's random source (getrandom).
pub fn os_random(out: &mut [u8]) {
    // Without the OS's random source no key, salt or nonce can be made
    // safely; there is nothing sensible to fall back to.
    getrandom::fill(out).expect("the operating system's random source answers");
}

/// How native shells unlock encrypted repositories: the process's
/// password, nonces from the OS.
pub struct NativeUnlock;

impl Unlock for NativeUnlock {
    fn password(&self, location: &str) -> crate::error::Result<Password> {
        process_password().map_err(|e| match e {
            PasswordError::NoSource => crate::error::Error::Encrypted(location.to_string()),
            e => crate::error::Error::Password(e.to_string()),
        })
    }
    fn nonces(&self) -> Option<NonceSource> {
        Some(os_random)
    }
}

/// The password of the repository `snapshot copy` reads from, when it is
/// not the process's own: `--from-password-command`,
/// `--from-password-file`, `SNAPKEEP_FROM_PASSWORD_FILE` or
/// `SNAPKEEP_FROM_PASSWORD` (one of them). With none, both repositories
/// open with the process's password.
pub struct FromUnlock {
    source: Option<PasswordSource>,
}

impl FromUnlock {
    pub fn new(
        command: Option<String>,
        file: Option<PathBuf>,
    ) -> Result<FromUnlock, PasswordError> {
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Self::choose(command, file, env)
    }

    fn choose(
        command: Option<String>,
        file: Option<PathBuf>,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<FromUnlock, PasswordError> {
        let given: Vec<(&'static str, PasswordSource)> = [
            command.map(|c| ("--from-password-command", PasswordSource::Command(c))),
            file.map(|f| ("--from-password-file", PasswordSource::File(f))),
            env(FROM_PASSWORD_FILE_ENV).map(|f| {
                (
                    FROM_PASSWORD_FILE_ENV,
                    PasswordSource::File(PathBuf::from(f)),
                )
            }),
            env(FROM_PASSWORD_ENV).map(|v| (FROM_PASSWORD_ENV, PasswordSource::Env(v))),
        ]
        .into_iter()
        .flatten()
        .collect();
        match given.as_slice() {
            [] => Ok(FromUnlock { source: None }),
            [(_, source)] => Ok(FromUnlock {
                source: Some(source.clone()),
            }),
            [(a, _), (b, _), ..] => Err(PasswordError::Conflicting(a, b)),
        }
    }
}

impl Unlock for FromUnlock {
    fn password(&self, location: &str) -> crate::error::Result<Password> {
        match &self.source {
            None => NativeUnlock.password(location),
            Some(source) => read(source).map_err(|e| crate::error::Error::Password(e.to_string())),
        }
    }
    fn nonces(&self) -> Option<NonceSource> {
        Some(os_random)
    }
}

/// A password being set (`repo init --encryption`, `repo key add`):
/// `--new-password-file` (`file`), then `env_name`, then the process's
/// own sources when `env_name` is `SNAPKEEP_PASSWORD`, then a prompt typed
/// twice. `repo init` records it as the process's password.
pub fn new_password(
    file: Option<&std::path::Path>,
    env_name: &str,
    what: &str,
) -> crate::error::Result<Password> {
    let fail = |e: PasswordError| crate::error::Error::Password(e.to_string());
    let on_terminal = std::io::stdin().is_terminal();
    let source = if let Some(path) = file {
        PasswordSource::File(path.to_path_buf())
    } else if env_name == PASSWORD_ENV {
        let command = COMMAND.get().and_then(|c| c.as_deref());
        choose_source(command, |n| std::env::var_os(n), on_terminal).map_err(fail)?
    } else if let Some(v) = std::env::var_os(env_name) {
        PasswordSource::Env(v)
    } else if on_terminal {
        PasswordSource::Prompt
    } else {
        return Err(fail(PasswordError::NoNewSource));
    };
    let password = match source {
        PasswordSource::Prompt => prompt_twice(what).map_err(fail)?,
        other => read(&other).map_err(fail)?,
    };
    if env_name == PASSWORD_ENV {
        *CACHED.lock().unwrap() = Some(password.clone());
    }
    Ok(password)
}

fn prompt_twice(what: &str) -> Result<Password, PasswordError> {
    let ask = |prompt: String| {
        rpassword::prompt_password(prompt)
            .map(|t| Zeroizing::new(t.into_bytes()))
            .map_err(PasswordError::Prompt)
    };
    let first = ask(format!("New {what}: "))?;
    let again = ask(format!("New {what} again: "))?;
    if first != again {
        return Err(PasswordError::Mismatch);
    }
    if first.is_empty() {
        return Err(PasswordError::Empty("the prompt"));
    }
    Ok(first)
}

/// The password of this process: [`choose_source`] over the real
/// environment and standard input, then [`read`].
pub fn password(command: Option<&str>) -> Result<Password, PasswordError> {
    let source = choose_source(
        command,
        |name| std::env::var_os(name),
        std::io::stdin().is_terminal(),
    )?;
    read(&source)
}

/// The password `source` gives. An empty one is refused: it would open
/// nothing a user meant to protect.
pub fn read(source: &PasswordSource) -> Result<Password, PasswordError> {
    let (bytes, what) = match source {
        PasswordSource::Command(command) => (run_command(command)?, "--password-command"),
        PasswordSource::File(path) => {
            let bytes = std::fs::read(path).map_err(|source| PasswordError::File {
                path: path.clone(),
                source,
            })?;
            (Zeroizing::new(bytes), PASSWORD_FILE_ENV)
        }
        PasswordSource::Env(value) => (
            Zeroizing::new(value.as_encoded_bytes().to_vec()),
            PASSWORD_ENV,
        ),
        PasswordSource::Prompt => {
            let typed = rpassword::prompt_password("Repository password: ")
                .map_err(PasswordError::Prompt)?;
            (Zeroizing::new(typed.into_bytes()), "the prompt")
        }
    };
    let bytes = without_trailing_newline(bytes);
    if bytes.is_empty() {
        return Err(PasswordError::Empty(what));
    }
    Ok(bytes)
}

fn run_command(command: &str) -> Result<Password, PasswordError> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| PasswordError::CommandSpawn {
            command: command.to_string(),
            source,
        })?;
    if !output.status.success() {
        return Err(PasswordError::CommandFailed {
            command: command.to_string(),
            status: output.status.to_string(),
        });
    }
    Ok(Zeroizing::new(output.stdout))
}

/// One trailing `\n` or `\r\n` removed: what `echo` and editors add.
fn without_trailing_newline(mut bytes: Password) -> Password {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn copy_source_password_is_one_source_or_the_process_password() {
        let chosen = |c: Option<&str>, f: Option<&str>, vars| {
            FromUnlock::choose(c.map(Into::into), f.map(Into::into), env(vars)).map(|u| u.source)
        };
        assert_eq!(chosen(None, None, &[(PASSWORD_ENV, "dst")]).unwrap(), None);
        assert_eq!(
            chosen(Some("pass src"), None, &[(PASSWORD_ENV, "dst")]).unwrap(),
            Some(PasswordSource::Command("pass src".into()))
        );
        assert_eq!(
            chosen(None, None, &[(FROM_PASSWORD_ENV, "src")]).unwrap(),
            Some(PasswordSource::Env("src".into()))
        );
        assert_eq!(
            chosen(None, None, &[(FROM_PASSWORD_FILE_ENV, "/k")]).unwrap(),
            Some(PasswordSource::File("/k".into()))
        );
        assert!(matches!(
            chosen(Some("c"), Some("/k"), &[]),
            Err(PasswordError::Conflicting(
                "--from-password-command",
                "--from-password-file"
            ))
        ));
        assert!(matches!(
            chosen(None, Some("/k"), &[(FROM_PASSWORD_ENV, "src")]),
            Err(PasswordError::Conflicting(
                "--from-password-file",
                FROM_PASSWORD_ENV
            ))
        ));
    }

    #[test]
    fn sources_are_chosen_in_order_and_conflicts_refused() {
        assert_eq!(
            choose_source(Some("pass show x"), env(&[]), true).unwrap(),
            PasswordSource::Command("pass show x".into())
        );
        assert_eq!(
            choose_source(None, env(&[(PASSWORD_FILE_ENV, "/k")]), true).unwrap(),
            PasswordSource::File("/k".into())
        );
        assert_eq!(
            choose_source(None, env(&[(PASSWORD_ENV, "pw")]), false).unwrap(),
            PasswordSource::Env("pw".into())
        );
        assert_eq!(
            choose_source(None, env(&[]), true).unwrap(),
            PasswordSource::Prompt
        );
        assert!(matches!(
            choose_source(None, env(&[]), false),
            Err(PasswordError::NoSource)
        ));
        assert!(matches!(
            choose_source(
                None,
                env(&[(PASSWORD_ENV, "a"), (PASSWORD_FILE_ENV, "/k")]),
                true
            ),
            Err(PasswordError::Conflicting(PASSWORD_FILE_ENV, PASSWORD_ENV))
        ));
        assert!(matches!(
            choose_source(Some("c"), env(&[(PASSWORD_ENV, "a")]), true),
            Err(PasswordError::Conflicting(
                "--password-command",
                PASSWORD_ENV
            ))
        ));
    }

    #[test]
    fn a_file_loses_one_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        for (content, want) in [
            (&b"secret\n"[..], &b"secret"[..]),
            (b"secret\r\n", b"secret"),
            (b"secret", b"secret"),
            (b"two lines\n\n", b"two lines\n"),
            (b" spaced ", b" spaced "),
        ] {
            let path = dir.path().join("pw");
            std::fs::write(&path, content).unwrap();
            assert_eq!(read(&PasswordSource::File(path)).unwrap().as_slice(), want);
        }
        let missing = dir.path().join("missing");
        assert!(matches!(
            read(&PasswordSource::File(missing)),
            Err(PasswordError::File { .. })
        ));
    }

    #[test]
    fn a_command_gives_its_output_and_a_failure_is_named() {
        let got = read(&PasswordSource::Command("printf 'from command\\n'".into())).unwrap();
        assert_eq!(got.as_slice(), b"from command");
        assert!(matches!(
            read(&PasswordSource::Command("echo nope; exit 3".into())),
            Err(PasswordError::CommandFailed { .. })
        ));
    }

    #[test]
    fn empty_passwords_are_refused() {
        assert!(matches!(
            read(&PasswordSource::Env("".into())),
            Err(PasswordError::Empty(PASSWORD_ENV))
        ));
        assert!(matches!(
            read(&PasswordSource::Command("echo".into())),
            Err(PasswordError::Empty("--password-command"))
        ));
    }

    #[test]
    fn the_environment_value_is_taken_as_is() {
        assert_eq!(
            read(&PasswordSource::Env("pw with spaces ".into()))
                .unwrap()
                .as_slice(),
            b"pw with spaces "
        );
    }
}
