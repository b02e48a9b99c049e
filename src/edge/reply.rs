//! Between the transport-neutral API ([`crate::api`]) and the Worker's
//! types: requests in, responses and errors out.

use serde::Serialize;
use worker::{Headers, Request, Response, Url};

pub use crate::api::{ApiError, ApiResult};
use crate::api::{ApiRequest, ApiResponse};

/// The runtime's errors name the R2 binding (`REPOS`), a deployment detail
/// that answers leave out.
impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> ApiError {
        let reason = e
            .to_string()
            .replace(super::BUCKET_BINDING, "the repositories' bucket");
        Self::new(500, "exception", reason)
    }
}

/// The parts of `req` the API reads; the body only where a method carries
/// one.
pub async fn api_request(req: &mut Request, url: &Url) -> ApiResult<ApiRequest> {
    let method = format!("{:?}", req.method()).to_uppercase();
    let mut api = ApiRequest::new(&method, url.path(), url.query());
    for (name, value) in req.headers().entries() {
        api = api.with_header(&name, &value);
    }
    if !matches!(method.as_str(), "GET" | "HEAD") {
        api = api.with_body(req.bytes().await?);
    }
    Ok(api)
}

/// An API response as the Worker's.
pub fn to_worker(response: ApiResponse) -> worker::Result<Response> {
    let headers = Headers::new();
    for (name, value) in &response.headers {
        headers.set(name, value)?;
    }
    Ok(Response::builder()
        .with_status(response.status)
        .with_headers(headers)
        .fixed(response.body.to_vec()))
}

/// An error as its JSON response.
pub fn error_response(e: ApiError) -> worker::Result<Response> {
    to_worker(e.into_response())
}

/// A JSON response.
pub fn json_response<T: Serialize>(value: &T) -> ApiResult<Response> {
    Ok(Response::from_json(value)?)
}

/// Raw bytes with a content type.
pub fn bytes_response(body: Vec<u8>, status: u16, headers: Headers) -> ApiResult<Response> {
    Ok(Response::from_bytes(body)?
        .with_status(status)
        .with_headers(headers))
}
