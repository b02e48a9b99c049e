//! The HTTP server: routes, and one outer layer every request passes
//! (media types, authentication, Elasticsearch's headers and routing
//! errors), served until SIGTERM or SIGINT.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::{Mutex, Notify};

use crate::api::assets::Assets;
use crate::node::access::{action, required_role};
use crate::node::auth::AuthFailure;
use crate::node::config::Settings;
use crate::node::error::NodeError;
use crate::node::media;
use crate::node::reply::{EsError, OwnContentType, PlainError};
use crate::node::routes;
use crate::node::state::{NodeIdentity, Repositories};
use crate::node::www;

/// What every handler shares.
#[derive(Debug)]
pub struct Node {
    pub settings: Settings,
    pub identity: NodeIdentity,
    /// The state folder (locked by [`crate::node::state::StateDir`]).
    pub state_folder: std::path::PathBuf,
    /// Registered repositories; held while a change is written to disk, so
    /// changes are applied one at a time and the file always matches.
    pub repositories: Mutex<Repositories>,
    /// The data folder's closed indices (`crate::node::indices`); held
    /// while one is closed, opened, deleted or a restore checks its targets.
    pub closed: Mutex<std::collections::BTreeSet<String>>,
    /// The restores run since start, for `_recovery`.
    pub recoveries: crate::node::recoveries::Recoveries,
    /// The snapshots being taken now (`crate::node::running`).
    pub running: crate::node::running::RunningSnapshots,
    /// The inspector's files (`www`), when configured.
    pub www: Option<Assets>,
    /// Readers kept for snapshot listings (`open::ListingReaders`).
    pub listing_readers: crate::node::open::ListingReaders,
    /// Snapshot lifecycle management: policies, scheduler state, history.
    pub slm: crate::node::slm::Slm,
    /// Remote clusters (`cluster.remote.*`), as `remotes.json` holds them;
    /// held while a change is written.
    pub remotes: Mutex<crate::core::ccr::remote::Remotes>,
    /// Mounted indices (searchable snapshots).
    pub mounts: crate::node::mounts::Mounts,
    /// Cross-cluster replication: led and following indices (`node::ccr`).
    pub ccr: crate::node::ccr::Ccr,
}

pub type Shared = Arc<Node>;

/// The node's routes behind the outer layer. The routes are a complete
/// router of their own, so the layer sees their answers as sent (axum adds
/// `Allow` to a 405 at the router's top level, after per-route layers).
pub fn app(node: Shared) -> Router {
    let routes = routes::router()
        .fallback(no_handler)
        .with_state(node.clone());
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn_with_state(node, frame))
}

/// Every request: media types checked, caller authenticated, then the
/// answer gets Elasticsearch's product header and a JSON content type, and
/// axum's bare 405 becomes Elasticsearch's.
async fn frame(State(node): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(page) = www::page(&node, &request) {
        return page;
    }
    let uri = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let method = request.method().clone();
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|l| l.as_bytes() != b"0")
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    let mut response = match media::check(request.headers(), has_body) {
        Err(refused) => finish(refused.into_response(), false),
        Ok(compatible) => match authorize(node, Asked::of(&request), uri.clone()).await {
            Err(refused) => finish(refused.into_response(), compatible),
            Ok(()) => {
                let response = next.run(request).await;
                let response = method_not_allowed(response, &uri, &method);
                finish(response, compatible)
            }
        },
    };
    response.headers_mut().insert(
        "X-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

/// Sets the JSON content type on everything but text (the `_cat` tables).
fn finish(mut response: Response, compatible: bool) -> Response {
    let text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/"));
    let own = response.extensions().get::<OwnContentType>().is_some();
    if !text && !own {
        let value = if compatible {
            media::COMPATIBLE_JSON
        } else {
            media::JSON
        };
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
    }
    response
}

/// What authorization looks at, taken out of the request (whose body
/// cannot be held across an await).
struct Asked {
    method: Method,
    path: String,
    authorization: Option<String>,
}

impl Asked {
    fn of(request: &Request) -> Asked {
        Asked {
            method: request.method().clone(),
            path: request.uri().path().to_string(),
            authorization: request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }
}

/// Lets the request through, or answers 401/403 with Elasticsearch's
/// `security_exception`. With no credential configured everything passes.
async fn authorize(node: Shared, asked: Asked, uri: String) -> Result<(), EsError> {
    if node.settings.credentials.is_empty() {
        return Ok(());
    }
    let Asked {
        method,
        path,
        authorization,
    } = asked;
    let shared = node.clone();
    // Password hashes are slow on purpose: off the async threads.
    let result = tokio::task::spawn_blocking(move || {
        shared
            .settings
            .credentials
            .authenticate(authorization.as_deref())
    })
    .await
    .unwrap_or(Err(AuthFailure::Missing));
    let principal = result.map_err(|failure| unauthenticated(failure, &uri))?;
    let needed = required_role(&method, &path);
    if principal.role < needed {
        let granted: Vec<&str> = needed.granted_by().split(',').collect();
        return Err(EsError::unauthorized(
            &action(&method, &path),
            &principal.name,
            &[principal.role.name()],
            &granted,
        ));
    }
    Ok(())
}

fn unauthenticated(failure: AuthFailure, uri: &str) -> EsError {
    match failure {
        AuthFailure::Missing => EsError::missing_credentials(uri),
        AuthFailure::Wrong { user: Some(u) } => EsError::bad_credentials(&u, uri),
        AuthFailure::Wrong { user: None } => {
            // A token names no user: same 401, with its own reason.
            let mut e = EsError::missing_credentials(uri);
            e.reason = format!(
                "unable to authenticate with provided credentials for REST request [{uri}]"
            );
            e
        }
    }
}

/// axum answers a known path with an unrouted method with an empty 405 and
/// an `Allow` header; Elasticsearch puts the allowed methods in the body.
fn method_not_allowed(response: Response, uri: &str, method: &Method) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let listed = allow
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let allowed: Vec<&str> = listed
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    let mut answer = PlainError::method_not_allowed(uri, method.as_str(), &allowed).into_response();
    if let Some(a) = allow {
        answer.headers_mut().insert(header::ALLOW, a);
    }
    answer
}

async fn no_handler(request: Request) -> Response {
    let uri = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    PlainError::no_handler(&uri, request.method().as_str()).into_response()
}

/// Serves until SIGTERM or SIGINT, then stops accepting and gives running
/// requests `grace` to finish before returning (which ends the process).
pub async fn serve<L>(listener: L, app: Router, grace: Duration) -> Result<(), NodeError>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let stopping = Arc::new(Notify::new());
    let signal = stopping.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        stop_signal().await;
        eprintln!("snapkeep node: stopping (finishing running requests)");
        signal.notify_one();
    });
    tokio::select! {
        served = server => served.map_err(NodeError::Serve),
        () = async { stopping.notified().await; tokio::time::sleep(grace).await } => {
            eprintln!("snapkeep node: requests still running after {grace:?}; abandoning them");
            Ok(())
        }
    }
}

pub(crate) async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process ends by the default action.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
