//! Time for the repository layer, passed in: the native shell supplies the
//! system clock and tokio's timer, the wasm shells their own, and tests a
//! clock they move by hand.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::storage::MaybeSendSync;

/// Wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: MaybeSendSync + fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// Waiting without blocking a thread.
#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
pub trait Sleep: MaybeSendSync + fmt::Debug {
    async fn sleep(&self, duration: Duration);
}

/// A clock that stands still until moved, and a sleep that moves it instead
/// of waiting: simulations run hours of heartbeats and backoffs instantly.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: std::sync::atomic::AtomicI64,
}

impl ManualClock {
    pub fn at(now_ms: i64) -> ManualClock {
        ManualClock {
            now_ms: now_ms.into(),
        }
    }

    pub fn advance(&self, by: Duration) {
        self.now_ms
            .fetch_add(by.as_millis() as i64, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait)]
impl Sleep for ManualClock {
    async fn sleep(&self, duration: Duration) {
        self.advance(duration);
        YieldOnce(false).await
    }
}

/// Lets other tasks run once, as a real sleep would.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
