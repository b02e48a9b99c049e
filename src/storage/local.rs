//! Local filesystem storage (a path or `file://` URL).
//!
//! Atomicity: every put writes a temporary file (`.tmp-*`, ignored by
//! `list`) in the destination directory (large ones around the page cache,
//! see [`super::direct`]), syncs it, then
//! - `Overwrite`: renames it over the key (rename is atomic on POSIX);
//! - `Create`: hard-links it to the key. `link(2)` fails with `EEXIST` if the
//!   key exists, atomically, even between processes and on NFS, so exactly
//!   one concurrent creator wins.
//!
//! A writer killed between writing and renaming leaves its temporary file
//! behind; [`Storage::leftovers`] finds those and cleanup removes them.
//!
//! Blocking file IO runs on tokio's blocking pool.

use std::fs;
use std::io::{self, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::read_buffers::ReadBuffers;
use super::{
    clamp_range, validate_key, Capabilities, Latency, ObjectMeta, PutMode, Storage, StorageError,
    StorageResult,
};

/// Names of temporary files start with this; keys never do.
const TEMP_PREFIX: &str = ".tmp-";

#[derive(Debug, Clone)]
pub struct LocalStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    /// What ranged reads are read into, used again once read.
    buffers: Arc<ReadBuffers>,
}

/// Numbers temporary files for the whole process, not per store: two
/// stores opened on one folder (the node opens a repository more than once)
/// must never pick the same temporary name, or one would remove the other's
/// file before it is linked.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_err(key: &str, e: io::Error) -> StorageError {
    match e.kind() {
        io::ErrorKind::NotFound => StorageError::NotFound { key: key.into() },
        io::ErrorKind::AlreadyExists => StorageError::AlreadyExists { key: key.into() },
        io::ErrorKind::PermissionDenied => StorageError::PermissionDenied {
            key: key.into(),
            detail: e.to_string(),
        },
        _ => StorageError::Io {
            key: key.into(),
            detail: e.to_string(),
        },
    }
}

fn modified_ms(m: &fs::Metadata) -> Option<i64> {
    let t = m.modified().ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64)
}

impl LocalStore {
    /// A store rooted at `root`, which must exist and be a directory.
    pub fn open(root: &Path) -> StorageResult<LocalStore> {
        let meta = fs::metadata(root).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StorageError::NotFound {
                key: root.display().to_string(),
            },
            _ => io_err(&root.display().to_string(), e),
        })?;
        if !meta.is_dir() {
            return Err(StorageError::Io {
                key: root.display().to_string(),
                detail: "not a directory".into(),
            });
        }
        Ok(LocalStore {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                buffers: Arc::default(),
            }),
        })
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> StorageResult<T> + Send + 'static,
    ) -> StorageResult<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StorageError::Io {
                key: String::new(),
                detail: format!("storage task failed: {e}"),
            })?
    }
}

impl Inner {
    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn temp_path(&self, dir: &Path) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        dir.join(format!("{TEMP_PREFIX}{}-{n}-{nanos}", std::process::id()))
    }

    fn put(&self, key: &str, data: &[u8], mode: PutMode) -> StorageResult<()> {
        let dest = self.path(key);
        let dir = dest.parent().expect("keys are relative paths");
        fs::create_dir_all(dir).map_err(|e| io_err(key, e))?;
        if mode == PutMode::Create && dest.symlink_metadata().is_ok() {
            return Err(StorageError::AlreadyExists { key: key.into() });
        }
        let tmp = self.temp_path(dir);
        // Only a temporary file this call created is ever removed.
        super::direct::create_synced(&tmp, data).map_err(|e| {
            if e.kind() != io::ErrorKind::AlreadyExists {
                let _ = fs::remove_file(&tmp);
            }
            io_err(key, e)
        })?;
        let result = match mode {
            PutMode::Overwrite => fs::rename(&tmp, &dest),
            PutMode::Create => fs::hard_link(&tmp, &dest),
        };
        let _ = fs::remove_file(&tmp);
        result.map_err(|e| io_err(key, e))?;
        // Make the new directory entry durable too.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        let mut f = fs::File::open(self.path(key)).map_err(|e| io_err(key, e))?;
        let size = f.metadata().map_err(|e| io_err(key, e))?.len();
        let r = clamp_range(key, range, size)?;
        f.seek(SeekFrom::Start(r.start))
            .map_err(|e| io_err(key, e))?;
        let len = (r.end - r.start) as usize;
        self.buffers.read(&mut f, len).map_err(|e| io_err(key, e))
    }

    fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        // Walk only the directory that can hold the prefix.
        let base = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let mut out = Vec::new();
        let mut stack = vec![base.to_string()];
        while let Some(rel) = stack.pop() {
            let dir = if rel.is_empty() {
                self.root.clone()
            } else {
                self.root.join(&rel)
            };
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&rel, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_err(&rel, e))?;
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if name.starts_with(TEMP_PREFIX) {
                    continue;
                }
                let key = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                // An object deleted between the directory read and its
                // stat is simply not listed, as if listed a moment later.
                let ft = match entry.file_type() {
                    Ok(ft) => ft,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_err(&key, e)),
                };
                if ft.is_dir() {
                    if key.starts_with(prefix) || prefix.starts_with(&format!("{key}/")) {
                        stack.push(key);
                    }
                } else if ft.is_file() && key.starts_with(prefix) {
                    let m = match entry.metadata() {
                        Ok(m) => m,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(io_err(&key, e)),
                    };
                    out.push(ObjectMeta {
                        key,
                        size: m.len(),
                        modified_ms: modified_ms(&m),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

#[async_trait]
impl Storage for LocalStore {
    fn location(&self) -> String {
        format!("file://{}", self.inner.root.display())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            local_root: Some(self.inner.root.clone()),
            latency: Latency::Local,
        }
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        validate_key(key)?;
        let key = key.to_string();
        self.blocking(move |s| s.get(&key, range)).await
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> StorageResult<()> {
        validate_key(key)?;
        let key = key.to_string();
        self.blocking(move |s| s.put(&key, &data, mode)).await
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        let prefix = prefix.to_string();
        self.blocking(move |s| s.list(&prefix)).await
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        validate_key(key)?;
        let key = key.to_string();
        self.blocking(move |s| match fs::remove_file(s.path(&key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&key, e)),
            _ => Ok(()),
        })
        .await
    }

    async fn head(&self, key: &str) -> StorageResult<ObjectMeta> {
        validate_key(key)?;
        let key = key.to_string();
        self.blocking(move |s| {
            let m = fs::metadata(s.path(&key)).map_err(|e| io_err(&key, e))?;
            if !m.is_file() {
                return Err(StorageError::NotFound { key });
            }
            Ok(ObjectMeta {
                key,
                size: m.len(),
                modified_ms: modified_ms(&m),
            })
        })
        .await
    }

    async fn leftovers(&self, older_than_ms: i64) -> StorageResult<Vec<ObjectMeta>> {
        self.blocking(move |s| {
            let found = abandoned_temporaries(&s.root, older_than_ms).map_err(|e| io_err("", e))?;
            Ok(found
                .into_iter()
                .map(|(path, size, modified_ms)| ObjectMeta {
                    key: path
                        .strip_prefix(&s.root)
                        .unwrap_or(&path)
                        .display()
                        .to_string(),
                    size,
                    modified_ms: Some(modified_ms),
                })
                .collect())
        })
        .await
    }

    async fn remove_leftover(&self, key: &str) -> StorageResult<()> {
        validate_leftover(key)?;
        let key = key.to_string();
        self.blocking(move |s| match fs::remove_file(s.path(&key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&key, e)),
            _ => Ok(()),
        })
        .await
    }
}

/// A leftover's key is a key whose last part is a temporary file's name:
/// removing one can never reach an object or leave the folder.
fn validate_leftover(key: &str) -> StorageResult<()> {
    let (dir, name) = key.rsplit_once('/').unwrap_or(("", key));
    let valid_name = name.len() > TEMP_PREFIX.len()
        && name.starts_with(TEMP_PREFIX)
        && !name.contains(['\\', '\0']);
    if !valid_name {
        return Err(StorageError::InvalidKey {
            key: key.into(),
            reason: "not a temporary file's name",
        });
    }
    if dir.is_empty() {
        Ok(())
    } else {
        validate_key(dir)
    }
}

/// Temporary files (`.tmp-*`) under `root` last modified before
/// `older_than_ms`, with their sizes and modification times: what writers
/// killed between creating and renaming them left behind. They are never
/// listed as objects, so only this finds them.
fn abandoned_temporaries(root: &Path, older_than_ms: i64) -> io::Result<Vec<(PathBuf, u64, i64)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() && entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                // Gone meanwhile: its writer renamed or removed it.
                let Ok(m) = entry.metadata() else { continue };
                if let Some(t) = modified_ms(&m).filter(|t| *t < older_than_ms) {
                    out.push((entry.path(), m.len(), t));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    fn now_ms() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    }

    /// Only temporary files older than asked are leftovers; removing one
    /// goes through the port and can reach nothing else.
    #[tokio::test]
    async fn leftovers_are_old_temporary_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        store
            .put("packs/ab/obj", Bytes::from_static(b"pack"), PutMode::Create)
            .await
            .unwrap();
        fs::write(dir.path().join("packs/ab/.tmp-1-0-2"), b"half").unwrap();
        assert_eq!(store.capabilities().local_root.as_deref(), Some(dir.path()));
        assert!(store.leftovers(now_ms() - 60_000).await.unwrap().is_empty());
        let found = store.leftovers(now_ms() + 60_000).await.unwrap();
        let keys: Vec<_> = found.iter().map(|m| (m.key.as_str(), m.size)).collect();
        assert_eq!(keys, [("packs/ab/.tmp-1-0-2", 4)]);
        for bad in ["packs/ab/obj", "../x/.tmp-1", "packs/../.tmp-1", ".tmp-"] {
            assert!(
                matches!(
                    store.remove_leftover(bad).await,
                    Err(StorageError::InvalidKey { .. })
                ),
                "{bad}"
            );
        }
        store.remove_leftover("packs/ab/.tmp-1-0-2").await.unwrap();
        store.remove_leftover("packs/ab/.tmp-1-0-2").await.unwrap();
        assert!(store.leftovers(now_ms() + 60_000).await.unwrap().is_empty());
        assert!(store.head("packs/ab/obj").await.is_ok());
    }

    /// Two stores on one folder in one process (the node opens a
    /// repository more than once) never share a temporary name, whatever
    /// the clock says: the part before the time differs.
    #[test]
    fn stores_on_one_folder_never_share_a_temporary_name() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            LocalStore::open(dir.path()).unwrap(),
            LocalStore::open(dir.path()).unwrap(),
        );
        let without_time = |p: PathBuf| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name[..name.rfind('-').unwrap()].to_string()
        };
        let names: std::collections::BTreeSet<_> = (0..100)
            .flat_map(|_| [a.inner.temp_path(dir.path()), b.inner.temp_path(dir.path())])
            .map(without_time)
            .collect();
        assert_eq!(names.len(), 200);
    }

    /// Markers come and go while cleanup lists: a listing never fails
    /// because an object vanished under it.
    #[test]
    fn listing_while_objects_are_deleted_never_fails() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap().inner;
        // One object that stays, so every listing has something to find
        // even when the churning thread is not scheduled at all.
        store.put("config", b"{}", PutMode::Overwrite).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let churn = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("inflight/m{}.json", n % 64);
                    store.put(&key, b"{}", PutMode::Overwrite).unwrap();
                    if n % 2 == 1 {
                        let old = format!("inflight/m{}.json", (n + 32) % 64);
                        fs::remove_file(store.path(&old)).ok();
                    }
                    n += 1;
                }
            })
        };
        let mut listed = 0;
        for _ in 0..3000 {
            listed += store.list("").unwrap().len();
        }
        stop.store(true, Ordering::Relaxed);
        churn.join().unwrap();
        assert!(listed > 0);
    }
}
