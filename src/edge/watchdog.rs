//! The Cron Trigger's run: for every repository in the bucket, each
//! lifecycle policy's health, and, where the repository asks for it
//! (`slm/edge`), each policy's retention, committed as a root that drops
//! the snapshots the core's plan deletes. The run's view is recorded in
//! the repository (`slm/watchdog`) for `GET /api/health`. It needs no
//! node: this is what keeps watch when every node is down.
//!
//! Retention removes snapshots from the root only; their packs and
//! manifests become unreferenced and a node's `repo cleanup` removes them.
//! The new root is put create-only on the generation after the one the
//! plan read: when another writer committed first, the plan is made again
//! from the newer root, never replayed on it (a concurrent delete may have
//! removed a snapshot the plan counted on keeping).

use std::collections::BTreeSet;

use bytes::Bytes;
use jiff::tz::TimeZone;
use worker::{console_error, console_log, Env};

use crate::core::format::keys;
use crate::core::format::root::Root;
use crate::core::slm::retention::Retention;
use crate::core::slm::watchdog::{
    plan_all, repository_status, retention_root, EdgeSettings, PolicyRules, RetentionOutcome,
    WatchdogReport, EDGE_SETTINGS_KEY, WATCHDOG_FORMAT, WATCHDOG_REPORT_KEY,
};
use crate::error::{Error, Result};
use crate::storage::{PutMode, StorageError};

use super::r2::{folders, R2Store};
use super::read_key::EdgeUnlock;
use super::survey::Survey;
use super::BUCKET_BINDING;

/// Plans made again when other writers keep committing first.
const RETENTION_ATTEMPTS: u32 = 5;

/// Milliseconds since the Unix epoch, by the Worker's clock.
pub fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

/// One run over every repository; a repository that fails is logged and
/// the others still run.
pub async fn run(env: &Env, cron: &str) -> worker::Result<()> {
    let bucket = env.bucket(BUCKET_BINDING)?;
    // A read key that does not parse still lets plain repositories run.
    let unlock = EdgeUnlock::from_env(env).unwrap_or_else(|e| {
        console_error!("snapkeep watchdog: {}", e.reason);
        EdgeUnlock::without_key()
    });
    for name in folders(&bucket).await? {
        let store = R2Store::new(env.bucket(BUCKET_BINDING)?, &name);
        match watch(store, &unlock, cron).await {
            Ok(Some(report)) => console_log!(
                "snapkeep watchdog: {name}: {:?}, {} policies",
                report.status,
                report.policies.len()
            ),
            Ok(None) => {}
            Err(e) => console_error!("snapkeep watchdog: {name}: {e}"),
        }
    }
    Ok(())
}

/// One repository's run; `None` when the folder is no repository.
async fn watch(store: R2Store, unlock: &EdgeUnlock, cron: &str) -> Result<Option<WatchdogReport>> {
    let Some(mut survey) = Survey::read(store, unlock).await? else {
        return Ok(None);
    };
    let started = now_ms();
    let policies = survey.health(started);
    let mut problems = survey.problems.clone();
    let store = survey.reader.store.clone();
    let settings = match store.get(EDGE_SETTINGS_KEY, None).await {
        Ok(bytes) => EdgeSettings::decode(&bytes).unwrap_or_else(|e| {
            problems.push(e.to_string());
            EdgeSettings::default()
        }),
        Err(e) if e.is_not_found() => EdgeSettings::default(),
        Err(e) => return Err(e.into()),
    };
    let retention = if settings.retention {
        retain(&mut survey).await
    } else {
        vec![]
    };
    let report = WatchdogReport {
        format: WATCHDOG_FORMAT,
        ran_at_millis: started,
        cron: cron.to_string(),
        status: repository_status(&policies, &problems),
        policies,
        retention_enabled: settings.retention,
        retention,
        problems,
    };
    store
        .put(
            WATCHDOG_REPORT_KEY,
            Bytes::from(report.encode()),
            PutMode::Overwrite,
        )
        .await?;
    Ok(Some(report))
}

/// Runs every policy's retention that has rules and a known zone, as one
/// root commit.
async fn retain(survey: &mut Survey) -> Vec<RetentionOutcome> {
    let mut outcomes = Vec::new();
    let mut ruled: Vec<(String, Retention, TimeZone)> = Vec::new();
    for (record, policy) in &survey.policies {
        let Some(rules) = &policy.retention else {
            continue;
        };
        match zone(&policy.timezone) {
            Some(tz) => ruled.push((record.id.clone(), rules.clone(), tz)),
            None => outcomes.push(RetentionOutcome::failed(
                &record.id,
                format!("unknown time zone [{}]", policy.timezone),
            )),
        }
    }
    let rules: Vec<PolicyRules<'_>> = ruled
        .iter()
        .map(|(id, rules, tz)| PolicyRules { id, rules, tz })
        .collect();
    match commit_plans(survey, &rules).await {
        Ok(done) => outcomes.extend(done),
        Err(e) => outcomes.extend(
            rules
                .iter()
                .map(|p| RetentionOutcome::failed(p.id, e.to_string())),
        ),
    }
    outcomes.sort_by(|a, b| a.policy.cmp(&b.policy));
    outcomes
}

/// Plans on the newest root and commits the deletions on exactly the next
/// generation, planning again when another writer got there first.
async fn commit_plans(
    survey: &mut Survey,
    policies: &[PolicyRules<'_>],
) -> Result<Vec<RetentionOutcome>> {
    for attempt in 0..RETENTION_ATTEMPTS {
        if attempt > 0 {
            survey.reread_root().await?;
        }
        survey.reader.refuse_lost_root(survey.root.generation)?;
        let (plans, doomed) = plan_all(policies, &survey.snapshots, now_ms());
        let outcomes = plans
            .iter()
            .map(|(id, plan)| RetentionOutcome::of(id, plan))
            .collect();
        let Some(next) = retention_root(&survey.root, &doomed)? else {
            return Ok(outcomes);
        };
        if commit(survey, &next, &doomed).await? {
            return Ok(outcomes);
        }
    }
    Err(Error::CommitContention(RETENTION_ATTEMPTS))
}

/// Puts `next` create-only; false when its generation was taken.
async fn commit(survey: &Survey, next: &Root, doomed: &BTreeSet<String>) -> Result<bool> {
    let store = survey.reader.store.as_ref();
    let put = store
        .put(
            &keys::root(next.generation),
            Bytes::from(next.encode()),
            PutMode::Create,
        )
        .await;
    match put {
        Ok(()) => {
            // The hint may lag or be lost; readers probe past it.
            let hint = Bytes::from(next.generation.to_string());
            let _ = store.put(keys::LATEST, hint, PutMode::Overwrite).await;
            survey.reader.remember(next);
            console_log!(
                "snapkeep watchdog: {}: retention removed {doomed:?} at generation {}",
                store.location(),
                next.generation
            );
            Ok(true)
        }
        Err(StorageError::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A policy's IANA zone, from the tz database bundled into the Worker.
fn zone(name: &str) -> Option<TimeZone> {
    if name.eq_ignore_ascii_case("utc") || name == "Z" {
        return Some(TimeZone::UTC);
    }
    jiff::tz::db().get(name).ok()
}
