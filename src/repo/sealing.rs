//! How one repository's objects are sealed and its blobs named: nothing
//! and SHA-256 in format v1, envelopes under the data key and keyed ids in
//! an encrypted repository (format v2, docs/FORMAT.md). Every reader and
//! writer of the repository holds one [`Sealing`], so no part of the
//! repository layer asks which format it is in: it names blobs with
//! [`Sealing::id_of`], seals them with [`Sealing::seal_blob_into`] and opens
//! them with [`Sealing::open_blob`]. Whole objects (roots, index files,
//! manifests, control records) are sealed below all of it, by
//! [`SealedStore`](crate::repo::sealed_store::SealedStore).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::core::crypto::content_ids::{IdScheme, KeyedIdKind};
use crate::core::crypto::envelope::{self, BlobBinding, ObjectKind, NONCE_LEN};
use crate::core::crypto::error::CryptoError;
use crate::core::crypto::keys::{DataKey, MasterKey};
use crate::core::format::blob::BlobKind;
use crate::core::format::id::Id;
use crate::core::format::pack::TableSeal;
use crate::error::{Error, Result};

/// Fills a buffer with random bytes (the shell's: the OS's generator
/// natively). Shells that only read pass none.
pub type NonceSource = fn(&mut [u8]);

/// The sealing of one repository; clones share the keys.
#[derive(Clone, Default)]
pub struct Sealing(Option<Arc<Keys>>);

struct Keys {
    /// Kept for `repo key add|passwd|export`, which wrap or show it.
    master: MasterKey,
    /// The key slot that opened the repository (`keyring::GIVEN_KEY` when
    /// the master key itself was given).
    opened_by: String,
    data: DataKey,
    ids: IdScheme,
    nonces: Option<NonceSource>,
}

impl fmt::Debug for Sealing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_encrypted() {
            "Sealing::Encrypted"
        } else {
            "Sealing::Plain"
        })
    }
}

/// A blob's stored bytes as opened.
pub struct OpenedBlob<'a> {
    /// Compressed or raw, as the blob's codec says.
    pub bytes: Cow<'a, [u8]>,
    /// Its envelope authenticated it as the blob of the id, codec and
    /// length asked for (layout 2): hashing the content again proves
    /// nothing more.
    pub id_bound: bool,
}

/// The envelope kind of a blob of `kind`.
pub fn blob_object(kind: BlobKind) -> ObjectKind {
    match kind {
        BlobKind::Data => ObjectKind::DataBlob,
        BlobKind::Tree => ObjectKind::TreeBlob,
    }
}

impl Sealing {
    /// Format v1: objects as they are, blobs named by SHA-256.
    pub fn plain() -> Sealing {
        Sealing(None)
    }

    /// An encrypted repository's sealing under `master`, opened by key
    /// slot `opened_by`, naming blobs by keyed hashes of kind `ids`;
    /// without `nonces` it opens objects but refuses to seal any.
    pub fn encrypted(
        master: &MasterKey,
        opened_by: &str,
        ids: KeyedIdKind,
        nonces: Option<NonceSource>,
    ) -> Sealing {
        Sealing(Some(Arc::new(Keys {
            master: master.clone(),
            opened_by: opened_by.to_string(),
            data: master.data_key(),
            ids: IdScheme::keyed(ids, &master.content_id_key()),
            nonces,
        })))
    }

    pub fn is_encrypted(&self) -> bool {
        self.0.is_some()
    }

    /// The master key and the slot that opened it, in an encrypted
    /// repository.
    pub fn master_key(&self) -> Option<(&MasterKey, &str)> {
        self.0.as_ref().map(|k| (&k.master, k.opened_by.as_str()))
    }

    /// The data key, in an encrypted repository.
    pub fn data_key(&self) -> Option<&DataKey> {
        self.0.as_ref().map(|k| &k.data)
    }

    /// How blob ids are computed here.
    pub fn ids(&self) -> IdScheme {
        self.0.as_ref().map_or(IdScheme::Plain, |k| k.ids.clone())
    }

    /// The id of the blob whose plain bytes are `plain`.
    pub fn id_of(&self, plain: &[u8]) -> Id {
        match &self.0 {
            None => Id::of(plain),
            Some(k) => k.ids.id_of(plain),
        }
    }

    /// A fresh random nonce, or [`Error::CannotEncrypt`].
    pub fn nonce(&self) -> Result<[u8; NONCE_LEN]> {
        let draw = self.0.as_ref().and_then(|k| k.nonces);
        let draw = draw.ok_or(Error::CannotEncrypt)?;
        let mut nonce = [0u8; NONCE_LEN];
        draw(&mut nonce);
        Ok(nonce)
    }

    /// The nonce of the next blob: none in a plain repository.
    pub fn blob_nonce(&self) -> Result<Option<[u8; NONCE_LEN]>> {
        self.0.as_ref().map(|_| self.nonce()).transpose()
    }

    /// Appends a blob's stored form to `out` (a pack being filled):
    /// `stored` itself in a plain repository, its envelope bound to `blob`
    /// under `nonce` (from [`Sealing::blob_nonce`]) here.
    pub fn seal_blob_into(
        &self,
        kind: BlobKind,
        blob: &BlobBinding,
        stored: &[u8],
        nonce: Option<[u8; NONCE_LEN]>,
        out: &mut Vec<u8>,
    ) {
        match (&self.0, nonce) {
            (Some(k), Some(nonce)) => {
                envelope::seal_blob_append(&k.data, blob_object(kind), blob, &nonce, stored, out)
            }
            (None, _) => out.extend_from_slice(stored),
            (Some(_), None) => unreachable!("blob_nonce gives an encrypted repository a nonce"),
        }
    }

    /// The compressed bytes of the blob `blob` describes, from its stored
    /// form.
    pub fn open_blob<'a>(
        &self,
        kind: BlobKind,
        blob: &BlobBinding,
        stored: &'a [u8],
    ) -> std::result::Result<OpenedBlob<'a>, CryptoError> {
        match &self.0 {
            None => Ok(OpenedBlob {
                bytes: Cow::Borrowed(stored),
                id_bound: false,
            }),
            Some(k) => {
                let opened = envelope::open_blob(&k.data, blob_object(kind), blob, stored)?;
                Ok(OpenedBlob {
                    bytes: Cow::Owned(opened.plain),
                    id_bound: opened.id_bound,
                })
            }
        }
    }

    /// How a writer finishes a pack's table: sealed here, plain in v1.
    pub fn table_seal(&self) -> Result<Option<TableSeal<'_>>> {
        match &self.0 {
            None => Ok(None),
            Some(k) => Ok(Some(TableSeal {
                key: &k.data,
                nonce: self.nonce()?,
            })),
        }
    }

    /// A whole object's stored form (a root, an index file, ...).
    pub fn seal(&self, kind: ObjectKind, plain: &[u8]) -> Result<Vec<u8>> {
        match &self.0 {
            None => Ok(plain.to_vec()),
            Some(k) => Ok(envelope::seal(&k.data, kind, &self.nonce()?, plain)),
        }
    }

    /// A whole object's plain bytes from its stored form.
    pub fn open(
        &self,
        kind: ObjectKind,
        stored: &[u8],
    ) -> std::result::Result<Vec<u8>, CryptoError> {
        match &self.0 {
            None => Ok(stored.to_vec()),
            Some(k) => envelope::open(&k.data, kind, stored),
        }
    }
}
