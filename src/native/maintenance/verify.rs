//! `repo verify` for the synchronous shell: the repository layer's probe
//! (`repo::verify`) blocked on once.

use std::time::Duration;

use crate::native::clock::SystemClock;
use crate::native::error::Result;
use crate::native::repo::Repo;
use crate::native::runtime::block_on;

/// See [`crate::repo::verify::verify`].
pub fn verify(repo: &Repo) -> Result<Duration> {
    let run_id = uuid::Uuid::new_v4().to_string();
    block_on(crate::repo::verify(repo.reader(), &SystemClock, &run_id))
}
