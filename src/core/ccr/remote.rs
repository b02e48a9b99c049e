//! Remote clusters: the `cluster.remote.<alias>.*` settings of
//! `PUT /_cluster/settings`, checked and applied as values, and the shapes
//! of `GET /_cluster/settings` and `GET /_remote/info`.
//!
//! snapkeep nodes connect in Elasticsearch's `proxy` mode: a remote is the
//! `host:port` of another node's HTTP API. The token it accepts
//! (Elasticsearch keeps it in the keystore) is given as `credentials` in the
//! same request and is never shown again. snapkeep adds `repository` mode
//! (no connection between the nodes at all): the remote is a repository
//! registered on this node that the leader node publishes checkpoints
//! into (`core::ccr::feed`); it is read with that registration's own access.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Shown where credentials are set, as Elasticsearch redacts them.
pub const REDACTED: &str = "::es_redacted::";

/// One remote cluster: exactly one of `proxy_address` (non-empty, proxy
/// mode) and `repository` (repository mode) is set, as [`apply_settings`]
/// makes them; [`RemoteCluster::via`] tells which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteCluster {
    /// `host:port` of the leader node; empty in repository mode.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub proxy_address: String,
    /// The repository registered on this node that the leader publishes
    /// into (repository mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    #[serde(default)]
    pub skip_unavailable: bool,
}

/// How a remote is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via<'a> {
    /// Over the leader node's HTTP API at this `host:port`.
    Proxy(&'a str),
    /// Through this registered repository, which the leader publishes into.
    Repository(&'a str),
}

impl RemoteCluster {
    pub fn via(&self) -> Via<'_> {
        match &self.repository {
            Some(name) => Via::Repository(name),
            None => Via::Proxy(&self.proxy_address),
        }
    }

    /// Where it is, for messages: `host:port` or `repository [name]`.
    pub fn whereabouts(&self) -> String {
        match self.via() {
            Via::Proxy(addr) => addr.to_string(),
            Via::Repository(name) => format!("repository [{name}]"),
        }
    }
}

pub type Remotes = BTreeMap<String, RemoteCluster>;

/// Why a settings request is refused (all 400, `illegal_argument_exception`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteSettingsError {
    #[error("request body must be an object with [persistent] and/or [transient] settings")]
    NotAnObject,
    #[error("{scope} setting [{key}], not recognized")]
    Unknown { scope: &'static str, key: String },
    #[error("remote cluster alias [{0}] must be lowercase letters, digits, '_' or '-'")]
    BadAlias(String),
    #[error("setting [{key}] must be {expected}, got [{got}]")]
    BadValue {
        key: String,
        expected: &'static str,
        got: String,
    },
    #[error("remote cluster [{alias}] mode [{mode}] is not supported: snapkeep nodes connect in [proxy] mode (the other node's HTTP address as proxy_address) or [repository] mode (a registered repository the leader publishes into)")]
    Mode { alias: String, mode: String },
    #[error("remote cluster [{0}] needs [cluster.remote.{0}.proxy_address] (host:port of the leader node)")]
    NoAddress(String),
    #[error("remote cluster [{0}] in repository mode needs [cluster.remote.{0}.repository] (a repository registered on this node)")]
    NoRepository(String),
    #[error("remote cluster [{alias}] in {mode} mode cannot have [cluster.remote.{alias}.{setting}] (set it to null)")]
    NotInMode {
        alias: String,
        mode: &'static str,
        setting: &'static str,
    },
}

/// The remotes after applying the `cluster.remote.*` settings of `body`
/// (persistent and transient alike: a node keeps one set), where a `null`
/// value removes a setting and a remote whose address is removed is
/// removed.
pub fn apply_settings(remotes: &Remotes, body: &Value) -> Result<Remotes, RemoteSettingsError> {
    let top = body.as_object().ok_or(RemoteSettingsError::NotAnObject)?;
    let mut draft: BTreeMap<String, Map<String, Value>> = remotes
        .iter()
        .map(|(alias, r)| (alias.clone(), as_settings(r)))
        .collect();
    for (scope, settings) in top {
        let scope = match scope.as_str() {
            "persistent" => "persistent",
            "transient" => "transient",
            _ => return Err(RemoteSettingsError::NotAnObject),
        };
        let mut flat = Vec::new();
        flatten("", settings, &mut flat);
        for (key, value) in flat {
            let (alias, name) = remote_key(scope, &key)?;
            let entry = draft.entry(alias).or_default();
            match value {
                Value::Null => entry.remove(name),
                v => entry.insert(name.to_string(), v),
            };
        }
    }
    draft
        .into_iter()
        // Removing an existing remote's address (or repository) removes
        // the remote.
        .filter(|(alias, s)| {
            s.contains_key("proxy_address")
                || s.contains_key("repository")
                || !remotes.contains_key(alias)
        })
        .map(|(alias, s)| Ok((alias.clone(), remote_of(&alias, &s)?)))
        .collect()
}

const NAMES: &[&str] = &[
    "mode",
    "proxy_address",
    "repository",
    "credentials",
    "skip_unavailable",
];

/// The alias and setting name of a `cluster.remote.<alias>.<name>` key.
fn remote_key<'k>(
    scope: &'static str,
    key: &'k str,
) -> Result<(String, &'k str), RemoteSettingsError> {
    let unknown = || RemoteSettingsError::Unknown {
        scope,
        key: key.to_string(),
    };
    let rest = key.strip_prefix("cluster.remote.").ok_or_else(unknown)?;
    let (alias, name) = rest.split_once('.').ok_or_else(unknown)?;
    if !NAMES.contains(&name) {
        return Err(unknown());
    }
    let ok = !alias.is_empty()
        && alias
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !ok {
        return Err(RemoteSettingsError::BadAlias(alias.to_string()));
    }
    Ok((alias.to_string(), name))
}

/// Settings may be nested objects or dotted keys, or both (as in
/// Elasticsearch): `{"cluster": {"remote.a": {"mode": "proxy"}}}`.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        v => out.push((prefix.to_string(), v.clone())),
    }
}

fn as_settings(r: &RemoteCluster) -> Map<String, Value> {
    let mut m = Map::new();
    match r.via() {
        Via::Proxy(addr) => {
            m.insert("mode".into(), "proxy".into());
            m.insert("proxy_address".into(), addr.into());
        }
        Via::Repository(name) => {
            m.insert("mode".into(), "repository".into());
            m.insert("repository".into(), name.into());
        }
    }
    if let Some(c) = &r.credentials {
        m.insert("credentials".into(), c.clone().into());
    }
    m.insert("skip_unavailable".into(), r.skip_unavailable.into());
    m
}

fn remote_of(alias: &str, s: &Map<String, Value>) -> Result<RemoteCluster, RemoteSettingsError> {
    let key = |name: &str| format!("cluster.remote.{alias}.{name}");
    let bad = |name: &str, expected: &'static str, got: &Value| RemoteSettingsError::BadValue {
        key: key(name),
        expected,
        got: match got {
            Value::String(s) if name == "credentials" => {
                format!("a string of {} characters", s.len())
            }
            other if name == "credentials" => type_name(other).into(),
            other => other.to_string(),
        },
    };
    let skip_unavailable = match s.get("skip_unavailable") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(t)) if t == "true" || t == "false" => t == "true",
        Some(other) => return Err(bad("skip_unavailable", "true or false", other)),
    };
    // Without a mode, the one whose setting is there (proxy by default).
    let mode = match s.get("mode") {
        Some(mode) => mode.as_str().ok_or_else(|| bad("mode", "a string", mode))?,
        None if s.contains_key("repository") && !s.contains_key("proxy_address") => "repository",
        None => "proxy",
    };
    let not_in = |mode: &'static str, setting: &'static str| RemoteSettingsError::NotInMode {
        alias: alias.into(),
        mode,
        setting,
    };
    match mode {
        "proxy" if s.contains_key("repository") => return Err(not_in("proxy", "repository")),
        "proxy" => {}
        "repository" => {
            if s.contains_key("proxy_address") {
                return Err(not_in("repository", "proxy_address"));
            }
            // The repository's own registration says how it is read.
            if s.contains_key("credentials") {
                return Err(not_in("repository", "credentials"));
            }
            let name = s
                .get("repository")
                .ok_or_else(|| RemoteSettingsError::NoRepository(alias.into()))?;
            let repository = name
                .as_str()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad("repository", "a repository name", name))?
                .to_string();
            return Ok(RemoteCluster {
                proxy_address: String::new(),
                repository: Some(repository),
                credentials: None,
                skip_unavailable,
            });
        }
        other => {
            return Err(RemoteSettingsError::Mode {
                alias: alias.into(),
                mode: other.into(),
            })
        }
    }
    let address = s
        .get("proxy_address")
        .ok_or_else(|| RemoteSettingsError::NoAddress(alias.into()))?;
    let proxy_address = address
        .as_str()
        .filter(|a| is_host_port(a))
        .ok_or_else(|| bad("proxy_address", "host:port", address))?
        .to_string();
    let credentials = match s.get("credentials") {
        None => None,
        Some(Value::String(c)) if !c.is_empty() => Some(c.clone()),
        Some(other) => return Err(bad("credentials", "a non-empty string", other)),
    };
    Ok(RemoteCluster {
        proxy_address,
        repository: None,
        credentials,
        skip_unavailable,
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `host:port` with a port number and a host without spaces or `/`
/// (names, IPv4, or `[IPv6]`).
pub fn is_host_port(a: &str) -> bool {
    let Some((host, port)) = a.rsplit_once(':') else {
        return false;
    };
    let host_ok = !host.is_empty()
        && !host.contains(|c: char| c.is_whitespace() || c == '/' || c == '@')
        && (host.starts_with('[') == host.ends_with(']'));
    host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// One remote as settings show it: credentials redacted.
fn shown(r: &RemoteCluster) -> Value {
    let mut v = match r.via() {
        Via::Proxy(addr) => json!({"mode": "proxy", "proxy_address": addr}),
        Via::Repository(name) => json!({"mode": "repository", "repository": name}),
    };
    v["skip_unavailable"] = r.skip_unavailable.to_string().into();
    if r.credentials.is_some() {
        v["credentials"] = REDACTED.into();
    }
    v
}

/// `GET /_cluster/settings` (and the echo of a put).
pub fn settings_json(remotes: &Remotes) -> Value {
    let remote: Map<String, Value> = remotes.iter().map(|(a, r)| (a.clone(), shown(r))).collect();
    let persistent = if remote.is_empty() {
        json!({})
    } else {
        json!({"cluster": {"remote": remote}})
    };
    json!({"persistent": persistent, "transient": {}})
}

/// What a connection attempt to a remote found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    Connected,
    /// Not connected, with the reason in the user's terms.
    Failed(String),
}

/// One entry of `GET /_remote/info`, with Elasticsearch's fields for proxy
/// mode and a `reason` (snapkeep's) when not connected.
pub fn info_json(r: &RemoteCluster, reach: &Reach) -> Value {
    let connected = *reach == Reach::Connected;
    if let Via::Repository(name) = r.via() {
        let mut v = json!({
            "connected": connected,
            "mode": "repository",
            "repository": name,
            "skip_unavailable": r.skip_unavailable,
        });
        if let Reach::Failed(reason) = reach {
            v["reason"] = reason.clone().into();
        }
        return v;
    }
    let mut v = json!({
        "connected": connected,
        "mode": "proxy",
        "proxy_address": r.proxy_address,
        "server_name": "",
        "num_proxy_sockets_connected": u8::from(connected),
        "max_proxy_socket_connections": 18,
        "initial_connect_timeout": "30s",
        "skip_unavailable": r.skip_unavailable,
    });
    if r.credentials.is_some() {
        v["cluster_credentials"] = REDACTED.into();
    }
    if let Reach::Failed(reason) = reach {
        v["reason"] = reason.clone().into();
    }
    v
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn put(remotes: &Remotes, body: Value) -> Result<Remotes, RemoteSettingsError> {
        apply_settings(remotes, &body)
    }

    #[test]
    fn nested_and_dotted_settings_add_change_and_remove_remotes() {
        let r = put(
            &Remotes::new(),
            json!({"persistent": {"cluster": {"remote": {"leader": {
                "mode": "proxy", "proxy_address": "10.0.0.1:9200", "credentials": "s3cret"}}}}}),
        )
        .unwrap();
        assert_eq!(r["leader"].proxy_address, "10.0.0.1:9200");
        assert_eq!(r["leader"].credentials.as_deref(), Some("s3cret"));
        let r = put(
            &r,
            json!({"persistent": {"cluster.remote.leader.skip_unavailable": true,
                                  "cluster.remote.b-2.proxy_address": "[::1]:9201"}}),
        )
        .unwrap();
        assert!(r["leader"].skip_unavailable);
        assert_eq!(r["leader"].credentials.as_deref(), Some("s3cret"), "kept");
        assert_eq!(r["b-2"].proxy_address, "[::1]:9201");
        let r = put(
            &r,
            json!({"transient": {"cluster.remote.b-2.proxy_address": null}}),
        )
        .unwrap();
        assert!(!r.contains_key("b-2"));
        let r = put(
            &r,
            json!({"persistent": {"cluster.remote.leader.credentials": null}}),
        )
        .unwrap();
        assert_eq!(r["leader"].credentials, None);
    }

    #[test]
    fn credentials_are_never_shown() {
        let r = put(
            &Remotes::new(),
            json!({"persistent": {"cluster.remote.a.proxy_address": "h:1", "cluster.remote.a.credentials": "tok-123"}}),
        )
        .unwrap();
        let shown =
            settings_json(&r).to_string() + &info_json(&r["a"], &Reach::Connected).to_string();
        assert!(!shown.contains("tok-123"), "{shown}");
        assert!(shown.contains(REDACTED));
        let e = put(
            &r,
            json!({"persistent": {"cluster.remote.a.credentials": 5}}),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("tok-123"));
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let none = Remotes::new();
        let cases = [
            (json!([1]), "must be an object"),
            (
                json!({"persistent": {"indices.recovery.max_bytes_per_sec": "1mb"}}),
                "persistent setting [indices.recovery.max_bytes_per_sec], not recognized",
            ),
            (
                json!({"persistent": {"cluster.remote.a.seeds": ["h:1"]}}),
                "not recognized",
            ),
            (
                json!({"persistent": {"cluster.remote.A.proxy_address": "h:1"}}),
                "alias [A]",
            ),
            (
                json!({"persistent": {"cluster.remote.a.mode": "sniff", "cluster.remote.a.proxy_address": "h:1"}}),
                "mode [sniff] is not supported",
            ),
            (
                json!({"persistent": {"cluster.remote.a.mode": "proxy"}}),
                "needs [cluster.remote.a.proxy_address]",
            ),
            (
                json!({"persistent": {"cluster.remote.a.proxy_address": "http://h:1"}}),
                "must be host:port",
            ),
            (
                json!({"persistent": {"cluster.remote.a.proxy_address": "h:0"}}),
                "must be host:port",
            ),
            (
                json!({"persistent": {"cluster.remote.a.proxy_address": "h:1", "cluster.remote.a.skip_unavailable": "yes"}}),
                "true or false",
            ),
        ];
        for (body, expected) in cases {
            let e = put(&none, body.clone()).unwrap_err().to_string();
            assert!(e.contains(expected), "{body}: {e}");
        }
    }

    #[test]
    fn a_repository_remote_names_a_registered_repository_and_no_address() {
        let r = put(
            &Remotes::new(),
            json!({"persistent": {"cluster.remote.far.mode": "repository",
                                  "cluster.remote.far.repository": "shared"}}),
        )
        .unwrap();
        assert_eq!(r["far"].via(), Via::Repository("shared"));
        let shown = settings_json(&r);
        assert_eq!(
            shown["persistent"]["cluster"]["remote"]["far"],
            json!({"mode": "repository", "repository": "shared", "skip_unavailable": "false"})
        );
        let info = info_json(&r["far"], &Reach::Failed("unreadable".into()));
        assert_eq!(info["mode"], "repository");
        assert_eq!(info["connected"], false);
        assert_eq!(info["reason"], "unreadable");
        // Switching to proxy mode: the repository goes, the address comes.
        let p = put(
            &r,
            json!({"persistent": {"cluster.remote.far.mode": "proxy",
                                  "cluster.remote.far.repository": null,
                                  "cluster.remote.far.proxy_address": "h:1"}}),
        )
        .unwrap();
        assert_eq!(p["far"].via(), Via::Proxy("h:1"));
        // Removing the repository removes the remote.
        let gone = put(
            &r,
            json!({"persistent": {"cluster.remote.far.repository": null, "cluster.remote.far.mode": null}}),
        )
        .unwrap();
        assert!(gone.is_empty());
        // The mode follows from the setting given.
        let inferred = put(
            &Remotes::new(),
            json!({"persistent": {"cluster.remote.x.repository": "r"}}),
        )
        .unwrap();
        assert_eq!(inferred["x"].via(), Via::Repository("r"));
        let cases = [
            (
                json!({"persistent": {"cluster.remote.a.mode": "repository"}}),
                "needs [cluster.remote.a.repository]",
            ),
            (
                json!({"persistent": {"cluster.remote.a.mode": "repository",
                    "cluster.remote.a.repository": "r", "cluster.remote.a.proxy_address": "h:1"}}),
                "cannot have [cluster.remote.a.proxy_address]",
            ),
            (
                json!({"persistent": {"cluster.remote.a.mode": "repository",
                    "cluster.remote.a.repository": "r", "cluster.remote.a.credentials": "t"}}),
                "cannot have [cluster.remote.a.credentials]",
            ),
            (
                json!({"persistent": {"cluster.remote.a.mode": "proxy",
                    "cluster.remote.a.repository": "r", "cluster.remote.a.proxy_address": "h:1"}}),
                "cannot have [cluster.remote.a.repository]",
            ),
            (
                json!({"persistent": {"cluster.remote.a.repository": ""}}),
                "must be a repository name",
            ),
        ];
        for (body, expected) in cases {
            let e = put(&Remotes::new(), body.clone()).unwrap_err().to_string();
            assert!(e.contains(expected), "{body}: {e}");
        }
    }
}
