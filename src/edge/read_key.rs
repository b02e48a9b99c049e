//! Encrypted repositories at the edge. The object API serves their
//! objects as stored (sealed), so the CLI and the inspector decrypt on the
//! client. The JSON views need the plaintext: the Worker opens them only
//! with a read key, the repository's master key in hex (`snapkeep repo key
//! export`), set as the secret `SNAPKEEP_READ_KEY`. It is the master key
//! rather than a password because a password costs an argon2id derivation
//! of 64 MiB on every request. Without it, the views answer 403
//! `repository_encrypted_exception` saying so.
//!
//! The Worker never writes to an encrypted repository (it has no nonce
//! source): the watchdog's report and retention fail there, and say why.

use worker::Env;

use crate::core::crypto::keys::MasterKey;
use crate::error::{Error, Result};
use crate::repo::keyring::{Password, Unlock};
use crate::repo::sealing::NonceSource;

use super::auth::configured;
use super::reply::{ApiError, ApiResult};

/// The secret holding the read key.
pub const READ_KEY_SECRET: &str = "SNAPKEEP_READ_KEY";

/// The Worker's way into encrypted repositories: the read key if one is
/// configured, never a password.
pub struct EdgeUnlock {
    key: Option<MasterKey>,
}

impl EdgeUnlock {
    /// No read key: encrypted repositories are refused.
    pub fn without_key() -> EdgeUnlock {
        EdgeUnlock { key: None }
    }

    /// The deployment's read key; a secret that is not a key is the
    /// deployment's error, reported as such (without its value).
    pub fn from_env(env: &Env) -> ApiResult<EdgeUnlock> {
        let Some(text) = configured(env, READ_KEY_SECRET) else {
            return Ok(EdgeUnlock::without_key());
        };
        let key = MasterKey::from_hex(&text).map_err(|e| {
            ApiError::new(
                500,
                "repository_exception",
                format!("the secret {READ_KEY_SECRET} is not a read key: {e} (set it to what `snapkeep repo key export` prints)"),
            )
        })?;
        Ok(EdgeUnlock { key: Some(key) })
    }
}

impl Unlock for EdgeUnlock {
    fn password(&self, location: &str) -> Result<Password> {
        Err(Error::Encrypted(location.to_string()))
    }
    fn nonces(&self) -> Option<NonceSource> {
        None
    }
    fn master_key(&self) -> Option<MasterKey> {
        self.key.clone()
    }
}

/// `e` in the Worker's words: an encrypted repository's message names the
/// secret that opens its views, not the CLI's password sources.
pub fn describe(e: Error) -> ApiError {
    match e {
        Error::Encrypted(location) => ApiError::new(
            403,
            "repository_encrypted_exception",
            format!("the repository at {location} is encrypted and this Worker has no read key: its JSON views need the secret {READ_KEY_SECRET} (what `snapkeep repo key export` prints); its objects are served as stored, for clients that hold the password"),
        ),
        e => e.into(),
    }
}
