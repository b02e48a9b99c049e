//! `repo analyze` for the synchronous shell: the repository layer's probes
//! (`repo::analyze`) blocked on once.

use crate::native::clock::SystemClock;
use crate::native::repo::Repo;
use crate::native::runtime::block_on;

pub use crate::repo::analyze::Probe;

/// See [`crate::repo::analyze::analyze`].
pub fn analyze(repo: &Repo) -> Vec<Probe> {
    let run_id = uuid::Uuid::new_v4().to_string();
    block_on(crate::repo::analyze(repo.reader(), &SystemClock, &run_id))
}
