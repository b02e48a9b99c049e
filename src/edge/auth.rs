//! Bearer tokens from the Worker's secrets: `SNAPKEEP_WRITE_TOKEN` allows
//! everything; `SNAPKEEP_READ_TOKEN` allows reads. Reads need one of them
//! unless the deployment sets `SNAPKEEP_PUBLIC_READS=true`: a Worker
//! deployed without thinking about it does not publish its backups.
//! Without a write token configured, nothing can be written.

use worker::{Env, Request};

use crate::core::format::id::Id;

use super::reply::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// A secret or var of the deployment; empty counts as unset.
pub(super) fn configured(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|t| !t.is_empty())
}

/// Compares the tokens' SHA-256 digests without stopping at the first
/// difference, so the time taken says nothing about either token (not even
/// its length).
fn same(a: &str, b: &str) -> bool {
    let (x, y) = (Id::of(a.as_bytes()), Id::of(b.as_bytes()));
    x.0.iter()
        .zip(y.0.iter())
        .fold(0u8, |d, (p, q)| d | (p ^ q))
        == 0
}

/// The token of an `Authorization: Bearer <token>` header (the scheme name
/// is case-insensitive).
fn bearer(header: &str) -> Option<String> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// Checks the request's `Authorization: Bearer` token for `need`.
pub fn authorize(req: &Request, env: &Env, need: Access) -> ApiResult<()> {
    let write = configured(env, "SNAPKEEP_WRITE_TOKEN");
    let read = configured(env, "SNAPKEEP_READ_TOKEN");
    let public_reads = configured(env, "SNAPKEEP_PUBLIC_READS").as_deref() == Some("true");
    let given = req
        .headers()
        .get("Authorization")
        .ok()
        .flatten()
        .and_then(|h| bearer(&h));
    let is_write = matches!((&given, &write), (Some(g), Some(w)) if same(g, w));
    let is_read = matches!((&given, &read), (Some(g), Some(r)) if same(g, r));
    let missing = || {
        ApiError::new(
            401,
            "security_exception",
            "missing authentication token: send Authorization: Bearer <token>",
        )
    };
    let wrong = || ApiError::new(403, "security_exception", "the token is not valid here");
    match need {
        Access::Read => match (&given, is_write || is_read) {
            (_, true) => Ok(()),
            (None, _) if public_reads => Ok(()),
            (None, _) => Err(missing()),
            // A wrong token is an error, even where reads are anonymous.
            (Some(_), _) => Err(wrong()),
        },
        Access::Write => {
            if write.is_none() {
                Err(ApiError::new(
                    403,
                    "security_exception",
                    "this deployment accepts no writes (no SNAPKEEP_WRITE_TOKEN is set)",
                ))
            } else if is_write {
                Ok(())
            } else if given.is_none() {
                Err(missing())
            } else {
                Err(ApiError::new(
                    403,
                    "security_exception",
                    "action [write] is unauthorized for this token",
                ))
            }
        }
    }
}
