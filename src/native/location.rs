//! Turning a REPO argument into a storage backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::native::error::{Error, Result};
use crate::storage::local::LocalStore;
use crate::storage::memory::MemoryStore;
use crate::storage::object::{split_url, ObjectStorage};
use crate::storage::retry::RetryStore;
use crate::storage::Storage;

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
}

impl Location {
    pub fn parse(s: &str) -> Result<Location> {
        Self::parse_with(s, &[])
    }

    /// Parses `s`; `options` apply to object storage only.
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

    /// Opens the backend. `create` makes a missing local folder (for `repo init`).
    /// Transient failures are retried by a wrapper around every backend.
    pub fn open(&self, create: bool) -> Result<Arc<dyn Storage>> {
        Ok(Arc::new(RetryStore::new(self.open_backend(create)?)))
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
        assert!(Location::parse("ftp://x").is_err());
        assert!(Location::parse("s3://").is_err());
        assert!(Location::parse("").is_err());
    }
}
