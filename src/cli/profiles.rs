//! Named repository profiles in a small TOML file, so a cron line can say
//! `--profile offsite` (or REPO `@offsite`) instead of repeating a URL,
//! storage options and where the credentials come from.
//!
//! ```toml
//! [profiles.offsite]
//! repository = "s3://bucket/prefix"
//! storage_options = { region = "eu-west-1" }
//! [profiles.offsite.credentials]
//! access_key_id = { env = "OFFSITE_KEY_ID" }
//! secret_access_key = { file = "/etc/snapkeep/offsite.secret" }
//! ```
//!
//! The file names where secrets are, never the secrets themselves, and no
//! message built here contains a credential's value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::native::error::{Error, Result};

/// The credential key that is the edge repositories' bearer token rather
/// than a storage option.
const TOKEN_KEY: &str = "token";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    profiles: BTreeMap<String, ProfileEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileEntry {
    repository: Option<String>,
    #[serde(default)]
    storage_options: BTreeMap<String, String>,
    #[serde(default)]
    credentials: BTreeMap<String, CredentialSource>,
}

/// Where one credential is read from when the profile is used.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum CredentialSource {
    /// An environment variable's name.
    Env(String),
    /// A file holding the value (trailing newline ignored).
    File(PathBuf),
}

/// A profile with its credentials read: everything a command needs to
/// reach the repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub repository: Option<String>,
    /// Storage options, credentials included, in the order to apply them.
    pub options: Vec<(String, String)>,
    /// The bearer token for an edge repository.
    pub token: Option<String>,
}

/// The config file: `$SNAPKEEP_CONFIG`, else
/// `$XDG_CONFIG_HOME/snapkeep/config.toml`, else
/// `~/.config/snapkeep/config.toml`.
pub fn config_path() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = var("SNAPKEEP_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(base.join("snapkeep").join("config.toml"))
}

/// Loads profile `name` from the config file, reading its credentials.
pub fn load(name: &str) -> Result<Profile> {
    let path = config_path().ok_or_else(|| {
        Error::Usage(format!(
            "no profile [{name}]: no config file (set SNAPKEEP_CONFIG or HOME)"
        ))
    })?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Usage(format!(
                "no profile [{name}]: {} does not exist",
                path.display()
            )))
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    let file: ConfigFile = toml::from_str(&text)
        .map_err(|e| Error::Usage(format!("{}: {}", path.display(), e.message())))?;
    let Some(entry) = file.profiles.get(name) else {
        let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
        return Err(Error::Usage(format!(
            "no profile [{name}] in {} (profiles: {})",
            path.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    resolve(name, entry)
}

fn resolve(name: &str, entry: &ProfileEntry) -> Result<Profile> {
    let mut profile = Profile {
        name: name.to_string(),
        repository: entry.repository.clone(),
        options: entry
            .storage_options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        token: None,
    };
    for (key, source) in &entry.credentials {
        let value = read_credential(name, key, source)?;
        if key == TOKEN_KEY {
            profile.token = Some(value);
        } else {
            profile.options.push((key.clone(), value));
        }
    }
    Ok(profile)
}

/// A credential's value; errors name the variable or file, never a value.
fn read_credential(profile: &str, key: &str, source: &CredentialSource) -> Result<String> {
    let what = format!("profile [{profile}]: credential {key}");
    let value = match source {
        CredentialSource::Env(var) => std::env::var(var)
            .map_err(|_| Error::Usage(format!("{what}: environment variable {var} is not set")))?,
        CredentialSource::File(path) => std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("{what}: cannot read {}: {e}", path.display())))?,
    };
    let value = value.trim_end_matches(['\n', '\r']).to_string();
    if value.is_empty() {
        return Err(Error::Usage(format!("{what} is empty")));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_reads_its_options_and_credentials_from_the_environment() {
        let entry: ConfigFile = toml::from_str(
            "[profiles.p]\nrepository = \"s3://b/x\"\nstorage_options = { region = \"r1\" }\n\
             [profiles.p.credentials]\ntoken = { env = \"PATH\" }\n",
        )
        .unwrap();
        let p = resolve("p", &entry.profiles["p"]).unwrap();
        assert_eq!(p.repository.as_deref(), Some("s3://b/x"));
        assert_eq!(p.options, vec![("region".into(), "r1".into())]);
        assert_eq!(p.token, std::env::var("PATH").ok());
    }

    #[test]
    fn a_mistyped_key_is_refused() {
        assert!(toml::from_str::<ConfigFile>("[profiles.p]\nrepo = \"x\"\n").is_err());
        assert!(toml::from_str::<ConfigFile>(
            "[profiles.p.credentials]\nsecret_access_key = { value = \"s\" }\n"
        )
        .is_err());
    }
}
