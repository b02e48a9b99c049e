//! `IndexFile::decode`: no panic; round trip; the merged in-memory index
//! gives back one location per blob.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapkeep::core::format::index::{IndexFile, RepoIndex};

fuzz_target!(|data: &[u8]| {
    let Ok(f) = IndexFile::decode(data) else {
        return;
    };
    let bytes = f.encode();
    assert_eq!(bytes.len(), data.len());
    assert_eq!(IndexFile::decode(&bytes).as_ref(), Ok(&f));
    let mut idx = RepoIndex::new();
    idx.merge(&f);
    let total: usize = f.packs.iter().map(|(_, e)| e.len()).sum();
    assert!(idx.blob_count() <= total);
    let again = idx.to_file();
    assert_eq!(
        again.packs.iter().map(|(_, e)| e.len()).sum::<usize>(),
        idx.blob_count()
    );
    for (id, l) in idx.iter() {
        let (pack, e) = idx.resolve(id, l);
        assert_eq!(e.id, *id);
        assert!(f.packs.iter().any(|(p, _)| *p == pack));
    }
});
