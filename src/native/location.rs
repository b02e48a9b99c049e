//! Turning a REPO argument into a storage backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::native::error::{Error, Result};
use crate::storage::edge::{self, EdgeStore};
use crate::storage::local::LocalStore;
use crate::storage::memory::MemoryStore;
use crate::storage::object::{split_url, ObjectStorage};
use crate::storage::retry::RetryStore;
use crate::storage::timeouts::{Timeouts, KEYS};
use crate::storage::{Storage, StorageError};

/// Where a repository lives, parsed from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    Memory,
    /// `s3://`, `az://` or `gs://` URL with `--storage-option` settings.
    Object {
        url: String,
        options: Vec<(String, String)>,
    },
    /// A repository behind snapkeep's edge Worker,
    /// `https://HOST/api/repos/NAME`, with its bearer token and
    /// `--storage-option` settings (time limits only).
    Edge {
        base: String,
        token: Option<String>,
        options: Vec<(String, String)>,
    },
}

impl Location {
    pub fn parse(s: &str) -> Result<Location> {
        Self::parse_with(s, &[])
    }

    /// Parses `s`; `options` apply to remote repositories only.
    pub fn parse_with(s: &str, options: &[(String, String)]) -> Result<Location> {
        if let Some(rest) = s.strip_prefix("file://") {
            if rest.is_empty() {
                return Err(Error::BadLocation(s.into()));
            }
            return Ok(Location::Local(PathBuf::from(rest)));
        }
        if s == "memory://" {
            return Ok(Location::Memory);
        }
        if let Some(edge) = edge::parse_url(s) {
            let base = edge.map_err(Error::Usage)?;
            let token = std::env::var("SNAPKEEP_TOKEN")
                .ok()
                .filter(|t| !t.is_empty());
            return Ok(Location::Edge {
                base,
                token,
                options: options.to_vec(),
            });
        }
        if let Some((scheme, _)) = s.split_once("://") {
            if split_url(s).is_some() {
                return Ok(Location::Object {
                    url: s.to_string(),
                    options: options.to_vec(),
                });
            }
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+')
            {
                return Err(Error::BadLocation(s.into()));
            }
        }
        if s.is_empty() {
            return Err(Error::BadLocation(s.into()));
        }
        Ok(Location::Local(PathBuf::from(s)))
    }

    /// The same location with an explicit bearer token (`--token`), which
    /// only edge repositories use.
    pub fn with_token(self, token: Option<String>) -> Location {
        match (self, token) {
            (Location::Edge { base, options, .. }, Some(t)) => Location::Edge {
                base,
                token: Some(t),
                options,
            },
            (other, _) => other,
        }
    }

    /// Opens the backend. `create` makes a missing local folder (for `repo init`).
    /// Transient failures are retried by a wrapper around every backend;
    /// for remote ones, within their `retry_timeout`.
    pub fn open(&self, create: bool) -> Result<Arc<dyn Storage>> {
        let backend = self.open_backend(create)?;
        Ok(Arc::new(match self {
            Location::Object { options, .. } | Location::Edge { options, .. } => {
                let (t, _) = Timeouts::from_options(options)?;
                RetryStore::with_deadline(backend, t.retry)
            }
            Location::Local(_) | Location::Memory => RetryStore::new(backend),
        }))
    }

    fn open_backend(&self, create: bool) -> Result<Arc<dyn Storage>> {
        match self {
            Location::Local(p) => {
                if create {
                    std::fs::create_dir_all(p).map_err(|e| Error::io(p, e))?;
                }
                if !Path::new(p).exists() {
                    return Err(Error::NotARepository(p.display().to_string()));
                }
                Ok(Arc::new(LocalStore::open(p)?))
            }
            Location::Memory => Ok(Arc::new(MemoryStore::new())),
            Location::Object { url, options } => Ok(Arc::new(ObjectStorage::open(url, options)?)),
            Location::Edge {
                base,
                token,
                options,
            } => {
                let (t, rest) = Timeouts::from_options(options)?;
                if let Some((k, _)) = rest.first() {
                    let keys: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
                    return Err(StorageError::Config {
                        detail: format!(
                            "storage option {k} does not apply to edge repositories (they take {})",
                            keys.join(", ")
                        ),
                    }
                    .into());
                }
                Ok(Arc::new(EdgeStore::with_timeouts(
                    base.clone(),
                    token.clone(),
                    t,
                )?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_urls() {
        assert_eq!(
            Location::parse("/srv/b").unwrap(),
            Location::Local("/srv/b".into())
        );
        assert_eq!(
            Location::parse("file:///srv/b").unwrap(),
            Location::Local("/srv/b".into())
        );
        assert_eq!(
            Location::parse("rel/dir").unwrap(),
            Location::Local("rel/dir".into())
        );
        assert!(matches!(
            Location::parse("s3://bucket/p").unwrap(),
            Location::Object { .. }
        ));
        assert!(matches!(
            Location::parse("az://container").unwrap(),
            Location::Object { .. }
        ));
        assert!(matches!(
            Location::parse("https://edge.example/api/repos/prod").unwrap(),
            Location::Edge { .. }
        ));
        assert!(Location::parse("http://example.com/api/repos/prod").is_err());
        assert!(Location::parse("ftp://x").is_err());
        assert!(Location::parse("s3://").is_err());
        assert!(Location::parse("").is_err());
    }
}
