//! `snapkeep node`: a long-running process serving Elasticsearch's
//! snapshot REST API over the repositories it registers and the data
//! directory it manages (issue #15).
//!
//! ```text
//!  config.rs   settings from node.toml and flags, checked at start-up
//!  state.rs    the locked state folder: identity, registrations (atomic files)
//!  server.rs   axum router + outer layer (media types, auth, ES headers), shutdown
//!  auth.rs     tokens, Basic users (argon2), roles   access.rs  role per request
//!  reply.rs    core::es errors as HTTP responses     body.rs    bounded request bodies
//!  routes/     one module per API family             open.rs    repositories from async code
//!  indices.rs  the data folder's index folders, closed ones   recoveries.rs  restores run
//!  restore_run.rs  a restore from acceptance to its end   restore_records.rs  persisted, resumed
//!  tls.rs      HTTPS listener (rustls)     www.rs     the inspector's page (`www`)
//!  running.rs  the snapshots being taken now: live status, abort, shutdown
//!  routes/api.rs  `/api/repos/...`: the transport-neutral `crate::api`
//!  slm/        snapshot lifecycle: policies, scheduler, runs, retention, history
//!  ccr/        cross-cluster replication: leader checkpoints, follower loops
//! ```
//!
//! The server runs on its own tokio runtime and awaits the repository
//! layer (`crate::repo`) directly; it never calls the CLI's `block_on`.

mod access;
pub mod auth;
mod body;
mod ccr;
pub mod config;
pub mod error;
mod indices;
mod media;
mod mounts;
mod open;
mod recoveries;
mod remotes;
mod reply;
mod repository_settings;
mod restore_records;
mod restore_run;
mod routes;
mod running;
mod server;
mod slm;
pub mod state;
mod tls;
mod www;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

pub use config::{Overrides, Settings};
pub use error::NodeError;

use server::Node;
use state::StateDir;

/// Runs the node until SIGTERM or SIGINT.
pub fn run(settings: Settings) -> Result<(), NodeError> {
    let tls = match &settings.tls {
        Some(t) => Some(tls::server_config(&t.cert, &t.key)?),
        None => None,
    };
    // Before the state lock: a folder mistake stops the node at once.
    let www = match &settings.www {
        Some(dir) => Some(crate::api::assets::Assets::load(dir)?),
        None => None,
    };
    let state = StateDir::lock(&settings.state)?;
    let identity = state.identity(|| uuid::Uuid::new_v4().simple().to_string())?;
    let repositories = state.repositories()?;
    let closed = indices::read_closed(state.path())?;
    let slm = slm::Slm::load(state.path(), settings.test_clock_offset_ms)?;
    let remotes = remotes::load(state.path())?;
    let ccr = ccr::Ccr::load(state.path())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("snapkeep-node")
        .enable_all()
        .build()
        .map_err(NodeError::Runtime)?;
    let listen = settings.listen;
    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    let open_note = settings.credentials.is_empty();
    let node = Arc::new(Node {
        settings,
        identity,
        state_folder: state.folder(),
        repositories: Mutex::new(repositories),
        closed: Mutex::new(closed),
        recoveries: Default::default(),
        running: Default::default(),
        www,
        listing_readers: Default::default(),
        slm,
        remotes: Mutex::new(remotes),
        mounts: Default::default(),
        ccr,
    });
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| NodeError::Bind {
                addr: listen,
                source,
            })?;
        // Before serving, so a new restore over a resumed one's indices
        // is refused.
        restore_run::resume_all(&node).await;
        routes::searchable::remount_all(&node).await;
        tokio::spawn(restore_run::abort_on_stop(node.clone()));
        tokio::spawn(slm::scheduler::schedule_loop(node.clone()));
        tokio::spawn(slm::scheduler::retention_loop(node.clone()));
        tokio::spawn(slm::follow::follow_loop(node.clone()));
        ccr::run::start_all(&node);
        ccr::publish::start_all(&node);
        ccr::keeper::keep_all(&node).await;
        tokio::spawn(ccr::auto_follow::auto_follow_loop(node.clone()));
        let bound = listener.local_addr().unwrap_or(listen);
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("snapkeep node listening on {scheme}://{bound}");
        if open_note {
            println!("no credentials configured: every request is allowed (loopback only)");
        }
        let app = server::app(node.clone());
        let shutdown_node = node.clone();
        let stopper = tokio::spawn(stop_snapshots(node, grace));
        let served = match tls {
            Some(config) => {
                server::serve(tls::TlsListener::new(listener, config), app, grace).await
            }
            None => server::serve(listener, app, grace).await,
        };
        // The server returns cleanly only after a stop signal, which the
        // stopper saw too: wait for the snapshots it aborts.
        match served {
            Ok(()) => {
                let _ = stopper.await;
            }
            Err(_) => stopper.abort(),
        }
        routes::searchable::unmount_all(&shutdown_node).await;
        served
    });
    // Abandoned requests must not hold the process open.
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(state);
    result
}

/// At SIGTERM or SIGINT the running snapshots are aborted (so none is
/// committed half-done) and given `grace` to stop; one still running then
/// dies with the process, which leaves what a kill leaves (uploads for
/// `_cleanup`, a marker that goes stale), never a broken repository.
async fn stop_snapshots(node: Arc<Node>, grace: Duration) {
    server::stop_signal().await;
    let running = node.running.of(None).len();
    if running > 0 {
        eprintln!("snapkeep node: aborting {running} running snapshot(s)");
    }
    if !node.running.abort_all(grace).await {
        eprintln!("snapkeep node: snapshots still stopping after {grace:?}; abandoning them");
    }
}

/// `snapkeep node hash-password`: the PHC string for a password.
pub fn hash_password(password: &str) -> Result<String, NodeError> {
    auth::hash_password(password)
}
