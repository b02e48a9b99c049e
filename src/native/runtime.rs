//! The process-wide async runtime that drives the repository layer for the
//! synchronous shell. CLI commands and the data pipeline's threads call into
//! it with [`block_on`]; async code (a server) awaits `crate::repo`
//! directly and never reaches this.

use std::future::Future;
use std::sync::OnceLock;

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

pub fn handle() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("snapkeep-io")
            .enable_all()
            .build()
            .expect("the tokio runtime starts")
    })
}

/// Runs `f` to completion on the shell's runtime. Only for synchronous
/// code: called from inside any runtime it would stall that runtime's
/// thread, so it panics there with a message naming the mistake.
pub fn block_on<F: Future>(f: F) -> F::Output {
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "native::runtime::block_on called from async code: await crate::repo instead"
    );
    handle().block_on(f)
}
