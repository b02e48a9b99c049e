//! Request bodies, read whole up to the node's limit; what they mean is
//! parsed by `core::es` (unknown members refused there).

use axum::body::{Body, Bytes};

use crate::node::reply::{body_too_large, EsError};

pub async fn read(body: Body, limit: usize) -> Result<Bytes, EsError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| body_too_large(limit))
}
