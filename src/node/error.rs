//! Why the node could not start (or stopped): each variant names the
//! failure and prints as one line.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The config file does not parse, or holds an unknown key.
    #[error("config {}: {detail}", path.display())]
    Config { path: PathBuf, detail: String },
    /// A setting that has no default is in neither the file nor the flags.
    #[error("the node needs `{0}` (in the config file or as --{0})")]
    Missing(&'static str),
    /// A setting whose value cannot be used.
    #[error("setting {key}: {detail}")]
    BadSetting { key: &'static str, detail: String },
    #[error("listen address {0:?} is not an IP:PORT address (e.g. 127.0.0.1:9200)")]
    BadListen(String),
    /// Serving beyond loopback with nobody to authenticate.
    #[error("refusing to listen on {0} without credentials: add [[auth.tokens]] or [[auth.users]] to the config, or set SNAPKEEP_NODE_TOKEN (only loopback addresses may run without)")]
    OpenToNetwork(SocketAddr),
    #[error("TLS needs both a certificate and a key (tls.cert and tls.key, or --tls-cert and --tls-key)")]
    HalfTls,
    #[error("TLS: {0}")]
    Tls(String),
    /// A credential entry that cannot be used.
    #[error("auth: {0}")]
    BadCredential(String),
    /// Another node holds the state folder.
    #[error("state folder {} is in use by another snapkeep node (pid {pid}); stop it first or use another --state", path.display())]
    StateLocked { path: PathBuf, pid: String },
    /// The state folder holds a file this node cannot read.
    #[error("state file {}: {detail}", path.display())]
    BadState { path: PathBuf, detail: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
    /// The `www` folder cannot serve the inspector.
    #[error("www: {0}")]
    Www(#[from] crate::api::assets::AssetsError),
    #[error("cannot start the node's runtime: {0}")]
    Runtime(std::io::Error),
}
