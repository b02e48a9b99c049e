//! The browser inspector (`www` setting): its static files, served to
//! browsers without credentials (they are public code; the page asks for
//! a token itself and sends it as `Authorization: Bearer` to `/api`).
//!
//! `GET /` is also Elasticsearch's root, which clients call for the
//! product check, so it serves the page only to a request that accepts
//! `text/html` (a browser navigating); every other `GET /` keeps the
//! root JSON.

use axum::extract::Request;
use axum::http::header;
use axum::response::Response;

use crate::api::ApiRequest;
use crate::node::routes::api::from_api;
use crate::node::server::Node;

/// The inspector's file for `request`, if it asks for one.
pub fn page(node: &Node, request: &Request) -> Option<Response> {
    let assets = node.www.as_ref()?;
    let path = request.uri().path();
    if path == "/" && !wants_html(request) {
        return None;
    }
    let asked = ApiRequest::new(request.method().as_str(), path, None);
    assets.serve(&asked).map(from_api)
}

fn wants_html(request: &Request) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept
                .split(',')
                .any(|m| m.split(';').next().unwrap_or("").trim() == "text/html")
        })
}
