//! Page-group chunking: a file of fixed-size pages is cut only at file
//! offsets that are multiples of a group of pages.
//!
//! Database engines change their files by rewriting pages in place and
//! grow them by appending pages. With cuts at fixed offsets an in-place
//! update of one page changes exactly the one chunk that holds it, and
//! appended pages never move an earlier cut; content-defined cuts over
//! such files drift (few cut points in zeroed free space and padded
//! rows, so chunks run towards the maximum and one changed page costs
//! megabytes of new chunk). Content-defined grouping over page hashes was
//! weighed and not taken: it moves a cut whenever the changed page is, or
//! becomes, a cut point, so one update can change two chunks.

use std::ops::Range;

/// Cuts at multiples of `group` bytes (a whole number of pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageGroups {
    pub page_size: u32,
    pub group: u32,
}

/// Pages per chunk by default: 8 pages of 8 KiB make 64 KiB chunks
/// (docs/PERFORMANCE.md, page chunking, for how it was chosen).
pub const DEFAULT_GROUP_BYTES: u32 = 64 * 1024;

impl PageGroups {
    /// Groups of about `group_bytes`, rounded down to whole pages (at
    /// least one page).
    pub fn new(page_size: u32, group_bytes: u32) -> PageGroups {
        let pages = (group_bytes / page_size).max(1);
        PageGroups {
            page_size,
            group: pages * page_size,
        }
    }

    /// Finished chunks at the front of `window`, which starts at byte
    /// `offset` of its file, as ranges into it. As `ChunkerParams::split`:
    /// without `eof`, bytes after the last range wait for more input; a
    /// window of at least `group` bytes yields at least one chunk.
    pub fn split(&self, offset: u64, window: &[u8], eof: bool) -> Vec<Range<usize>> {
        let group = u64::from(self.group);
        let mut out = Vec::new();
        let mut start = 0usize;
        while start < window.len() {
            let at = offset + start as u64;
            let to_cut = (group - at % group) as usize;
            let end = start + to_cut;
            if end > window.len() {
                if eof {
                    out.push(start..window.len());
                }
                break;
            }
            out.push(start..end);
            start = end;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::seeded::noise;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const PAGE: usize = 8192;

    fn chunks(groups: &PageGroups, data: &[u8]) -> Vec<Vec<u8>> {
        groups
            .split(0, data, true)
            .into_iter()
            .map(|r| data[r].to_vec())
            .collect()
    }

    #[test]
    fn groups_are_whole_pages() {
        assert_eq!(PageGroups::new(8192, 65536).group, 65536);
        assert_eq!(PageGroups::new(8192, 70000).group, 65536);
        assert_eq!(PageGroups::new(16384, 4096).group, 16384);
    }

    #[test]
    fn an_in_place_page_update_changes_exactly_one_chunk() {
        let groups = PageGroups::new(PAGE as u32, 65536);
        let before = noise(100 * PAGE + 100, 7);
        let old = chunks(&groups, &before);
        for page in [0, 7, 8, 63, 99] {
            let mut after = before.clone();
            after[page * PAGE + 17] ^= 0xff;
            let new = chunks(&groups, &after);
            assert_eq!(new.len(), old.len());
            let changed = old.iter().zip(&new).filter(|(a, b)| a != b).count();
            assert_eq!(changed, 1, "page {page}");
        }
    }

    #[test]
    fn appended_pages_never_move_earlier_cuts() {
        let groups = PageGroups::new(PAGE as u32, 65536);
        let data = noise(40 * PAGE, 3);
        let short = chunks(&groups, &data[..21 * PAGE]);
        let long = chunks(&groups, &data);
        // Every chunk of the shorter file but its last (partial) one is a
        // chunk of the longer.
        assert_eq!(short[..short.len() - 1], long[..short.len() - 1]);
    }

    #[test]
    fn cuts_do_not_depend_on_how_the_input_is_windowed() {
        let groups = PageGroups::new(PAGE as u32, 65536);
        let data = noise(30 * PAGE + 5, 11);
        let whole: Vec<Range<usize>> = groups.split(0, &data, true);
        // Feed in odd-sized windows, carrying the unfinished tail over.
        let mut cuts = Vec::new();
        let (mut consumed, mut fed) = (0usize, 0usize);
        while consumed < data.len() {
            fed = (fed + 50_001).min(data.len());
            let eof = fed == data.len();
            for r in groups.split(consumed as u64, &data[consumed..fed], eof) {
                cuts.push(consumed + r.start..consumed + r.end);
            }
            consumed = cuts.last().map_or(0, |r| r.end);
        }
        assert_eq!(cuts, whole);
        assert!(whole[..whole.len() - 1].iter().all(|r| r.len() == 65536));
        assert_eq!(whole.last().unwrap().len(), (30 * PAGE + 5) % 65536);
    }

    #[test]
    fn a_window_of_a_group_yields_a_chunk_and_a_short_one_waits() {
        let groups = PageGroups::new(PAGE as u32, 65536);
        let data = vec![0u8; 65536 + 10];
        assert_eq!(groups.split(0, &data, false), vec![0..65536]);
        assert!(groups.split(0, &data[..65535], false).is_empty());
        // Mid-file windows cut at the file's group boundaries.
        assert_eq!(groups.split(65536 - 100, &data[..200], false), vec![0..100]);
    }
}
