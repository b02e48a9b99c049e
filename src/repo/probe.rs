//! The write/read/list/delete probe behind `repo verify` and the node's
//! `_verify`: one object written create-only, read back, found in a
//! listing, deleted and gone. The caller names the key (under `verify/`,
//! which cleanup never touches) and the body, so this layer needs no
//! clock or randomness.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::storage::{PutMode, Storage};

/// Runs the probe on `key` with `body`; a storage that accepts every
/// request but misbehaves (returns other bytes, hides the object from
/// listings, keeps it after a delete) fails with
/// [`Error::ProbeMisbehaved`].
pub async fn probe(store: &dyn Storage, key: &str, body: Bytes) -> Result<()> {
    store.put(key, body.clone(), PutMode::Create).await?;
    let back = store.get(key, None).await?;
    let listed = store.list("verify/").await?.iter().any(|m| m.key == key);
    store.delete(key).await?;
    let gone = store
        .head(key)
        .await
        .err()
        .is_some_and(|e| e.is_not_found());
    if back != body || !listed || !gone {
        return Err(Error::ProbeMisbehaved {
            read_back: back == body,
            listed,
            deleted: gone,
        });
    }
    Ok(())
}
