//! The process-wide async runtime that drives the storage port. The data
//! pipeline runs on ordinary threads and calls into storage with
//! [`block_on`], which is safe from any thread outside the runtime.

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

pub fn block_on<F: Future>(f: F) -> F::Output {
    handle().block_on(f)
}
