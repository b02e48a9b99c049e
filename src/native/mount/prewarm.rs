//! Prewarm: reads every file of the mount once, in the background, so
//! later reads are served from the cache (`full_copy`, or `--prewarm`
//! within the cache's bound).

use std::sync::Arc;

use crate::core::format::index::RepoIndex;
use crate::core::format::tree::NodeType;
use crate::core::lazy::inodes::Inodes;
use crate::core::lazy::reader::ReadAhead;
use crate::native::lazy::{DiskCache, LazyFile};
use crate::native::runtime::handle;
use crate::repo::RepoReader;

/// Bytes asked per read while prewarming (the read-ahead widens fetches).
const STEP: u64 = 4 * 1024 * 1024;

/// Starts filling the cache; abort the handle to stop.
pub fn start(
    repo: RepoReader,
    cache: Arc<DiskCache>,
    index: Arc<RepoIndex>,
    inodes: Arc<Inodes>,
) -> tokio::task::JoinHandle<()> {
    handle().spawn(async move {
        let read_ahead = ReadAhead {
            initial: 16 * 1024 * 1024,
            max: 64 * 1024 * 1024,
        };
        for ino in 1..=inodes.len() as u64 {
            let Some(e) = inodes.get(ino) else { continue };
            if e.node.kind != NodeType::File || e.node.link().is_some() {
                continue;
            }
            // Past the bound, prewarming would only evict what it brought.
            if cache.total() >= cache.limit().saturating_sub(STEP) {
                return;
            }
            let Ok(file) = LazyFile::open(repo.clone(), cache.clone(), &index, &e.node, read_ahead)
            else {
                continue;
            };
            let mut at = 0;
            while at < e.node.size {
                if let Err(err) = file.read_at(at, STEP).await {
                    eprintln!("snapkeep mount: prewarming {}: {err}", e.node.name);
                    break;
                }
                at += STEP;
            }
        }
        eprintln!(
            "snapkeep mount: prewarm done ({} bytes cached)",
            cache.total()
        );
    })
}
