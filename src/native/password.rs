//! Where a repository password comes from, in the order restic users
//! expect: `--password-command`, then `SNAPKEEP_PASSWORD_FILE`, then
//! `SNAPKEEP_PASSWORD`, then a prompt when standard input is a terminal.
//! Not yet used by any command: the encrypted repositories of format v2
//! (docs/FORMAT.md) will open with it.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

pub const PASSWORD_ENV: &str = "SNAPKEEP_PASSWORD";
pub const PASSWORD_FILE_ENV: &str = "SNAPKEEP_PASSWORD_FILE";

/// A password's bytes, wiped when dropped.
pub type Password = Zeroizing<Vec<u8>>;

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
