//! The node's settings: a TOML file (`--config`) whose every key a flag
//! may override, checked once at start-up so a mistake stops the node
//! with one line naming it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::core::policy::hooks::{HookRule, HookRules};

use crate::node::auth::{Credentials, Role, TokenEntry, UserEntry};
use crate::node::error::NodeError;

/// The default address: loopback only, Elasticsearch's port.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9200";
/// The default request body limit. Repository and snapshot bodies are a
/// few hundred bytes; anything this large is a mistake or an attack.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long running requests may take to finish after SIGTERM/SIGINT.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;
/// Elasticsearch's `slm.minimum_interval` default.
pub const DEFAULT_SLM_MINIMUM_INTERVAL: &str = "15m";
/// Elasticsearch's `slm.retention_schedule` default: 01:30 UTC daily.
pub const DEFAULT_SLM_RETENTION_SCHEDULE: &str = "0 30 1 * * ?";
/// Bound of the shared cache of `shared_cache` mounts.
pub const DEFAULT_SEARCHABLE_CACHE_SIZE: &str = "10gb";

/// The config file as written: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data: Option<PathBuf>,
    pub listen: Option<String>,
    pub state: Option<PathBuf>,
    pub name: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub shutdown_grace_secs: Option<u64>,
    pub cleanup_grace_secs: Option<u64>,
    /// The inspector's folder (`www/` with `pkg/` built), served to browsers.
    pub www: Option<PathBuf>,
    #[serde(default)]
    pub path: PathSection,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub slm: SlmSection,
    #[serde(default)]
    pub searchable_snapshots: SearchableSection,
    /// Settings for tests only (a shifted clock); not documented for users.
    #[serde(default)]
    pub test: TestSection,
    pub tls: Option<TlsSection>,
    /// `[[hooks]]`: consistency hooks, as written (with where they are).
    #[serde(default)]
    pub hooks: Vec<Spanned<HookEntry>>,
    /// The hooks, checked by [`parse_file`].
    #[serde(skip)]
    pub hook_rules: HookRules,
}

/// One `[[hooks]]` entry: commands run around the read of each index its
/// `indices` patterns select (`core::policy::hooks`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookEntry {
    pub indices: String,
    /// An argv: the program, then its arguments (no shell).
    pub before: Option<Vec<String>>,
    pub after: Option<Vec<String>>,
    pub timeout_secs: Option<u64>,
}

/// `path.repo`, as Elasticsearch names its allow-list of `fs` locations.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathSection {
    #[serde(default)]
    pub repo: Vec<PathBuf>,
}

/// `slm.*`: snapshot lifecycle management, named as Elasticsearch's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlmSection {
    /// The shortest interval a policy's schedule may have (`15m`).
    pub minimum_interval: Option<String>,
    /// When retention runs (`0 30 1 * * ?`).
    pub retention_schedule: Option<String>,
}

/// `searchable_snapshots.*`: mounted indices.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchableSection {
    /// Bound of the shared cache of `shared_cache` mounts (`10gb`).
    pub cache_size: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSection {
    /// Shifts the lifecycle scheduler's clock by this many milliseconds,
    /// so a test runs a node whose clock is wrong.
    pub clock_offset_ms: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    #[serde(default)]
    pub users: Vec<UserEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Flags given on the command line; each overrides the file's key.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data: Option<PathBuf>,
    pub listen: Option<String>,
    pub state: Option<PathBuf>,
    pub path_repo: Vec<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub www: Option<PathBuf>,
    /// `SNAPKEEP_NODE_TOKEN`: a bearer token with the `manage` role.
    pub env_token: Option<String>,
    pub slm_minimum_interval: Option<String>,
    pub slm_retention_schedule: Option<String>,
    pub test_clock_offset_ms: Option<i64>,
}

/// Everything the node runs with, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data: PathBuf,
    pub listen: SocketAddr,
    pub state: PathBuf,
    pub name: String,
    pub path_repo: Vec<PathBuf>,
    pub max_body_bytes: usize,
    pub shutdown_grace_secs: u64,
    /// `_cleanup` keeps unreferenced objects younger than this.
    pub cleanup_grace_secs: u64,
    pub credentials: Credentials,
    pub tls: Option<TlsSection>,
    /// The inspector's folder; without it `GET /` is only the root JSON.
    pub www: Option<PathBuf>,
    /// Consistency hooks run around each index's read in a snapshot.
    pub hooks: Arc<HookRules>,
    /// `slm.minimum_interval`: policies firing more often are refused.
    pub slm_minimum_interval_ms: i64,
    /// `slm.retention_schedule`, checked at start-up.
    pub slm_retention_schedule: String,
    /// `test.clock_offset_ms`: added to the lifecycle scheduler's clock.
    pub test_clock_offset_ms: i64,
    /// `searchable_snapshots.cache_size`: the shared cache's bound.
    pub searchable_cache_size: u64,
}

/// Reads and parses the config file.
pub fn read_file(path: &Path) -> Result<FileConfig, NodeError> {
    let text = std::fs::read_to_string(path).map_err(|e| NodeError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    parse_file(path, &text)
}

/// Parses config text; the error names the file, the key and the line.
pub fn parse_file(path: &Path, text: &str) -> Result<FileConfig, NodeError> {
    let config_error = |detail| NodeError::Config {
        path: path.to_path_buf(),
        detail,
    };
    let mut file: FileConfig =
        toml::from_str(text).map_err(|e| config_error(toml_detail(text, &e)))?;
    let mut rules = Vec::with_capacity(file.hooks.len());
    for (entry, spanned) in file.hooks.iter().enumerate() {
        let h = spanned.get_ref();
        let rule = HookRule::new(
            entry,
            &h.indices,
            h.before.clone(),
            h.after.clone(),
            h.timeout_secs,
        )
        .map_err(|e| config_error(format!("line {}: {e}", line_of(text, spanned.span().start))))?;
        rules.push(rule);
    }
    file.hook_rules = HookRules { rules };
    Ok(file)
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// One line from a TOML error: its message and where it points.
fn toml_detail(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => format!("line {}: {message}", line_of(text, span.start)),
        None => message,
    }
}

/// The file's settings with the flags applied on top, checked.
pub fn settings(file: FileConfig, flags: Overrides) -> Result<Settings, NodeError> {
    let data = flags.data.or(file.data).ok_or(NodeError::Missing("data"))?;
    let state = flags
        .state
        .or(file.state)
        .ok_or(NodeError::Missing("state"))?;
    let listen_text = flags
        .listen
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen: SocketAddr = listen_text
        .parse()
        .map_err(|_| NodeError::BadListen(listen_text.clone()))?;
    let path_repo = if flags.path_repo.is_empty() {
        file.path.repo
    } else {
        flags.path_repo
    };
    let mut tokens = file.auth.tokens;
    if let Some(token) = flags.env_token.filter(|t| !t.is_empty()) {
        tokens.push(TokenEntry {
            name: Some("SNAPKEEP_NODE_TOKEN".into()),
            token,
            role: Role::Manage,
        });
    }
    let credentials = Credentials::new(tokens, file.auth.users)?;
    if credentials.is_empty() && !listen.ip().is_loopback() {
        return Err(NodeError::OpenToNetwork(listen));
    }
    let tls = tls(file.tls, flags.tls_cert, flags.tls_key)?;
    let minimum = flags
        .slm_minimum_interval
        .or(file.slm.minimum_interval)
        .unwrap_or_else(|| DEFAULT_SLM_MINIMUM_INTERVAL.to_string());
    let slm_minimum_interval_ms = crate::core::es::units::parse_time_value(&minimum)
        .filter(|ms| *ms >= 0)
        .ok_or_else(|| NodeError::BadSetting {
            key: "slm.minimum_interval",
            detail: format!("[{minimum}] is not a time value (e.g. 15m)"),
        })?;
    let retention = flags
        .slm_retention_schedule
        .or(file.slm.retention_schedule)
        .unwrap_or_else(|| DEFAULT_SLM_RETENTION_SCHEDULE.to_string());
    crate::core::slm::schedule::Schedule::parse(&retention).map_err(|e| NodeError::BadSetting {
        key: "slm.retention_schedule",
        detail: e.to_string(),
    })?;
    let cache_text = file
        .searchable_snapshots
        .cache_size
        .unwrap_or_else(|| DEFAULT_SEARCHABLE_CACHE_SIZE.to_string());
    let searchable_cache_size = crate::core::es::repository_request::parse_byte_size(
        "searchable_snapshots.cache_size",
        &cache_text,
    )
    .ok()
    .flatten()
    .ok_or_else(|| NodeError::BadSetting {
        key: "searchable_snapshots.cache_size",
        detail: format!("[{cache_text}] is not a size above 0 (e.g. 10gb)"),
    })?;
    Ok(Settings {
        data,
        listen,
        state,
        name: file.name.unwrap_or_else(|| "snapkeep".to_string()),
        path_repo,
        max_body_bytes: file.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
        shutdown_grace_secs: file
            .shutdown_grace_secs
            .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS),
        cleanup_grace_secs: file
            .cleanup_grace_secs
            .unwrap_or(crate::core::policy::keep::DEFAULT_GRACE.as_secs()),
        credentials,
        tls,
        www: flags.www.or(file.www),
        hooks: Arc::new(file.hook_rules),
        slm_minimum_interval_ms,
        slm_retention_schedule: retention,
        test_clock_offset_ms: flags
            .test_clock_offset_ms
            .or(file.test.clock_offset_ms)
            .unwrap_or(0),
        searchable_cache_size,
    })
}

/// TLS needs both a certificate and a key, from the file or the flags.
fn tls(
    file: Option<TlsSection>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<Option<TlsSection>, NodeError> {
    let cert = cert.or(file.as_ref().map(|t| t.cert.clone()));
    let key = key.or(file.map(|t| t.key));
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsSection { cert, key })),
        (None, None) => Ok(None),
        _ => Err(NodeError::HalfTls),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FileConfig, NodeError> {
        parse_file(Path::new("node.toml"), text)
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = parse("data = \"/d\"\nstate = \"/s\"\nlisten_addr = \"x\"\n").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("listen_addr"), "{text}");
        assert!(text.contains("line 3"), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
        let e = parse("[path]\nrepos = []\n").unwrap_err();
        assert!(e.to_string().contains("repos"), "{e}");
    }

    #[test]
    fn flags_override_the_file() {
        let file = parse(
            "data = \"/d\"\nstate = \"/s\"\nlisten = \"127.0.0.1:1\"\npath.repo = [\"/a\"]\n",
        )
        .unwrap();
        let flags = Overrides {
            listen: Some("127.0.0.1:2".into()),
            path_repo: vec!["/b".into()],
            ..Default::default()
        };
        let s = settings(file, flags).unwrap();
        assert_eq!(s.listen.port(), 2);
        assert_eq!(s.path_repo, vec![PathBuf::from("/b")]);
        assert_eq!(s.data, PathBuf::from("/d"));
    }

    #[test]
    fn the_network_needs_a_credential() {
        let open = || parse("data = \"/d\"\nstate = \"/s\"\nlisten = \"0.0.0.0:9200\"\n").unwrap();
        assert!(matches!(
            settings(open(), Overrides::default()),
            Err(NodeError::OpenToNetwork(_))
        ));
        let with_token = Overrides {
            env_token: Some("secret".into()),
            ..Default::default()
        };
        assert!(settings(open(), with_token).is_ok());
    }

    #[test]
    fn hooks_are_checked_naming_entry_key_and_line() {
        let file = parse(
            "[[hooks]]\nindices = \"db-*\"\nbefore = [\"pg\", \"start\"]\nafter = [\"pg\", \"stop\"]\n\
             [[hooks]]\nindices = \"*\"\nafter = [\"sync\"]\ntimeout_secs = 5\n",
        )
        .unwrap();
        let rules = &file.hook_rules;
        assert_eq!(rules.rules.len(), 2);
        assert_eq!(
            rules.for_index("db-1").unwrap().after.as_ref().unwrap()[1],
            "stop"
        );
        assert_eq!(rules.for_index("logs").unwrap().timeout_secs, 5);
        let bad = [
            ("[[hooks]]\nindices = \"*\"\nbefore = []\n", "line 1: hooks[0].before is an empty command"),
            ("[[hooks]]\nindices = \"*\"\nafter = [\"x\"]\n\n[[hooks]]\nindices = \"\"\nafter = [\"x\"]\n", "line 5: hooks[1].indices is empty"),
            ("[[hooks]]\nindices = \"*\"\n", "neither `before` nor `after`"),
            ("[[hooks]]\nindices = \"*\"\nbefore = \"pg start\"\n", "line 3"),
            ("[[hooks]]\nindices = \"*\"\nbefor = [\"x\"]\n", "befor"),
        ];
        for (text, named) in bad {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(named), "{text}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn lifecycle_settings_default_as_elasticsearch_and_are_checked() {
        let plain = parse("data = \"/d\"\nstate = \"/s\"\n").unwrap();
        let s = settings(plain, Overrides::default()).unwrap();
        assert_eq!(s.slm_minimum_interval_ms, 15 * 60_000);
        assert_eq!(s.slm_retention_schedule, "0 30 1 * * ?");
        assert_eq!(s.test_clock_offset_ms, 0);
        let file = parse(
            "data = \"/d\"\nstate = \"/s\"\nslm.minimum_interval = \"1m\"\n\
             [test]\nclock_offset_ms = -5000\n",
        )
        .unwrap();
        let flags = Overrides {
            slm_minimum_interval: Some("1s".into()),
            ..Default::default()
        };
        let s = settings(file, flags).unwrap();
        assert_eq!(
            (s.slm_minimum_interval_ms, s.test_clock_offset_ms),
            (1000, -5000)
        );
        for (flags, key) in [
            (
                Overrides {
                    slm_minimum_interval: Some("soon".into()),
                    ..Default::default()
                },
                "slm.minimum_interval",
            ),
            (
                Overrides {
                    slm_retention_schedule: Some("0 30 1 * *".into()),
                    ..Default::default()
                },
                "slm.retention_schedule",
            ),
        ] {
            let file = parse("data = \"/d\"\nstate = \"/s\"\n").unwrap();
            let e = settings(file, flags).unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        assert!(parse("[slm]\nminimum_intervall = \"1s\"\n").is_err());
    }

    #[test]
    fn tls_needs_both_halves() {
        let file =
            parse("data = \"/d\"\nstate = \"/s\"\n[tls]\ncert = \"/c\"\nkey = \"/k\"\n").unwrap();
        assert!(settings(file, Overrides::default()).unwrap().tls.is_some());
        let flags = Overrides {
            tls_cert: Some("/c".into()),
            ..Default::default()
        };
        let file = parse("data = \"/d\"\nstate = \"/s\"\n").unwrap();
        assert!(matches!(settings(file, flags), Err(NodeError::HalfTls)));
    }
}
