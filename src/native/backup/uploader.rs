//! Pack uploads on their own threads, so the pipeline threads keep chunking,
//! hashing and compressing while a full pack is sealed (hashed) and written
//! (an fsync on a local disk, a network transfer on object storage).
//!
//! Memory stays bounded: the hand-over is a rendezvous, so a pipeline thread
//! with a full pack waits until an upload thread is free. At most
//! `threads` packs are in upload and one more is waiting to be handed over.
//!
//! The buffers of uploaded packs come back for the next packs to fill
//! ([`Uploader::recycled`]): a fresh 16 MiB buffer costs thousands of page
//! faults, each zeroing a page (measured in docs/PERFORMANCE.md), while a
//! recycled one is already mapped. Only buffers no one else holds return.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use bytes::Bytes;

use crate::core::format::blob::BlobEntry;
use crate::core::format::id::Id;
use crate::core::format::pack::PackBuilder;
use crate::native::error::{Error, Result};
use crate::native::repo::put_pack_into;
use crate::repo::sealing::Sealing;
use crate::storage::Storage;

#[derive(Default)]
struct Shared {
    written: Mutex<Vec<(Id, Vec<BlobEntry>)>>,
    packs_written: AtomicU64,
    bytes_uploaded: AtomicU64,
    /// The first upload failure, until someone reports it; later packs are
    /// dropped unsent.
    failed: Mutex<Option<Error>>,
    /// Its message and whether it was retryable, for everyone who asks
    /// after it was reported.
    failure: OnceLock<(String, bool)>,
    /// Buffers of uploaded packs, for the next packs.
    spare: Mutex<Vec<Vec<u8>>>,
    /// Set by [`Uploader::abandon`]: packs handed over from now on are
    /// dropped unsent, so a stopping snapshot waits for no new upload.
    discard: std::sync::atomic::AtomicBool,
}

/// Spare buffers kept: the packs in flight come back one at a time, and
/// the packer takes one as soon as a pack fills.
const SPARE_MAX: usize = 2;

pub struct Uploader {
    tx: Option<SyncSender<PackBuilder>>,
    threads: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// What the uploads stored, once all of them finished.
pub struct Uploaded {
    pub packs: Vec<(Id, Vec<BlobEntry>)>,
    pub packs_written: u64,
    pub bytes_uploaded: u64,
}

impl Uploader {
    /// One upload thread suits a local disk (writes are cheap, the fsync
    /// waits); object stores hide their latency behind a few at once.
    pub fn threads_for(store: &dyn Storage) -> usize {
        if store.capabilities().latency == crate::storage::Latency::Local {
            2
        } else {
            3
        }
    }

    /// Packs' tables are sealed with `sealing` (an encrypted repository's).
    pub fn start(store: Arc<dyn Storage>, sealing: Sealing, threads: usize) -> Uploader {
        let (tx, rx) = sync_channel::<PackBuilder>(0);
        let rx = Arc::new(Mutex::new(rx));
        let shared = Arc::new(Shared::default());
        let threads = (0..threads.max(1))
            .map(|n| {
                let (rx, store, shared) = (rx.clone(), store.clone(), shared.clone());
                let sealing = sealing.clone();
                std::thread::Builder::new()
                    .name(format!("snapkeep-upload-{n}"))
                    .spawn(move || loop {
                        let next = rx.lock().unwrap().recv();
                        let Ok(pack) = next else { return };
                        if shared.failure.get().is_some() || shared.discard.load(Ordering::Relaxed)
                        {
                            continue;
                        }
                        let seal = match sealing.table_seal() {
                            Ok(seal) => seal,
                            Err(e) => {
                                let seen = (e.to_string(), false);
                                if shared.failure.set(seen).is_ok() {
                                    *shared.failed.lock().unwrap() = Some(e);
                                }
                                continue;
                            }
                        };
                        let (id, buf, lead, entries) = pack.finish_in_buffer(seal);
                        let len = (buf.len() - lead) as u64;
                        let bytes = Bytes::from(buf).slice(lead..);
                        match put_pack_into(store.as_ref(), &id, bytes.clone()) {
                            Ok(()) => {
                                shared.keep_spare(bytes);
                                shared.packs_written.fetch_add(1, Ordering::Relaxed);
                                shared.bytes_uploaded.fetch_add(len, Ordering::Relaxed);
                                shared.written.lock().unwrap().push((id, entries));
                            }
                            Err(e) => {
                                let seen = (e.to_string(), e.is_retryable());
                                if shared.failure.set(seen).is_ok() {
                                    *shared.failed.lock().unwrap() = Some(e);
                                }
                            }
                        }
                    })
                    .expect("an upload thread starts")
            })
            .collect();
        Uploader {
            tx: Some(tx),
            threads,
            shared,
        }
    }

    /// The buffer of an uploaded pack, if one came back.
    pub fn recycled(&self) -> Option<Vec<u8>> {
        self.shared.spare.lock().unwrap().pop()
    }

    /// Hands a full pack over, waiting for a free upload thread. Fails with
    /// an earlier upload's error, so the snapshot stops at the first one.
    pub fn send(&self, pack: PackBuilder) -> Result<()> {
        self.check()?;
        if pack.is_empty() {
            return Ok(());
        }
        let tx = self.tx.as_ref().expect("open until finish");
        if tx.send(pack).is_err() {
            // Every upload thread is gone: only a panic does that.
            return Err(Error::UploadThreadPanicked);
        }
        Ok(())
    }

    fn check(&self) -> Result<()> {
        let Some((message, retryable)) = self.shared.failure.get() else {
            return Ok(());
        };
        match self.shared.failed.lock().unwrap().take() {
            Some(e) => Err(e),
            None => Err(Error::UploadFailed {
                message: message.clone(),
                retryable: *retryable,
            }),
        }
    }

    /// Waits for the uploads already running and returns what was stored;
    /// packs not yet being uploaded are dropped (a stopping snapshot).
    pub fn abandon(self) -> Result<Uploaded> {
        self.shared.discard.store(true, Ordering::Relaxed);
        self.finish()
    }

    /// Waits for every upload and returns what was stored, or the first
    /// failure.
    pub fn finish(mut self) -> Result<Uploaded> {
        drop(self.tx.take());
        let mut panicked = false;
        for t in self.threads.drain(..) {
            panicked |= t.join().is_err();
        }
        self.check()?;
        if panicked {
            return Err(Error::UploadThreadPanicked);
        }
        let mut packs = std::mem::take(&mut *self.shared.written.lock().unwrap());
        packs.sort_by_key(|(id, _)| *id);
        Ok(Uploaded {
            packs,
            packs_written: self.shared.packs_written.load(Ordering::Relaxed),
            bytes_uploaded: self.shared.bytes_uploaded.load(Ordering::Relaxed),
        })
    }
}

impl Shared {
    /// Keeps an uploaded pack's buffer if the store let go of it.
    fn keep_spare(&self, bytes: Bytes) {
        if let Ok(mut buf) = bytes.try_into_mut() {
            // Emptied first, so taking the Vec back moves no bytes.
            buf.clear();
            let mut spare = self.spare.lock().unwrap();
            if spare.len() < SPARE_MAX {
                spare.push(Vec::from(buf));
            }
        }
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        drop(self.tx.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::blob::BlobKind;
    use crate::core::format::codec::Codec;
    use crate::core::format::keys;
    use crate::native::runtime::block_on;
    use crate::storage::local::LocalStore;
    use crate::storage::memory::MemoryStore;

    fn pack(n: u8, buf: Option<Vec<u8>>) -> PackBuilder {
        let mut b = match buf {
            Some(buf) => PackBuilder::in_buffer(buf, 0),
            None => PackBuilder::new(),
        };
        let blob = vec![n; 100_000];
        b.add(
            Id::of(&blob),
            BlobKind::Data,
            Codec::Raw,
            &blob,
            blob.len() as u32,
        );
        b
    }

    /// Packs built in recycled buffers must never change what a store
    /// still holds: the memory store keeps the uploaded bytes themselves,
    /// so their buffers must not come back.
    #[test]
    fn a_buffer_the_store_still_holds_is_never_reused() {
        let store = Arc::new(MemoryStore::new());
        let up = Uploader::start(store.clone(), Sealing::plain(), 1);
        for n in 0..6 {
            let buf = up.recycled();
            assert!(buf.is_none(), "pack {n} got back a buffer the store holds");
            up.send(pack(n, buf)).unwrap();
        }
        let done = up.finish().unwrap();
        assert_eq!(done.packs.len(), 6);
        for (id, _) in &done.packs {
            let bytes = block_on(store.get(&keys::pack(id), None)).unwrap();
            assert_eq!(Id::of(&bytes), *id);
        }
    }

    /// A local store lets go of the bytes once written: their buffers come
    /// back, and packs built in them are stored intact.
    #[test]
    fn a_local_store_returns_buffers_and_reused_ones_store_intact_packs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open(dir.path()).unwrap());
        let up = Uploader::start(store.clone(), Sealing::plain(), 1);
        let mut reused = 0;
        for n in 0..6 {
            // The previous pack's upload may still be running.
            let mut buf = up.recycled();
            for _ in 0..200 {
                if buf.is_some() || n == 0 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
                buf = up.recycled();
            }
            reused += buf.is_some() as usize;
            up.send(pack(n, buf)).unwrap();
        }
        let done = up.finish().unwrap();
        assert!(reused >= 4, "only {reused} of 5 buffers came back");
        for (id, _) in &done.packs {
            let bytes = block_on(store.get(&keys::pack(id), None)).unwrap();
            assert_eq!(Id::of(&bytes), *id);
        }
    }
}
