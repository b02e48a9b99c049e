//! `--prewarm` (and `full_copy`) on a block layer: every block the tree's
//! files owe is filled in the background, a few MiB at a time through the
//! same [`Fill`](super::hydrate::Fill) a service's handles use, so the
//! layer becomes a complete local folder while the service runs (and
//! `materialize` then has nothing left to fetch).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::hydrate::Fills;
use crate::native::runtime::handle;

/// Bytes filled per turn of a file's lock.
const STEP: u64 = 4 << 20;

/// Starts filling the tree at `tree`; abort the handle to stop.
pub fn start(tree: PathBuf, fills: Arc<Fills>) -> tokio::task::JoinHandle<()> {
    handle().spawn(async move {
        let mut files = Vec::new();
        list_files(&tree, &mut files);
        let mut filled = 0u64;
        for path in files {
            match fill_file(&path, &fills).await {
                Ok(n) => filled += n,
                // Renamed or deleted through the mount meanwhile, or the
                // repository unreachable: a read fills it when asked.
                Err(err) => eprintln!("snapkeep mount: prewarming {}: {err}", path.display()),
            }
        }
        eprintln!("snapkeep mount: prewarm done ({filled} bytes filled into the layer)");
    })
}

async fn fill_file(path: &Path, fills: &Fills) -> std::io::Result<u64> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let ino = file.metadata()?.ino();
    let Some(fill) = fills.of(ino, &Arc::new(file))? else {
        return Ok(0);
    };
    let mut total = 0;
    loop {
        match fill.fill_some(STEP).await? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

/// The regular files under `dir` (links not followed).
fn list_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        match entry.file_type() {
            Ok(t) if t.is_dir() => list_files(&entry.path(), out),
            Ok(t) if t.is_file() => out.push(entry.path()),
            _ => {}
        }
    }
}
