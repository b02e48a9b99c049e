//! Collects new blobs into packs and uploads each pack when it is full.
//!
//! Deduplication happens here: a blob already in the repository index or
//! already added in this run is not stored again. Compression runs outside
//! any lock, so all pipeline threads compress at once; full packs go to
//! the [`Uploader`]'s threads.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

use crate::core::crypto::content_ids::IdScheme;
use crate::core::crypto::envelope::BlobBinding;
use crate::core::format::blob::{BlobEntry, BlobKind};
use crate::core::format::codec::Codec;
use crate::core::format::id::{Id, IdSet};
use crate::core::format::index::{IndexFile, RepoIndex};
use crate::core::format::pack::PackBuilder;
use crate::core::format::patch::{self, StoredPatch};
use crate::native::backup::compressor::with_encoded;
use crate::native::backup::uploader::Uploader;
use crate::native::error::Result;
use crate::native::job::Abort;
use crate::native::repo::Repo;
use crate::storage::direct::DIRECT_ALIGN;

/// How a claimed data chunk may be stored ([`Packer::claim_data`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Known or claimed by another thread: nothing to store.
    Known,
    /// Whole: no base to patch it over.
    Whole,
    /// As a patch over this base, if the patch is small enough.
    Over(Id),
}

impl Claim {
    /// The base to read for this chunk, if any.
    pub fn base(self) -> Option<Id> {
        match self {
            Claim::Over(base) => Some(base),
            Claim::Known | Claim::Whole => None,
        }
    }
}

/// What adding a blob cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Added {
    /// Plain bytes stored (0 when the blob was already known).
    pub plain: u64,
    /// Stored (compressed) bytes.
    pub stored: u64,
}

/// A patch's body larger than this share of its chunk is not worth it:
/// the chunk is stored whole (compressed, a page group of a database
/// shrinks to a fifth or so; a body half its size rarely beats that).
const PATCH_AT_MOST_ONE_IN: usize = 2;

/// The index file of `packs`, naming the bases of the patches in them
/// (a stopped run's unsent packs take their patches with them).
fn index_file(packs: Vec<(Id, Vec<BlobEntry>)>, bases: Vec<(Id, Id)>) -> IndexFile {
    let stored: IdSet = packs
        .iter()
        .flat_map(|(_, es)| es.iter())
        .filter(|e| e.codec == Codec::Patch)
        .map(|e| e.id)
        .collect();
    let mut bases: Vec<(Id, Id)> = bases
        .into_iter()
        .filter(|(id, _)| stored.contains(id))
        .collect();
    bases.sort();
    IndexFile { packs, bases }
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
    /// (patch blob, base) of every patch stored.
    bases: Mutex<Vec<(Id, Id)>>,
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
            bases: Mutex::new(Vec::new()),
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
        if !self.claim(id)? {
            return Ok(Added::default());
        }
        self.store_whole(id, kind, plain)
    }

    /// [`Packer::add`] for a data chunk whose file held `previous` at the
    /// same place in the parent snapshot: claims `id` for this run and
    /// says how it may be stored. A new chunk that differs from `previous`
    /// may become a patch over it (over its base, if it is a patch itself:
    /// chains are one long); the caller reads the bases of many such
    /// chunks together ([`Packer::read_bases`]) and stores each with
    /// [`Packer::store_claimed`].
    pub fn claim_data(&self, id: Id, previous: Option<&Id>) -> Result<Claim> {
        if !self.claim(id)? {
            return Ok(Claim::Known);
        }
        Ok(previous
            .filter(|p| **p != id)
            .and_then(|p| self.patch_base(p))
            .map_or(Claim::Whole, Claim::Over))
    }

    /// The plain bytes of bases `ids`, read together (neighbours in a pack
    /// with one ranged read, several reads at once: against object storage
    /// one round trip per changed page group made an incremental of a
    /// database slower than its initial snapshot). A base that cannot be
    /// read costs its patches, not the snapshot: they are stored whole.
    /// The bases are not checked against their ids (a fifth of an
    /// incremental's CPU), as deduplication trusts a known blob: a
    /// damaged zstd frame fails or decodes to noise whose diff is too large
    /// to store; a raw base damaged in place costs its chunks as it would
    /// cost ones deduplicated against it (readers check a base before
    /// applying a patch, and check finds it).
    pub fn read_bases(&self, ids: &[Id]) -> HashMap<Id, Bytes> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        self.repo
            .bases_unchecked(self.index, &ids)
            .unwrap_or_default()
    }

    /// Stores data chunk `id` as `claim` says: nothing when known, else as
    /// a patch over its base (found in `bases`, as [`Packer::read_bases`]
    /// gives them) when there is one and the patch is small enough, else
    /// whole.
    pub fn store_claimed(
        &self,
        id: Id,
        plain: &[u8],
        claim: Claim,
        bases: &HashMap<Id, Bytes>,
    ) -> Result<Added> {
        let base = match claim {
            Claim::Known => return Ok(Added::default()),
            Claim::Whole => None,
            Claim::Over(base) => bases.get(&base).map(|b| (base, &b[..])),
        };
        let patched = base.and_then(|(base, base_plain)| {
            let body = patch::diff(base_plain, plain);
            (body.len() <= plain.len() / PATCH_AT_MOST_ONE_IN).then_some((base, body))
        });
        match patched {
            Some((base, body)) => self.store_patch(id, plain.len() as u32, base, &body),
            None => self.store_whole(id, BlobKind::Data, plain),
        }
    }

    /// Whether this run stores `id`: false when it is known or another
    /// thread claimed it.
    fn claim(&self, id: Id) -> Result<bool> {
        self.abort.check("snapshot")?;
        Ok(!self.index.contains(&id) && self.seen.lock().unwrap().insert(id))
    }

    /// The blob a chunk that replaces `previous` is patched over: a data
    /// blob stored whole in the repository.
    fn patch_base(&self, previous: &Id) -> Option<Id> {
        let base = self.index.base_of(previous).unwrap_or(*previous);
        let at = self.index.get(&base)?;
        (at.kind == BlobKind::Data && at.codec != Codec::Patch).then_some(base)
    }

    fn store_whole(&self, id: Id, kind: BlobKind, plain: &[u8]) -> Result<Added> {
        let cfg = &self.repo.config;
        let (stored_len, full) = with_encoded(
            cfg.compression,
            cfg.compression_level,
            plain,
            |codec, stored| self.put(id, kind, codec, plain.len() as u32, stored),
        )?;
        self.send_full(full)?;
        Ok(Added {
            plain: plain.len() as u64,
            stored: stored_len,
        })
    }

    /// Stores patch blob `id` (`raw_len` plain bytes): `body` over `base`,
    /// the body compressed as any blob is.
    fn store_patch(&self, id: Id, raw_len: u32, base: Id, body: &[u8]) -> Result<Added> {
        let cfg = &self.repo.config;
        let (stored_len, full) = with_encoded(
            cfg.compression,
            cfg.compression_level,
            body,
            |body_codec, stored_body| {
                let stored = StoredPatch {
                    base,
                    body_codec,
                    body_len: body.len() as u32,
                    body: stored_body,
                }
                .encode();
                self.put(id, BlobKind::Data, Codec::Patch, raw_len, &stored)
            },
        )?;
        self.bases.lock().unwrap().push((id, base));
        self.send_full(full)?;
        Ok(Added {
            plain: u64::from(raw_len),
            stored: stored_len,
        })
    }

    /// Seals `stored` into the open pack of its kind; the stored length,
    /// and the pack if that filled it.
    fn put(
        &self,
        id: Id,
        kind: BlobKind,
        codec: Codec,
        raw_len: u32,
        stored: &[u8],
    ) -> Result<(u64, Option<PackBuilder>)> {
        let cfg = &self.repo.config;
        let builder = match kind {
            BlobKind::Data => &self.data,
            BlobKind::Tree => &self.trees,
        };
        let sealing = self.repo.sealing();
        let nonce = sealing.blob_nonce()?;
        let mut b = builder.lock().unwrap();
        let before = b.len();
        let binding = BlobBinding { id, codec, raw_len };
        b.add_with(id, kind, codec, raw_len, |buf| {
            sealing.seal_blob_into(kind, &binding, stored, nonce, buf)
        });
        let stored_len = (b.len() - before) as u64;
        let full = (b.len() as u64 >= cfg.pack_size)
            .then(|| std::mem::replace(&mut *b, self.fresh_builder(kind)));
        Ok((stored_len, full))
    }

    fn send_full(&self, full: Option<PackBuilder>) -> Result<()> {
        match full {
            Some(pack) => self.uploader.send(pack),
            None => Ok(()),
        }
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
            index: index_file(done.packs, self.bases.into_inner().unwrap()),
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
            index: index_file(done.packs, self.bases.into_inner().unwrap()),
            packs_written: done.packs_written,
            bytes_uploaded: done.bytes_uploaded,
        })
    }
}
