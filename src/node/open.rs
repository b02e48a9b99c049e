//! Opening a registered repository from async code: its location's
//! storage (read-only when registered so) and the repository layer's
//! reader over it, awaited on the node's runtime, and the readers kept
//! for listings.

use std::collections::HashMap;
use std::sync::Arc;

use crate::core::format::config::RepoConfig;
use crate::error::{Error, Result};
use crate::native::clock::now_millis;
use crate::native::decompressor::libzstd_decode;
use crate::native::location::Location;
use crate::native::password::NativeUnlock;
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

/// The registration's storage as the repository layer sees it: in an
/// encrypted repository, objects outside the format's own (the CCR feed
/// and leases) are sealed and opened like its control records. Costs an
/// open (one key derivation when encrypted); nothing else is read.
pub async fn sealed_store(reg: &Registration) -> Result<Arc<dyn Storage>> {
    Ok(reader(reg).await?.store.clone())
}

/// Opens the registration's repository.
pub async fn reader(reg: &Registration) -> Result<RepoReader> {
    RepoReader::open_with(store(reg, false)?, libzstd_decode, &NativeUnlock).await
}

/// Opens the repository, creating it (as `snapkeep repo init` does, with
/// the default chunker and compression) when the location holds none yet
/// and the registration is writable: registering a repository on an empty
/// location is how Elasticsearch users make one.
pub async fn reader_or_init(reg: &Registration) -> Result<RepoReader> {
    let store = store(reg, true)?;
    match RepoReader::open_with(store.clone(), libzstd_decode, &NativeUnlock).await {
        Err(Error::NotARepository(_)) if !reg.readonly => {
            let config = RepoConfig::new(uuid::Uuid::new_v4().to_string(), now_millis());
            writer::init(store, config, libzstd_decode).await
        }
        other => other,
    }
}

/// One reader per registered repository, kept between listings.
///
/// A reader remembers the newest root it read, and [`RepoReader::root`]
/// only probes for newer generations (the `index.latest` hint and the next
/// root's existence): a listing then costs two small storage requests
/// instead of reading and parsing the whole root (megabytes for thousands
/// of snapshots) every time, and still sees every commit, this node's or
/// another writer's. A reader is replaced when its registration changes
/// (another location or options).
///
/// Only listings use these readers: a reader also caches tree packs, which
/// restores and views would make a long-lived one accumulate.
#[derive(Debug, Default)]
pub struct ListingReaders(std::sync::Mutex<HashMap<String, (Registration, RepoReader)>>);

impl ListingReaders {
    /// The kept reader for `name`, or a new one when there is none or it
    /// was opened for another registration.
    pub async fn get(&self, name: &str, reg: &Registration) -> Result<RepoReader> {
        if let Some((kept, reader)) = self.0.lock().unwrap().get(name) {
            if kept == reg {
                return Ok(reader.clone());
            }
        }
        let fresh = reader(reg).await?;
        self.0
            .lock()
            .unwrap()
            .insert(name.to_string(), (reg.clone(), fresh.clone()));
        Ok(fresh)
    }
}
