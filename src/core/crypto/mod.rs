//! Client-side encryption (format v2, docs/FORMAT.md): the pieces an
//! encrypted repository is made of, pure like the rest of the core. Random
//! bytes (master keys, salts, nonces) are parameters: the shells draw them.
//!
//! ```text
//! password ──argon2id(slot params, salt)──► slot key ──unwraps──► MasterKey
//! MasterKey ──HKDF-SHA256(info per KeyPurpose)──► DataKey, ContentIdKey
//! DataKey + ObjectKind + nonce ──XChaCha20-Poly1305──► envelope (stored bytes)
//! ContentIdKey ──HMAC-SHA256(plain bytes)──► blob Id (IdScheme::Keyed)
//! ```
//!
//!   error.rs        what can go wrong, one variant per failure
//!   keys.rs         the master key and the subkeys derived from it
//!   slot.rs         key slots: the master key wrapped under a password
//!   envelope.rs     an object's stored form: version, nonce, ciphertext, tag
//!   content_ids.rs  plain (v1) or keyed (v2) content ids

pub mod content_ids;
pub mod envelope;
pub mod error;
pub mod keys;
pub mod slot;
