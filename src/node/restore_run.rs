//! A node restore from acceptance to its end: registered in the
//! recoveries with the native restore's live status, persisted
//! (`restore_records`) while it runs, throttled to the repository's
//! `max_restore_bytes_per_sec`, and resumed at the next start when the
//! node stopped or died during it.
//!
//! How a run ends decides its record's fate: success or a definite
//! failure removes it; an abort (the node is stopping) or a failure worth
//! retrying (storage unreachable) keeps it, so the next start resumes the
//! restore from what its staging folder holds.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::core::es::repository_request::parse_byte_size;
use crate::core::policy::selection::{Rename, Selection, SelectionError};
use crate::error::{Error, Result};
use crate::native::clock::now_millis;
use crate::native::progress::ProgressMode;
use crate::native::repo::Repo;
use crate::native::restore::{restore, RestoreOptions, RestoreOutcome};
use crate::node::recoveries::Run;
use crate::node::reply::EsError;
use crate::node::restore_records::{self, Asked, RestoreRecord};
use crate::node::server::Shared;
use crate::node::state::Registration;
use crate::node::{indices, open};
use crate::storage::Storage;

/// The native restore's options for `asked` of `snapshot`, into `data`.
pub fn options(data: &Path, snapshot: &str, asked: &Asked) -> Result<RestoreOptions, EsError> {
    let bad = |e: SelectionError| EsError::illegal_argument(e.to_string());
    let rename = match (&asked.rename_pattern, &asked.rename_replacement) {
        (Some(p), Some(rep)) => Some(Rename::new(p, rep).map_err(bad)?),
        (Some(p), None) => Some(Rename::new(p, "").map_err(bad)?),
        _ => None,
    };
    Ok(RestoreOptions {
        snapshot: snapshot.to_string(),
        target: data.to_path_buf(),
        selection: Selection::parse(&asked.indices).map_err(bad)?,
        rename,
        include_global_state: asked.include_global_state,
        overwrite: false,
        progress: ProgressMode::Quiet,
        concurrency: None,
        ..Default::default()
    })
}

/// The registration's `max_restore_bytes_per_sec` (`None`: not set, or 0).
pub fn registered_limit(reg: &Registration) -> Result<Option<u64>, EsError> {
    match reg.settings.get("max_restore_bytes_per_sec") {
        Some(v) => parse_byte_size("max_restore_bytes_per_sec", v),
        None => Ok(None),
    }
}

/// Opens the repository with its downloads limited: the registration's
/// limit wins over the repository's own, as the CLI's flag does; 0 means
/// none. Blocking: call it on the restore's thread.
pub fn open_throttled(store: Arc<dyn Storage>, registered: Option<u64>) -> Result<Repo> {
    let repo = Repo::open_in(store)?;
    let down = registered
        .or(repo.settings.max_restore_bytes_per_sec)
        .filter(|v| *v > 0);
    Ok(repo.with_limits(None, down))
}

/// Registers `record`'s run in the recoveries (stage `INDEX`) and hands
/// `opts` its live status and abort token.
pub fn register(node: &Shared, record: &RestoreRecord, opts: &mut RestoreOptions) {
    let run = Run::new(
        &record.repository,
        &record.snapshot,
        &record.restore_uuid,
        record.start_ms,
        record.targets.clone(),
    );
    opts.status = Some(run.progress.clone());
    opts.abort = run.abort.clone();
    node.recoveries.begin(run);
}

/// Why a run gave no outcome.
#[derive(Debug)]
pub enum Ended {
    Failed(Error),
    /// The restore's thread ended without answering (it panicked).
    NoAnswer,
}

/// Awaits the restore thread's answer and settles the run: its record,
/// its recoveries entry, and (on success) its targets' closed marks.
pub async fn finish(
    node: Shared,
    record: RestoreRecord,
    done: oneshot::Receiver<Result<RestoreOutcome>>,
) -> Result<RestoreOutcome, Ended> {
    let outcome = done
        .await
        .map_err(|_| Ended::NoAnswer)
        .and_then(|o| o.map_err(Ended::Failed));
    let name = format!("[{}:{}]", record.repository, record.snapshot);
    let keep = match &outcome {
        Ok(_) => {
            reopen(&node, &record.target_names()).await;
            false
        }
        Err(Ended::Failed(e @ Error::Aborted(_))) => {
            eprintln!("snapkeep node: restore {name} stopped ({e}); the next start resumes it");
            true
        }
        Err(Ended::Failed(e)) if e.is_retryable() => {
            eprintln!("snapkeep node: restore {name} failed ({e}); the next start retries it");
            true
        }
        Err(Ended::Failed(e)) => {
            eprintln!("snapkeep node: restore {name} failed: {e}");
            false
        }
        Err(Ended::NoAnswer) => {
            eprintln!("snapkeep node: restore {name} ended without an answer");
            false
        }
    };
    if !keep {
        if let Err(e) = restore_records::remove(&node.state_folder, &record.restore_uuid) {
            eprintln!("snapkeep node: cannot remove the record of restore {name}: {e}");
        }
    }
    node.recoveries
        .finish(&record.restore_uuid, now_millis(), outcome.is_err());
    outcome
}

/// A restored index is open: its name leaves the closed set.
async fn reopen(node: &Shared, names: &[String]) {
    let mut closed = node.closed.lock().await;
    if names.iter().any(|n| closed.contains(n)) {
        let mut next = closed.clone();
        next.retain(|n| !names.contains(n));
        if indices::write_closed(&node.state_folder, &next).is_ok() {
            *closed = next;
        }
    }
}

/// At start, before serving: every persisted restore resumes on its own
/// thread. One that cannot (its repository is no longer registered) is
/// marked failed in its record, logged, and shown as `FAILED`.
pub async fn resume_all(node: &Shared) {
    let records = match restore_records::load_all(&node.state_folder) {
        Ok(r) => r,
        Err(e) => return eprintln!("snapkeep node: cannot read the running restores: {e}"),
    };
    for mut record in records {
        let name = format!("[{}:{}]", record.repository, record.snapshot);
        let reason = match &record.failed {
            Some(reason) => reason.clone(),
            None => match resume(node, &record).await {
                Ok(()) => {
                    let targets = record.target_names().join(", ");
                    eprintln!("snapkeep node: resuming restore {name} into [{targets}]");
                    continue;
                }
                Err(reason) => {
                    record.failed = Some(reason.clone());
                    if let Err(e) = restore_records::save(&node.state_folder, &record) {
                        eprintln!("snapkeep node: cannot mark restore {name} failed: {e}");
                    }
                    reason
                }
            },
        };
        eprintln!("snapkeep node: restore {name} cannot resume: {reason}");
        let mut unused = RestoreOptions::default();
        register(node, &record, &mut unused);
        node.recoveries
            .finish(&record.restore_uuid, now_millis(), true);
    }
}

/// Starts `record`'s restore again on its own thread.
async fn resume(node: &Shared, record: &RestoreRecord) -> Result<(), String> {
    let reg = node
        .repositories
        .lock()
        .await
        .get(&record.repository)
        .cloned()
        .ok_or_else(|| format!("repository [{}] is no longer registered", record.repository))?;
    let limit = registered_limit(&reg).map_err(|e| e.reason)?;
    let store = open::store(&reg, false).map_err(|e| e.to_string())?;
    let data = &node.settings.data;
    let mut opts = options(data, &record.snapshot, &record.asked).map_err(|e| e.reason)?;
    // What the interrupted run already moved into place is reused.
    opts.overwrite =
        record.overwrite || record.targets.iter().any(|(_, t)| indices::exists(data, t));
    register(node, record, &mut opts);
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::spawn(move || {
        let outcome = open_throttled(store, limit).and_then(|repo| restore(&repo, &opts));
        let _ = done_tx.send(outcome);
    });
    tokio::spawn(finish(node.clone(), record.clone(), done_rx));
    Ok(())
}

/// On SIGTERM or SIGINT, asks every running restore to stop between
/// pack reads; their records stay, so the next start resumes them.
pub async fn abort_on_stop(node: Shared) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    node.recoveries.abort_all();
}
