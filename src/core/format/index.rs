//! The repository index: blob id → where the blob is stored.
//!
//! Index files (`index/<id>`) are written once and never changed; readers
//! merge every index file the current root generation lists.
//!
//! ```text
//! "SKINDEX1" or "SKINDEX2"                 8-byte magic
//! pack_count: u32 LE
//! per pack: pack id (32) · entry count u32 LE · count × BlobEntry (52)
//! only in SKINDEX2: base_count u32 LE · count × (blob id 32 · base id 32)
//! ```
//!
//! The bases section names the base of every patch blob the file lists
//! (`core::format::patch`), so readers can fetch a base with its patch and
//! cleanup keeps the bases of the patches it keeps. A file without patch
//! blobs is written as SKINDEX1, byte for byte as before patches existed.

use std::collections::HashMap;
use std::sync::Arc;

use crate::core::error::FormatError;
use crate::core::format::blob::{BlobEntry, BlobKind};
use crate::core::format::codec::Codec;
use crate::core::format::id::{Id, IdMap};

pub const INDEX_MAGIC: &[u8; 8] = b"SKINDEX1";
pub const INDEX_MAGIC_WITH_BASES: &[u8; 8] = b"SKINDEX2";

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
    /// (patch blob id, base id) for every patch blob in `packs`.
    pub bases: Vec<(Id, Id)>,
}

impl IndexFile {
    pub fn encode(&self) -> Vec<u8> {
        let blobs: usize = self.packs.iter().map(|(_, e)| e.len()).sum();
        let mut out = Vec::with_capacity(12 + self.packs.len() * 36 + blobs * BlobEntry::SIZE);
        out.extend_from_slice(if self.bases.is_empty() {
            INDEX_MAGIC
        } else {
            INDEX_MAGIC_WITH_BASES
        });
        out.extend_from_slice(&(self.packs.len() as u32).to_le_bytes());
        for (pack, entries) in &self.packs {
            out.extend_from_slice(&pack.0);
            out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for e in entries {
                e.encode_into(&mut out);
            }
        }
        if !self.bases.is_empty() {
            out.extend_from_slice(&(self.bases.len() as u32).to_le_bytes());
            for (id, base) in &self.bases {
                out.extend_from_slice(&id.0);
                out.extend_from_slice(&base.0);
            }
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<IndexFile, FormatError> {
        let with_bases = match b.get(..8) {
            Some(m) if b.len() >= 12 && m == INDEX_MAGIC => false,
            Some(m) if b.len() >= 12 && m == INDEX_MAGIC_WITH_BASES => true,
            _ => return Err(FormatError::BadMagic("index file")),
        };
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
        let mut bases = Vec::new();
        if with_bases {
            let n = u32::from_le_bytes(take(4)?.try_into().unwrap()) as usize;
            // Writers use SKINDEX1 for a file without patches: one
            // encoding per file, so a file's id names one content.
            if n == 0 {
                return Err(FormatError::Invalid(
                    "SKINDEX2 index file without bases".into(),
                ));
            }
            let raw = take(
                n.checked_mul(64)
                    .ok_or(FormatError::Truncated("index file"))?,
            )?;
            bases = raw
                .chunks_exact(64)
                .map(|p| {
                    (
                        Id::from_slice(&p[..32]).unwrap(),
                        Id::from_slice(&p[32..]).unwrap(),
                    )
                })
                .collect();
        }
        if pos != b.len() {
            return Err(FormatError::Invalid("index file has trailing bytes".into()));
        }
        let file = IndexFile { packs, bases };
        file.check_bases()?;
        Ok(file)
    }

    /// Every patch blob has exactly one base, every base entry names a
    /// patch blob of this file, and no blob is its own base.
    fn check_bases(&self) -> Result<(), FormatError> {
        let patches: std::collections::HashSet<Id> = self
            .packs
            .iter()
            .flat_map(|(_, es)| es.iter())
            .filter(|e| e.codec == Codec::Patch)
            .map(|e| e.id)
            .collect();
        let mut named = std::collections::HashSet::new();
        for (id, base) in &self.bases {
            if !patches.contains(id) || id == base || !named.insert(*id) {
                return Err(FormatError::Invalid(format!(
                    "index file names a base for {}, which is not one of its patch blobs",
                    id.short()
                )));
            }
        }
        if named.len() != patches.len() {
            return Err(FormatError::Invalid(
                "index file lists a patch blob without its base".into(),
            ));
        }
        Ok(())
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
    /// The base of each patch blob (few: only rewritten page groups).
    bases: IdMap<Id>,
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
        for (id, base) in &file.bases {
            self.add_base(*id, *base);
        }
    }

    /// Records that patch blob `id` decodes over `base`.
    pub fn add_base(&mut self, id: Id, base: Id) {
        Arc::make_mut(&mut self.0).bases.entry(id).or_insert(base);
    }

    /// The base of patch blob `id`.
    /// (None when the copy this index reads is stored whole).
    pub fn base_of(&self, id: &Id) -> Option<Id> {
        let patch = self.get(id)?.codec == Codec::Patch;
        patch.then(|| self.0.bases.get(id).copied()).flatten()
    }

    /// `id` and, if it is a patch blob, its base: the blobs a reader needs
    /// to decode it.
    pub fn with_base(&self, id: &Id) -> impl Iterator<Item = Id> {
        std::iter::once(*id).chain(self.base_of(id))
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
        let mut bases: Vec<(Id, Id)> = self
            .0
            .bases
            .keys()
            .filter_map(|id| Some((*id, self.base_of(id)?)))
            .collect();
        bases.sort();
        IndexFile { packs, bases }
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
            bases: vec![],
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

    fn patch(data: &[u8], offset: u64) -> BlobEntry {
        BlobEntry {
            codec: Codec::Patch,
            ..entry(data, offset)
        }
    }

    #[test]
    fn bases_round_trip_and_only_patches_read_as_having_one() {
        let (a, b) = (Id::of(b"a"), Id::of(b"b"));
        let f = IndexFile {
            packs: vec![(Id::of(b"p1"), vec![entry(b"a", 8), patch(b"b", 9)])],
            bases: vec![(b, a)],
        };
        let bytes = f.encode();
        assert_eq!(&bytes[..8], INDEX_MAGIC_WITH_BASES);
        assert_eq!(IndexFile::decode(&bytes).unwrap(), f);
        let mut idx = RepoIndex::new();
        idx.merge(&f);
        assert_eq!((idx.base_of(&b), idx.base_of(&a)), (Some(a), None));
        assert_eq!(idx.with_base(&b).collect::<Vec<_>>(), vec![b, a]);
        assert_eq!(idx.to_file(), f);
        // A copy stored whole listed first wins: it needs no base.
        let mut whole_first = RepoIndex::new();
        whole_first.add_pack(Id::of(b"p0"), &[entry(b"b", 8)]);
        whole_first.merge(&f);
        assert_eq!(whole_first.base_of(&b), None);
        assert!(whole_first.to_file().bases.is_empty());
        // Without patches the file is byte for byte what it was before.
        let plain = IndexFile {
            packs: vec![(Id::of(b"p1"), vec![entry(b"a", 8)])],
            bases: vec![],
        };
        assert_eq!(&plain.encode()[..8], INDEX_MAGIC);
    }

    #[test]
    fn bases_that_do_not_match_the_patches_are_refused() {
        let (a, b) = (Id::of(b"a"), Id::of(b"b"));
        let pack = (Id::of(b"p1"), vec![entry(b"a", 8), patch(b"b", 9)]);
        for bases in [
            vec![],               // a patch without its base
            vec![(b, a), (a, b)], // a base named for a blob stored whole
            vec![(b, b)],         // a patch over itself
            vec![(b, a), (b, a)], // two bases for one patch
        ] {
            let with = |bases: Vec<(Id, Id)>| {
                let mut bytes = IndexFile {
                    packs: vec![pack.clone()],
                    bases,
                }
                .encode();
                bytes[..8].copy_from_slice(INDEX_MAGIC_WITH_BASES);
                bytes
            };
            let mut bytes = with(bases.clone());
            if bases.is_empty() {
                bytes.extend_from_slice(&0u32.to_le_bytes());
            }
            assert!(IndexFile::decode(&bytes).is_err(), "{bases:?}");
        }
        // Found by the fuzzer: SKINDEX2 with no bases would re-encode as
        // SKINDEX1, so it is refused.
        let mut empty = INDEX_MAGIC_WITH_BASES.to_vec();
        empty.extend_from_slice(&[0; 8]);
        assert!(IndexFile::decode(&empty).is_err());
        let good = IndexFile {
            packs: vec![pack],
            bases: vec![(b, a)],
        }
        .encode();
        assert!(
            IndexFile::decode(&good[..good.len() - 1]).is_err(),
            "truncated"
        );
    }

    #[test]
    fn truncated_or_padded_index_files_are_rejected() {
        let f = IndexFile {
            packs: vec![(Id::of(b"p"), vec![entry(b"a", 8)])],
            bases: vec![],
        };
        let bytes = f.encode();
        assert!(IndexFile::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(IndexFile::decode(&padded).is_err());
        assert!(IndexFile::decode(b"nonsense").is_err());
    }
}
