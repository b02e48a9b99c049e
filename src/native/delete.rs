//! `snapshot delete` for the synchronous shell: the local disk's reserve
//! around the repository layer's delete (`repo::delete`), blocked on once.

use std::sync::Arc;

use crate::native::clock::{SystemClock, TokioSleep};
use crate::native::error::Result;
use crate::native::repo::Repo;
use crate::native::reserve;
use crate::native::runtime::block_on;
use crate::repo::delete::Delete;

pub use crate::repo::delete::DeleteOutcome;

pub fn delete_snapshots(repo: &Repo, patterns: &[String]) -> Result<DeleteOutcome> {
    let local = crate::native::guard::local_root(repo);
    let tight = local.as_deref().is_some_and(reserve::release_if_tight);
    let uuid = uuid::Uuid::new_v4().to_string();
    let delete = Delete {
        writer: repo.writer(),
        control: repo.control_store(),
        clock: Arc::new(SystemClock),
        sleep: &TokioSleep,
        uuid: &uuid,
        patterns,
        tight,
    };
    let outcome = block_on(delete.run());
    if let Some(root) = &local {
        reserve::ensure(root);
    }
    outcome
}

/// What `delete_snapshots` would delete and free, changing nothing.
pub fn preview_delete(repo: &Repo, patterns: &[String]) -> Result<DeleteOutcome> {
    let delete = Delete {
        writer: repo.writer(),
        control: repo.control_store(),
        clock: Arc::new(SystemClock),
        sleep: &TokioSleep,
        uuid: "",
        patterns,
        tight: false,
    };
    block_on(delete.preview())
}
