//! The repository index: blob id → where the blob is stored.
//!
//! Index files (`index/<id>`) are written once and never changed; readers
//! merge every index file the current root generation lists.
//!
//! ```text
//! "SKINDEX1"                               8-byte magic
//! pack_count: u32 LE
//! per pack: pack id (32) · entry count u32 LE · count × BlobEntry (52)
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use crate::core::error::FormatError;
use crate::core::format::blob::{BlobEntry, BlobKind};
use crate::core::format::codec::Codec;
use crate::core::format::id::{Id, IdMap};

pub const INDEX_MAGIC: &[u8; 8] = b"SKINDEX1";

/// One blob's place in the repository (pack interned as a number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub pack: u32,
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
    pub kind: BlobKind,
    pub codec: Codec,
}

/// The contents of one index file: blob tables grouped by pack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexFile {
    pub packs: Vec<(Id, Vec<BlobEntry>)>,
}

impl IndexFile {
    pub fn encode(&self) -> Vec<u8> {
        let blobs: usize = self.packs.iter().map(|(_, e)| e.len()).sum();
        let mut out = Vec::with_capacity(12 + self.packs.len() * 36 + blobs * BlobEntry::SIZE);
        out.extend_from_slice(INDEX_MAGIC);
        out.extend_from_slice(&(self.packs.len() as u32).to_le_bytes());
        for (pack, entries) in &self.packs {
            out.extend_from_slice(&pack.0);
            out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for e in entries {
                e.encode_into(&mut out);
            }
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<IndexFile, FormatError> {
        if b.len() < 12 || &b[..8] != INDEX_MAGIC {
            return Err(FormatError::BadMagic("index file"));
        }
        let mut pos = 8;
        let mut take = |n: usize| -> Result<&[u8], FormatError> {
            let s = b
                .get(pos..pos + n)
                .ok_or(FormatError::Truncated("index file"))?;
            pos += n;
            Ok(s)
        };
        let count = u32::from_le_bytes(take(4)?.try_into().unwrap());
        let mut packs = Vec::new();
        for _ in 0..count {
            let pack = Id::from_slice(take(32)?).unwrap();
            let n = u32::from_le_bytes(take(4)?.try_into().unwrap()) as usize;
            let raw = take(
                n.checked_mul(BlobEntry::SIZE)
                    .ok_or(FormatError::Truncated("index file"))?,
            )?;
            let entries = raw
                .chunks_exact(BlobEntry::SIZE)
                .map(BlobEntry::decode)
                .collect::<Result<Vec<_>, _>>()?;
            packs.push((pack, entries));
        }
        if pos != b.len() {
            return Err(FormatError::Invalid("index file has trailing bytes".into()));
        }
        Ok(IndexFile { packs })
    }
}

/// The merged in-memory index. Clones share its tables (a reader keeping
/// the index hands one out per request); the first change to a clone
/// copies them.
#[derive(Debug, Default, Clone)]
pub struct RepoIndex(Arc<Tables>);

#[derive(Debug, Default, Clone)]
struct Tables {
    packs: Vec<Id>,
    pack_numbers: IdMap<u32>,
    blobs: IdMap<Location>,
}

impl Tables {
    fn intern(&mut self, pack: Id) -> u32 {
        if let Some(&n) = self.pack_numbers.get(&pack) {
            return n;
        }
        let n = self.packs.len() as u32;
        self.packs.push(pack);
        self.pack_numbers.insert(pack, n);
        n
    }
}

impl RepoIndex {
    pub fn new() -> RepoIndex {
        RepoIndex::default()
    }

    /// Adds a pack's blobs. A blob already indexed keeps its first location:
    /// any copy is as good as another, since ids are content hashes.
    pub fn add_pack(&mut self, pack: Id, entries: &[BlobEntry]) {
        let t = Arc::make_mut(&mut self.0);
        let n = t.intern(pack);
        for e in entries {
            t.blobs.entry(e.id).or_insert(Location {
                pack: n,
                offset: e.offset,
                stored_len: e.stored_len,
                raw_len: e.raw_len,
                kind: e.kind,
                codec: e.codec,
            });
        }
    }

    pub fn merge(&mut self, file: &IndexFile) {
        for (pack, entries) in &file.packs {
            self.add_pack(*pack, entries);
        }
    }

    pub fn get(&self, id: &Id) -> Option<&Location> {
        self.0.blobs.get(id)
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.0.blobs.contains_key(id)
    }

    pub fn pack_id(&self, n: u32) -> Id {
        self.0.packs[n as usize]
    }

    pub fn blob_count(&self) -> usize {
        self.0.blobs.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Id, &Location)> {
        self.0.blobs.iter()
    }

    /// Every pack that holds at least one indexed blob.
    pub fn packs(&self) -> impl Iterator<Item = &Id> {
        self.0.packs.iter()
    }

    pub fn entry(&self, id: &Id) -> Option<(Id, BlobEntry)> {
        self.0.blobs.get(id).map(|l| self.resolve(id, l))
    }

    /// The pack id and blob entry of a location this index gave for `id`.
    pub fn resolve(&self, id: &Id, l: &Location) -> (Id, BlobEntry) {
        (
            self.0.packs[l.pack as usize],
            BlobEntry {
                id: *id,
                offset: l.offset,
                stored_len: l.stored_len,
                raw_len: l.raw_len,
                kind: l.kind,
                codec: l.codec,
            },
        )
    }

    /// The index as one index file, grouped by pack (sorted, so equal indexes
    /// encode to equal bytes).
    pub fn to_file(&self) -> IndexFile {
        let mut by_pack: HashMap<u32, Vec<BlobEntry>> = HashMap::new();
        for id in self.0.blobs.keys() {
            let (_, e) = self.entry(id).unwrap();
            by_pack.entry(self.0.blobs[id].pack).or_default().push(e);
        }
        let mut packs: Vec<(Id, Vec<BlobEntry>)> = by_pack
            .into_iter()
            .map(|(n, mut es)| {
                es.sort_by_key(|e| e.offset);
                (self.0.packs[n as usize], es)
            })
            .collect();
        packs.sort_by_key(|(p, _)| *p);
        IndexFile { packs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::entry;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn clones_share_tables_until_one_changes() {
        let mut index = RepoIndex::new();
        index.add_pack(Id::of(b"p1"), &[entry(b"a", 8)]);
        let kept = index.clone();
        assert!(Arc::ptr_eq(&kept.0, &index.0), "a clone copies nothing");
        let mut changed = kept.clone();
        changed.add_pack(Id::of(b"p2"), &[entry(b"b", 8)]);
        assert!(!Arc::ptr_eq(&kept.0, &changed.0));
        assert_eq!((kept.blob_count(), changed.blob_count()), (1, 2));
        assert!(!kept.contains(&Id::of(b"b")) && changed.contains(&Id::of(b"b")));
        assert_eq!(index.packs().count(), 1);
    }

    #[test]
    fn index_file_round_trip_and_merge() {
        let f = IndexFile {
            packs: vec![
                (Id::of(b"p1"), vec![entry(b"a", 8), entry(b"b", 9)]),
                (Id::of(b"p2"), vec![entry(b"a", 8), entry(b"c", 9)]),
            ],
        };
        let bytes = f.encode();
        assert_eq!(IndexFile::decode(&bytes).unwrap(), f);
        let mut idx = RepoIndex::new();
        idx.merge(&f);
        assert_eq!(idx.blob_count(), 3);
        let (pack, _) = idx.entry(&Id::of(b"a")).unwrap();
        assert_eq!(pack, Id::of(b"p1"));
        let again = idx.to_file();
        let mut idx2 = RepoIndex::new();
        idx2.merge(&IndexFile::decode(&again.encode()).unwrap());
        assert_eq!(idx2.blob_count(), 3);
    }

    #[test]
    fn truncated_or_padded_index_files_are_rejected() {
        let f = IndexFile {
            packs: vec![(Id::of(b"p"), vec![entry(b"a", 8)])],
        };
        let bytes = f.encode();
        assert!(IndexFile::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(IndexFile::decode(&padded).is_err());
        assert!(IndexFile::decode(b"nonsense").is_err());
    }
}
