//! The native shell's threads for CPU-heavy repository work (see
//! `repo::cpu`): rayon's global pool, one thread per core.

use crate::repo::cpu::{Cpu, Job};

/// Runs jobs on rayon's global pool.
#[derive(Debug, Clone, Copy, Default)]
pub struct RayonCpu;

impl Cpu for RayonCpu {
    fn spawn(&self, job: Job) {
        rayon::spawn(job)
    }
}
