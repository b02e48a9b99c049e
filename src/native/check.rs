//! `repo check` for the synchronous shell: the repository layer's check
//! (`repo::check`) blocked on once, hashing on rayon's pool and drawing its
//! progress as a bar.

use crate::native::clock::SystemClock;
use crate::native::cpu::RayonCpu;
use crate::native::error::Result;
use crate::native::progress::StepBar;
use crate::native::repo::Repo;
use crate::native::runtime::block_on;
use crate::repo::check::Check;

pub use crate::repo::check::{CheckReport, ReadData};

/// See [`crate::repo::check`]; `progress` draws a bar while packs are read.
pub fn check(repo: &Repo, read_data: ReadData, progress: bool) -> Result<CheckReport> {
    let bar = StepBar::new(progress, "check");
    // A fresh salt each run: repeated subset checks read different packs.
    let salt = uuid::Uuid::new_v4();
    let check = Check {
        reader: repo.reader(),
        read_data,
        clock: &SystemClock,
        cpu: &RayonCpu,
        progress: &bar,
        salt: salt.as_bytes(),
    };
    block_on(check.run())
}
