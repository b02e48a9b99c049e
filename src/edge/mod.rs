//! The edge shell: a Cloudflare Worker (feature `worker`, wasm32) serving
//! repositories stored in the R2 bucket bound as `REPOS`, one repository
//! per top-level folder. Static files (the inspector in `www/`) are served by
//! the Workers assets binding before this code runs.
//!
//! The read views are [`crate::api`]'s (shared with the native node); this
//! shell adds the bearer tokens ([`auth`]) and the object API over R2
//! ([`objects`]: streamed reads, and the writes of the CLI's edge backend):
//!
//! ```text
//!  /api/health                                   GET   lifecycle policies' health (health)
//!  /api/repos/NAME/...                           see crate::api
//!  /api/repos/NAME/objects?prefix&cursor         GET   object listing
//!  /api/repos/NAME/objects/KEY                   GET HEAD PUT DELETE
//! ```
//!
//! Encrypted repositories ([`read_key`]): objects are served as stored;
//! the views open them only with the secret `SNAPKEEP_READ_KEY`.
//!
//! A Cron Trigger (wrangler.toml) runs the [`watchdog`]: policy health and,
//! where a repository asks for it, retention, with no node running.

mod auth;
mod health;
mod objects;
mod r2;
mod read_key;
mod reply;
mod survey;
mod watchdog;

use std::sync::Arc;

use async_trait::async_trait;
use worker::{
    console_error, event, Context, Env, Method, Request, Response, ScheduleContext, ScheduledEvent,
    Url,
};

use crate::api::{self, RepoLookup, RepoPath};
use crate::core::format::codec;
use crate::repo::RepoReader;
use auth::{authorize, Access};
use r2::R2Store;
use read_key::EdgeUnlock;
use reply::{api_request, error_response, to_worker, ApiError, ApiResult};

/// The R2 binding that holds repositories (see wrangler.toml).
const BUCKET_BINDING: &str = "REPOS";

#[event(fetch)]
pub async fn fetch(mut req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    match route(&mut req, &env).await {
        Ok(r) => Ok(r),
        Err(e) => error_response(e),
    }
}

/// The Cron Trigger: the watchdog's run over every repository.
#[event(scheduled)]
pub async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    if let Err(e) = watchdog::run(&env, &event.cron()).await {
        console_error!("snapkeep watchdog: {e}");
    }
}

async fn route(req: &mut Request, env: &Env) -> ApiResult<Response> {
    let url = req.url()?;
    if url.path() == health::HEALTH_PATH {
        return health::serve(req, env).await;
    }
    let target = RepoPath::parse(url.path())?;
    if target.is_objects() {
        return object_api(req, env, &url, &target).await;
    }
    let api_req = api_request(req, &url).await?;
    let repos = BucketRepos { env, req };
    Ok(to_worker(api::serve(&repos, &api_req).await)?)
}

/// The object API: raw access for the native CLI and the inspector.
async fn object_api(
    req: &mut Request,
    env: &Env,
    url: &Url,
    target: &RepoPath,
) -> ApiResult<Response> {
    let store = R2Store::new(env.bucket(BUCKET_BINDING)?, &target.name);
    let method = req.method();
    let need = match method {
        Method::Get | Method::Head => Access::Read,
        _ => Access::Write,
    };
    authorize(req, env, need)?;
    match target.object_key() {
        Some(key) => objects::object(req, &store, &key).await,
        None if method == Method::Get => objects::list(&store, url).await,
        None => Err(ApiError::bad_request("an object key is required")),
    }
}

/// The bucket's folders as repositories, opened for a caller whose token
/// allows reads. Not listed: a bucket may hold folders that are no
/// repository, and listing them all would cost a list per request.
struct BucketRepos<'a> {
    env: &'a Env,
    req: &'a Request,
}

#[async_trait(?Send)]
impl RepoLookup for BucketRepos<'_> {
    async fn reader(&self, name: &str) -> ApiResult<RepoReader> {
        let bucket = self.env.bucket(BUCKET_BINDING)?;
        authorize(self.req, self.env, Access::Read)?;
        let store = R2Store::new(bucket, name);
        let unlock = EdgeUnlock::from_env(self.env)?;
        RepoReader::open_with(Arc::new(store), codec::ruzstd_decode, &unlock)
            .await
            .map_err(read_key::describe)
    }

    async fn names(&self) -> ApiResult<Option<Vec<String>>> {
        Ok(None)
    }
}
