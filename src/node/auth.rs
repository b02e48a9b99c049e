//! Who may call what: bearer tokens and Basic users from the config, each
//! with one role. With no credential configured (allowed on loopback only)
//! every request is let through.

use argon2::Argon2;
use argon2::{PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine;
use serde::Deserialize;

use crate::node::error::NodeError;

/// The roles, each granting what the one before grants and more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only APIs (GET and HEAD).
    Monitor,
    /// Create, restore and delete snapshots, and everything `monitor` may.
    Snapshot,
    /// Everything: repositories, policies, indices.
    Manage,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Monitor => "monitor",
            Role::Snapshot => "snapshot",
            Role::Manage => "manage",
        }
    }

    /// The roles that grant `self`, as a 403 lists them.
    pub fn granted_by(self) -> &'static str {
        match self {
            Role::Monitor => "monitor,snapshot,manage",
            Role::Snapshot => "snapshot,manage",
            Role::Manage => "manage",
        }
    }
}

/// `[[auth.tokens]]`: a bearer token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Shown in 403 messages; defaults to `token`.
    pub name: Option<String>,
    pub token: String,
    pub role: Role,
}

/// `[[auth.users]]`: an HTTP Basic user with an argon2 PHC hash.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub name: String,
    pub password_hash: String,
    pub role: Role,
}

/// The checked credentials.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    tokens: Vec<TokenEntry>,
    users: Vec<UserEntry>,
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header (or one of a scheme the node does not take).
    Missing,
    /// A credential that matches no entry; `user` when it named one.
    Wrong { user: Option<String> },
}

impl Credentials {
    /// Checks every entry: tokens non-empty and unique, password hashes
    /// valid PHC strings.
    pub fn new(tokens: Vec<TokenEntry>, users: Vec<UserEntry>) -> Result<Credentials, NodeError> {
        for (i, t) in tokens.iter().enumerate() {
            if t.token.is_empty() {
                return Err(NodeError::BadCredential(format!(
                    "token {} is empty",
                    i + 1
                )));
            }
            if tokens[..i].iter().any(|o| o.token == t.token) {
                return Err(NodeError::BadCredential(format!(
                    "token {} is listed twice",
                    i + 1
                )));
            }
        }
        for u in &users {
            PasswordHash::new(&u.password_hash).map_err(|e| {
                NodeError::BadCredential(format!(
                    "user [{}]: password_hash is not an argon2 PHC string ({e}); make one with `snapkeep node hash-password`",
                    u.name
                ))
            })?;
        }
        Ok(Credentials { tokens, users })
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.users.is_empty()
    }

    /// Authenticates the value of an `Authorization` header. Password
    /// checks are deliberately slow (argon2): call from a blocking thread.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthFailure> {
        let Some(value) = authorization else {
            return Err(AuthFailure::Missing);
        };
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.bearer(rest);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            return self.basic(rest);
        }
        Err(AuthFailure::Missing)
    }

    fn bearer(&self, token: &str) -> Result<Principal, AuthFailure> {
        // Every entry is compared, in constant time, so timing does not
        // tell how much of a guess was right.
        let mut found = None;
        for t in &self.tokens {
            if constant_time_eq(t.token.as_bytes(), token.as_bytes()) {
                found = Some(t);
            }
        }
        found
            .map(|t| Principal {
                name: t.name.clone().unwrap_or_else(|| "token".into()),
                role: t.role,
            })
            .ok_or(AuthFailure::Wrong { user: None })
    }

    fn basic(&self, encoded: &str) -> Result<Principal, AuthFailure> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(AuthFailure::Wrong { user: None })?;
        let (name, password) = decoded
            .split_once(':')
            .ok_or(AuthFailure::Wrong { user: None })?;
        let wrong = || AuthFailure::Wrong {
            user: Some(name.to_string()),
        };
        let user = self
            .users
            .iter()
            .find(|u| u.name == name)
            .ok_or_else(wrong)?;
        let hash = PasswordHash::new(&user.password_hash).map_err(|_| wrong())?;
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .map_err(|_| wrong())?;
        Ok(Principal {
            name: user.name.clone(),
            role: user.role,
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An argon2id PHC string for `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, NodeError> {
    let mut salt = [0u8; 16];
    crate::native::password::os_random(&mut salt);
    let hash: PasswordHash = Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| NodeError::BadCredential(e.to_string()))?;
    Ok(hash.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        let hash = hash_password("s3cret pass").unwrap();
        Credentials::new(
            vec![TokenEntry {
                name: Some("ci".into()),
                token: "tok-1".into(),
                role: Role::Snapshot,
            }],
            vec![UserEntry {
                name: "alice".into(),
                password_hash: hash,
                role: Role::Monitor,
            }],
        )
        .unwrap()
    }

    fn basic(user: &str, pass: &str) -> String {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Basic {b}")
    }

    #[test]
    fn tokens_and_users_authenticate_with_their_roles() {
        let c = creds();
        let p = c.authenticate(Some("Bearer tok-1")).unwrap();
        assert_eq!((p.name.as_str(), p.role), ("ci", Role::Snapshot));
        let p = c
            .authenticate(Some(&basic("alice", "s3cret pass")))
            .unwrap();
        assert_eq!((p.name.as_str(), p.role), ("alice", Role::Monitor));
    }

    #[test]
    fn wrong_and_missing_credentials_are_told_apart() {
        let c = creds();
        assert_eq!(c.authenticate(None), Err(AuthFailure::Missing));
        assert_eq!(
            c.authenticate(Some("Bearer tok-2")),
            Err(AuthFailure::Wrong { user: None })
        );
        assert_eq!(
            c.authenticate(Some(&basic("alice", "wrong"))),
            Err(AuthFailure::Wrong {
                user: Some("alice".into())
            })
        );
        assert_eq!(
            c.authenticate(Some(&basic("bob", "s3cret pass"))),
            Err(AuthFailure::Wrong {
                user: Some("bob".into())
            })
        );
    }

    #[test]
    fn bad_hashes_and_duplicate_tokens_are_refused() {
        let user = UserEntry {
            name: "u".into(),
            password_hash: "plain".into(),
            role: Role::Manage,
        };
        assert!(Credentials::new(vec![], vec![user]).is_err());
        let t = TokenEntry {
            name: None,
            token: "x".into(),
            role: Role::Manage,
        };
        assert!(Credentials::new(vec![t.clone(), t], vec![]).is_err());
    }
}
