//! `GET /api/health`: every repository's lifecycle policies, healthy or
//! not, computed on request from the policy records and the newest root
//! (so it is never staler than the repository), with what the watchdog's
//! last cron run recorded (`slm/watchdog`: when it ran, what retention
//! removed), so a watchdog that stopped running shows.
//!
//! ```text
//! {"status":"yellow","checked_at_millis":…,"watchdog_last_run_millis":…,
//!  "repositories":[{"repository":"prod","status":"yellow",
//!    "policies":[{"policy":"nightly","healthy":false,"last_success":{…},
//!                 "unhealthy_if_no_snapshot_within":"1d",…}],
//!    "problems":[],"watchdog":{…the last run's record…}}]}
//! ```

use serde_json::{json, Value};
use worker::{Env, Request, Response};

use crate::core::slm::health::Status;
use crate::core::slm::watchdog::{repository_status, WATCHDOG_FORMAT, WATCHDOG_REPORT_KEY};

use super::auth::{authorize, Access};
use super::r2::{folders, R2Store};
use super::read_key::{describe, EdgeUnlock};
use super::reply::{json_response, ApiError, ApiResult};
use super::survey::Survey;
use super::watchdog::now_ms;
use super::BUCKET_BINDING;

/// Where the health report is served.
pub const HEALTH_PATH: &str = "/api/health";

pub async fn serve(req: &Request, env: &Env) -> ApiResult<Response> {
    authorize(req, env, Access::Read)?;
    if req.method() != worker::Method::Get {
        return Err(ApiError::new(
            405,
            "illegal_argument_exception",
            format!("method {:?} is not allowed on {HEALTH_PATH}", req.method()),
        ));
    }
    let now = now_ms();
    let bucket = env.bucket(BUCKET_BINDING)?;
    let unlock = EdgeUnlock::from_env(env)?;
    let mut repositories = Vec::new();
    let mut statuses = Vec::new();
    let mut last_run: Option<i64> = None;
    for name in folders(&bucket).await.map_err(ApiError::from)? {
        let store = R2Store::new(env.bucket(BUCKET_BINDING)?, &name);
        let entry = match Survey::read(store, &unlock).await {
            Ok(None) => continue,
            Ok(Some(survey)) => {
                let policies = survey.health(now);
                let status = repository_status(&policies, &survey.problems);
                let watchdog = last_report(&survey).await;
                if let Some(t) = watchdog.get("ran_at_millis").and_then(Value::as_i64) {
                    last_run = Some(last_run.map_or(t, |l| l.max(t)));
                }
                statuses.push(status);
                json!({
                    "repository": name,
                    "status": status,
                    "policies": policies,
                    "problems": survey.problems,
                    "watchdog": watchdog,
                })
            }
            // A repository that cannot be read has unknown health: it is
            // reported, and the whole report is no better than yellow.
            Err(e) => {
                statuses.push(Status::Yellow);
                json!({
                    "repository": name,
                    "status": Status::Yellow,
                    "policies": [],
                    "problems": [describe(e).reason],
                    "watchdog": Value::Null,
                })
            }
        };
        repositories.push(entry);
    }
    json_response(&json!({
        "status": Status::worst(statuses),
        "checked_at_millis": now,
        "watchdog_last_run_millis": last_run,
        "repositories": repositories,
    }))
}

/// The watchdog's last record for the repository (`null` if it never ran
/// there, or the record is of a format this code does not read).
async fn last_report(survey: &Survey) -> Value {
    let Ok(bytes) = survey.reader.store.get(WATCHDOG_REPORT_KEY, None).await else {
        return Value::Null;
    };
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(|v| v.get("format").and_then(Value::as_u64) == Some(u64::from(WATCHDOG_FORMAT)))
        .unwrap_or(Value::Null)
}
