//! Errors of client-side encryption. Each variant names the failure; none
//! carries key material.

use crate::core::crypto::envelope::ObjectKind;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The slot's key did not authenticate: the password is not this
    /// slot's (or the slot's bytes were altered, which looks the same).
    #[error("wrong password")]
    WrongPassword,
    /// A key slot whose JSON does not parse or whose fields have the wrong
    /// length or encoding.
    #[error("malformed key slot: {0}")]
    MalformedSlot(String),
    /// A key slot asks for a key derivation this snapkeep does not do.
    #[error("key slot uses {0:?}; this snapkeep derives slot keys with argon2id only")]
    UnknownKdf(String),
    /// Argon2 parameters that are invalid or past what a slot may ask for
    /// (a hostile slot must not make opening take hours or exhaust memory).
    #[error("key slot's argon2 parameters are out of range: {0}")]
    KdfParams(String),
    /// Fewer bytes than the envelope's fixed parts (version, nonce, tag).
    #[error("encrypted {kind} is truncated: {len} bytes, at least {min} expected")]
    Truncated {
        kind: ObjectKind,
        len: usize,
        min: usize,
    },
    /// The first byte is not an envelope version this snapkeep reads.
    #[error("encrypted {kind} has unknown envelope version byte {byte:#04x}")]
    UnknownEnvelope { kind: ObjectKind, byte: u8 },
    /// The tag does not verify: some byte of the nonce, ciphertext or tag
    /// changed, or the object is of another kind or under another key.
    /// Nothing of the plaintext is returned.
    #[error("encrypted {kind} failed authentication: it was altered, is not a {kind}, or was encrypted under another key")]
    Tampered { kind: ObjectKind },
}
