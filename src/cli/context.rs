//! What every command shares: how to reach repositories and whether to talk.

use super::profiles::{self, Profile};
use crate::core::policy::selection::Selection;
use crate::native::error::{Error, Result};
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
    /// `--profile`'s name: its settings apply to every repository.
    profile: Option<String>,
}

impl Ctx {
    pub fn new(
        quiet: bool,
        options: Vec<(String, String)>,
        token: Option<String>,
        profile: Option<String>,
    ) -> Self {
        Ctx {
            quiet,
            options,
            token,
            profile,
        }
    }

    /// Prints a line of human-readable output unless `--quiet`.
    pub fn say(&self, s: String) {
        if !self.quiet {
            println!("{s}");
        }
    }

    /// The location REPO names. `@NAME` is profile NAME's repository; a
    /// profile's storage options and credentials come first, so
    /// `--storage-option` and `--token` override them.
    pub fn location(&self, repo: &str) -> Result<Location> {
        let named = repo.strip_prefix('@');
        let profile = match named.or(self.profile.as_deref()) {
            Some(name) => profiles::load(name)?,
            None => Profile::default(),
        };
        let repo = match (named, &profile.repository) {
            (None, _) => repo,
            (Some(_), Some(r)) => r.as_str(),
            (Some(name), None) => {
                return Err(Error::Usage(format!("profile [{name}] has no repository")))
            }
        };
        let mut options = profile.options;
        options.extend(self.options.iter().cloned());
        let token = self.token.clone().or(profile.token);
        Ok(Location::parse_with(repo, &options)?.with_token(token))
    }

    /// Opens REPO; a missing repository is named as the user typed it.
    pub fn open(&self, repo: &str) -> Result<Repo> {
        Repo::open(&self.location(repo)?).map_err(|e| as_typed(e, repo))
    }
}

/// The location in a "no repository" error as REPO was typed (a relative
/// path stays relative, `@profile` stays the profile), not as the storage
/// names it (`file:///abs/path`).
pub fn as_typed(e: Error, repo: &str) -> Error {
    match e {
        Error::NotARepository(_) => Error::NotARepository(repo.to_string()),
        other => other,
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
