//! Collects new blobs into packs and uploads each pack when it is full.
//!
//! Deduplication happens here: a blob already in the repository index or
//! already added in this run is not stored again. Compression runs outside
//! any lock, so all pipeline threads compress at once; full packs go to
//! the [`Uploader`]'s threads.

use std::sync::Mutex;

use crate::core::crypto::content_ids::IdScheme;
use crate::core::crypto::envelope::BlobBinding;
use crate::core::format::blob::BlobKind;
use crate::core::format::id::{Id, IdSet};
use crate::core::format::index::{IndexFile, RepoIndex};
use crate::core::format::pack::PackBuilder;
use crate::native::backup::compressor::with_encoded;
use crate::native::backup::uploader::Uploader;
use crate::native::error::Result;
use crate::native::job::Abort;
use crate::native::repo::Repo;
use crate::storage::direct::DIRECT_ALIGN;

/// What adding a blob cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Added {
    /// Plain bytes stored (0 when the blob was already known).
    pub plain: u64,
    /// Stored (compressed) bytes.
    pub stored: u64,
}

/// What a finished packer stored.
#[derive(Debug)]
pub struct PackerTotals {
    pub index: IndexFile,
    pub packs_written: u64,
    pub bytes_uploaded: u64,
}

pub struct Packer<'a> {
    repo: &'a Repo,
    index: &'a RepoIndex,
    seen: Mutex<IdSet>,
    data: Mutex<PackBuilder>,
    trees: Mutex<PackBuilder>,
    uploader: Uploader,
    /// Checked before each blob: an aborted snapshot stops within a chunk.
    abort: Abort,
}

/// A data pack's buffer: a full pack, one more chunk at most, the table,
/// and room to start the pack at an aligned address.
fn data_pack_capacity(repo: &Repo) -> usize {
    repo.config.pack_size as usize + repo.config.chunker.max as usize + 4096 + DIRECT_ALIGN
}

/// A data pack starting at an address aligned for direct IO, so a local
/// repository writes it to disk without copying it (see `storage::direct`).
fn data_builder(buf: Vec<u8>) -> PackBuilder {
    let lead = buf.as_ptr().align_offset(DIRECT_ALIGN);
    PackBuilder::in_buffer(buf, lead)
}

impl<'a> Packer<'a> {
    pub fn new(repo: &'a Repo, index: &'a RepoIndex) -> Packer<'a> {
        Packer {
            repo,
            index,
            seen: Mutex::new(IdSet::default()),
            data: Mutex::new(data_builder(Vec::with_capacity(data_pack_capacity(repo)))),
            trees: Mutex::new(PackBuilder::new()),
            uploader: Uploader::start(
                repo.store.clone(),
                repo.sealing().clone(),
                Uploader::threads_for(repo.store.as_ref()),
            ),
            abort: Abort::default(),
        }
    }

    /// Makes every later [`Packer::add`] fail with `Error::Aborted` once
    /// `abort` is set.
    pub fn abort_on(mut self, abort: Abort) -> Packer<'a> {
        self.abort = abort;
        self
    }

    /// The id of the blob whose plain bytes are `plain`: SHA-256, or the
    /// keyed id in an encrypted repository.
    pub fn id_of(&self, plain: &[u8]) -> Id {
        self.repo.sealing().id_of(plain)
    }

    /// How the destination names blobs.
    pub fn ids(&self) -> IdScheme {
        self.repo.sealing().ids()
    }

    /// True if the blob is stored already or claimed by this run.
    pub fn is_known(&self, id: &Id) -> bool {
        self.index.contains(id) || self.seen.lock().unwrap().contains(id)
    }

    /// Stores `plain` under `id` unless it is known. The caller guarantees
    /// `id == self.id_of(plain)`.
    pub fn add(&self, id: Id, kind: BlobKind, plain: &[u8]) -> Result<Added> {
        self.abort.check("snapshot")?;
        if self.index.contains(&id) || !self.seen.lock().unwrap().insert(id) {
            return Ok(Added::default());
        }
        let cfg = &self.repo.config;
        let builder = match kind {
            BlobKind::Data => &self.data,
            BlobKind::Tree => &self.trees,
        };
        let sealing = self.repo.sealing();
        let nonce = sealing.blob_nonce()?;
        let (stored_len, full) = with_encoded(
            cfg.compression,
            cfg.compression_level,
            plain,
            |codec, stored| {
                let mut b = builder.lock().unwrap();
                let before = b.len();
                let raw_len = plain.len() as u32;
                let binding = BlobBinding { id, codec, raw_len };
                b.add_with(id, kind, codec, raw_len, |buf| {
                    sealing.seal_blob_into(kind, &binding, stored, nonce, buf)
                });
                let stored_len = (b.len() - before) as u64;
                let full = (b.len() as u64 >= cfg.pack_size)
                    .then(|| std::mem::replace(&mut *b, self.fresh_builder(kind)));
                (stored_len, full)
            },
        );
        if let Some(pack) = full {
            self.uploader.send(pack)?;
        }
        Ok(Added {
            plain: plain.len() as u64,
            stored: stored_len,
        })
    }

    /// Data packs are sized up front so filling one never reallocates, in
    /// the buffer of an uploaded pack when one is back.
    fn fresh_builder(&self, kind: BlobKind) -> PackBuilder {
        match kind {
            BlobKind::Data => {
                let capacity = data_pack_capacity(self.repo);
                match self.uploader.recycled() {
                    Some(buf) if buf.capacity() >= capacity => data_builder(buf),
                    _ => data_builder(Vec::with_capacity(capacity)),
                }
            }
            BlobKind::Tree => PackBuilder::new(),
        }
    }

    /// Stops: waits for the uploads already running, drops the packs not
    /// yet sent (the open ones included), and returns the index of what
    /// was stored. A stopped snapshot keeps that for its rerun.
    pub fn abandon(self) -> Result<PackerTotals> {
        let done = self.uploader.abandon()?;
        Ok(PackerTotals {
            index: IndexFile { packs: done.packs },
            packs_written: done.packs_written,
            bytes_uploaded: done.bytes_uploaded,
        })
    }

    /// Uploads the partly filled packs and returns the index of everything
    /// this run stored (empty if nothing was new).
    pub fn finish(self) -> Result<PackerTotals> {
        let data = std::mem::take(&mut *self.data.lock().unwrap());
        self.uploader.send(data)?;
        let trees = std::mem::take(&mut *self.trees.lock().unwrap());
        self.uploader.send(trees)?;
        let done = self.uploader.finish()?;
        Ok(PackerTotals {
            index: IndexFile { packs: done.packs },
            packs_written: done.packs_written,
            bytes_uploaded: done.bytes_uploaded,
        })
    }
}
