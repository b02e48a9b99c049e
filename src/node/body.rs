//! Request bodies, read whole up to the node's limit; what they mean is
//! parsed by `core::es` (unknown members refused there).

use axum::body::{Body, Bytes};

use crate::node::reply::{body_too_large, EsError};

pub async fn read(body: Body, limit: usize) -> Result<Bytes, EsError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| body_too_large(limit))
}

/// A body that may be left out: empty or blank means the request's
/// defaults, anything else must parse.
pub async fn read_optional<T: Default>(
    body: Body,
    limit: usize,
    parse: impl FnOnce(&[u8]) -> Result<T, EsError>,
) -> Result<T, EsError> {
    let bytes = read(body, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse(&bytes)
    }
}
