//! The native shell's one clock: wall time for snapshot and marker stamps,
//! and tokio's timer for the repository layer's waits.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::repo::clock::{Clock, Sleep};

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    fn since_epoch() -> Duration {
        // A clock before 1970 reads as the epoch rather than failing.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }

    /// Nanoseconds since the Unix epoch, for comparing with file mtimes.
    pub fn now_ns(&self) -> i64 {
        Self::since_epoch().as_nanos() as i64
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        Self::since_epoch().as_millis() as i64
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemClock.now_ms()
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemClock.now_ns()
}

/// Waits on tokio's timer (inside the shell's runtime or any other).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleep;

#[async_trait]
impl Sleep for TokioSleep {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }
}
