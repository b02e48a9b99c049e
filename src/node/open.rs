//! Opening a registered repository from async code: its location's
//! storage (read-only when registered so) and the repository layer's
//! reader over it, awaited on the node's runtime.

use std::sync::Arc;

use crate::core::format::config::RepoConfig;
use crate::error::{Error, Result};
use crate::native::clock::now_millis;
use crate::native::decompressor::libzstd_decode;
use crate::native::location::Location;
use crate::node::state::Registration;
use crate::repo::{writer, RepoReader};
use crate::storage::guard::ReadOnlyStore;
use crate::storage::Storage;

/// The registration's storage. `create` makes a missing local folder.
pub fn store(reg: &Registration, create: bool) -> Result<Arc<dyn Storage>> {
    let location = Location::parse_with(&reg.location, &reg.options)?;
    let create = create && !reg.readonly && matches!(location, Location::Local(_));
    let store = location.open(create)?;
    Ok(if reg.readonly {
        Arc::new(ReadOnlyStore::new(store))
    } else {
        store
    })
}

/// Opens the registration's repository.
pub async fn reader(reg: &Registration) -> Result<RepoReader> {
    RepoReader::open(store(reg, false)?, libzstd_decode).await
}

/// Opens the repository, creating it (as `snapkeep repo init` does, with
/// the default chunker and compression) when the location holds none yet
/// and the registration is writable: registering a repository on an empty
/// location is how Elasticsearch users make one.
pub async fn reader_or_init(reg: &Registration) -> Result<RepoReader> {
    let store = store(reg, true)?;
    match RepoReader::open(store.clone(), libzstd_decode).await {
        Err(Error::NotARepository(_)) if !reg.readonly => {
            let config = RepoConfig::new(uuid::Uuid::new_v4().to_string(), now_millis());
            writer::init(store, config, libzstd_decode).await
        }
        other => other,
    }
}
