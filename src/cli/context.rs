//! What every command shares: how to reach repositories and whether to talk.

use crate::core::policy::selection::Selection;
use crate::native::error::Result;
use crate::native::location::Location;
use crate::native::repo::Repo;

/// The global options every command runs under.
pub struct Ctx {
    /// `--quiet`: print nothing but errors (and `--json` output).
    pub quiet: bool,
    /// `--storage-option`s, applied to every repository location.
    options: Vec<(String, String)>,
    /// `--token`, for edge repositories.
    token: Option<String>,
}

impl Ctx {
    pub fn new(quiet: bool, options: Vec<(String, String)>, token: Option<String>) -> Self {
        Ctx {
            quiet,
            options,
            token,
        }
    }

    /// Prints a line of human-readable output unless `--quiet`.
    pub fn say(&self, s: String) {
        if !self.quiet {
            println!("{s}");
        }
    }

    pub fn location(&self, repo: &str) -> Result<Location> {
        Ok(Location::parse_with(repo, &self.options)?.with_token(self.token.clone()))
    }

    pub fn open(&self, repo: &str) -> Result<Repo> {
        Repo::open(&self.location(repo)?)
    }
}

/// `--indices`: everything when absent; a given list must match something
/// (a typo in a cron job's pattern fails instead of doing nothing).
pub fn selection(indices: Option<&str>) -> Result<Selection> {
    Ok(match indices {
        Some(expr) => Selection::parse(expr)?.requiring_a_match(),
        None => Selection::all(),
    })
}
