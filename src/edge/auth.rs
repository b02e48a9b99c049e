//! Bearer tokens from the Worker's secrets: `SNAPKEEP_WRITE_TOKEN` allows
//! everything; `SNAPKEEP_READ_TOKEN`, when set, is required (or the write
//! token) for reads, which are otherwise anonymous. Without a write token
//! configured, nothing can be written.

use worker::{Env, Request};

use super::reply::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

fn configured(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|t| !t.is_empty())
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Checks the request's `Authorization: Bearer` token for `need`.
pub fn authorize(req: &Request, env: &Env, need: Access) -> ApiResult<()> {
    let write = configured(env, "SNAPKEEP_WRITE_TOKEN");
    let read = configured(env, "SNAPKEEP_READ_TOKEN");
    let given = req
        .headers()
        .get("Authorization")
        .ok()
        .flatten()
        .and_then(|h| h.strip_prefix("Bearer ").map(|t| t.trim().to_string()));
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
            (None, _) if read.is_none() => Ok(()),
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
