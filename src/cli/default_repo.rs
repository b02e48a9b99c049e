//! REPO may be left out when something else names the repository:
//! `--repo-file FILE`, the repository of `--profile NAME` (or
//! `$SNAPKEEP_PROFILE`), or `$SNAPKEEP_REPOSITORY`, in that order.
//!
//! Clap cannot make a first positional optional while later ones stay
//! required, so the command line is parsed as written first; only when
//! that fails for a missing argument, and inserting a repository right
//! after the subcommand's name makes it parse, is the default put there.
//! Every command whose first positional is named `repo` gets this without
//! code of its own.

use std::ffi::OsString;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use super::args::Cli;
use super::profiles;
use crate::native::error::{Error, Result};

/// Why the command line gave no command to run.
pub enum ParseFailure {
    /// Clap's own error (help and version included).
    Clap(clap::Error),
    /// REPO was left out and nothing names a default, or the default
    /// could not be read.
    Repository(Error),
}

/// Parses `args`, putting the default repository in when REPO was left out.
pub fn parse(args: Vec<OsString>) -> std::result::Result<Cli, ParseFailure> {
    let first = match Cli::try_parse_from(&args) {
        Ok(cli) => return Ok(cli),
        Err(e) => e,
    };
    if first.kind() != ErrorKind::MissingRequiredArgument {
        return Err(ParseFailure::Clap(first));
    }
    let Some(slot) = repo_slot(&args) else {
        return Err(ParseFailure::Clap(first));
    };
    // A stand-in shows whether a repository is all that is missing, and
    // reads --repo-file and --profile the way clap parses them.
    let Ok(probe) = Cli::try_parse_from(with_repo(&args, slot, "\u{0}repo".into())) else {
        return Err(ParseFailure::Clap(first));
    };
    let repo = default_repository(&probe).map_err(ParseFailure::Repository)?;
    Cli::try_parse_from(with_repo(&args, slot, repo.into())).map_err(ParseFailure::Clap)
}

/// The default repository, in the order the module doc gives.
fn default_repository(cli: &Cli) -> Result<String> {
    if let Some(file) = &cli.repo_file {
        return read_repo_file(file);
    }
    if let Some(name) = &cli.profile {
        if let Some(repo) = profiles::load(name)?.repository {
            return Ok(repo);
        }
    }
    match std::env::var("SNAPKEEP_REPOSITORY") {
        Ok(r) if !r.is_empty() => Ok(r),
        _ => Err(Error::Usage(match &cli.profile {
            Some(name) => format!(
                "no repository given: profile [{name}] has no repository; pass REPO or set SNAPKEEP_REPOSITORY"
            ),
            None => "no repository given: pass REPO or set SNAPKEEP_REPOSITORY (or use --repo-file FILE, --profile NAME)".into(),
        })),
    }
}

/// The first line of `--repo-file`, as restic reads its `--repository-file`.
fn read_repo_file(file: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Error::Usage(format!(
            "--repo-file {}: cannot read it: {e}",
            file.display()
        ))
    })?;
    match text.lines().next().map(str::trim) {
        Some(line) if !line.is_empty() => Ok(line.to_string()),
        _ => Err(Error::Usage(format!(
            "--repo-file {}: the file is empty (it should hold the repository location)",
            file.display()
        ))),
    }
}

/// Where REPO belongs: right after the last subcommand name, when that
/// subcommand's first positional is `repo`.
fn repo_slot(args: &[OsString]) -> Option<usize> {
    let root = Cli::command();
    let mut cmd = &root;
    let mut slot = None;
    for (i, arg) in args.iter().enumerate().skip(1) {
        if !cmd.has_subcommands() {
            break;
        }
        if let Some(sub) = arg.to_str().and_then(|a| cmd.find_subcommand(a)) {
            cmd = sub;
            slot = Some(i + 1);
        }
    }
    let first = cmd.get_positionals().next()?;
    (first.get_id() == "repo").then_some(slot?)
}

fn with_repo(args: &[OsString], slot: usize, repo: OsString) -> Vec<OsString> {
    let mut out = args.to_vec();
    out.insert(slot, repo);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_slot_follows_the_subcommand_that_takes_a_repository() {
        assert_eq!(
            repo_slot(&os(&["snapkeep", "-q", "snapshot", "get", "n1"])),
            Some(4)
        );
        assert_eq!(repo_slot(&os(&["snapkeep", "restore", "n1"])), Some(2));
        // A snapshot named like a subcommand is not one.
        assert_eq!(
            repo_slot(&os(&["snapkeep", "snapshot", "get", "list"])),
            Some(3)
        );
        assert_eq!(repo_slot(&os(&["snapkeep", "slm", "get"])), None);
        assert_eq!(repo_slot(&os(&["snapkeep", "snapshot"])), None);
    }
}
