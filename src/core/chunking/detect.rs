//! Which database engine's pages a file holds, from its size and its first
//! bytes, so `auto` chunks it at page boundaries. Being wrong one way costs
//! a little storage (a page file chunked by content), the other way a
//! little more (a plain file cut at fixed offsets, where an insertion
//! shifts every later chunk), never data: so a file counts as paged only
//! when its head checks out as a page of a known engine, not merely when
//! its size is a multiple of a page size (many files are).

/// The bytes of a file's head that [`detect`] looks at.
pub const HEAD_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// PostgreSQL heap and index relation files (`base/`, `global/`).
    Postgres,
    /// PostgreSQL write-ahead log segments (`pg_wal/`).
    PostgresWal,
    /// MySQL/MariaDB InnoDB tablespaces (`.ibd`, `ibdata*`).
    InnoDb,
    /// SQLite database files.
    Sqlite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paged {
    pub engine: Engine,
    pub page_size: u32,
}

/// The engine and page size of a file of `size` bytes whose first bytes
/// are `head` (up to [`HEAD_BYTES`]), if it is made of one engine's pages.
pub fn detect(size: u64, head: &[u8]) -> Option<Paged> {
    sqlite(size, head)
        .or_else(|| postgres(size, head))
        .or_else(|| postgres_wal(size, head))
        .or_else(|| innodb(size, head))
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("eight bytes"))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// "SQLite format 3\0", then the page size (big-endian; 1 means 64 KiB).
fn sqlite(size: u64, head: &[u8]) -> Option<Paged> {
    if head.len() < 100 || !head.starts_with(b"SQLite format 3\0") {
        return None;
    }
    let page_size = match be16(head, 16) {
        1 => 65536,
        n => u32::from(n),
    };
    let valid = page_size.is_power_of_two() && (512..=65536).contains(&page_size);
    (valid && size % u64::from(page_size) == 0).then_some(Paged {
        engine: Engine::Sqlite,
        page_size,
    })
}

/// PostgreSQL's page header (`PageHeaderData`, little-endian on the
/// platforms it runs on): `pd_lower` at 12, `pd_upper` at 14,
/// `pd_special` at 16, `pd_pagesize_version` at 18 (the page size ORed
/// with layout version 4). New pages are all zeros and say nothing; at
/// least one page of the head must check out, and none may fail.
fn postgres(size: u64, head: &[u8]) -> Option<Paged> {
    const HEADER: u16 = 24;
    const LAYOUT_VERSION: u16 = 4;
    if head.len() < 24 {
        return None;
    }
    let page_size = u32::from(le16(head, 18) & 0xff00);
    if ![4096, 8192, 16384, 32768].contains(&page_size) || size % u64::from(page_size) != 0 {
        return None;
    }
    let mut seen = false;
    for page in head.chunks_exact(page_size as usize) {
        if page.iter().all(|&b| b == 0) {
            continue;
        }
        let (lower, upper, special) = (le16(page, 12), le16(page, 14), le16(page, 16));
        let ok = le16(page, 18) == page_size as u16 | LAYOUT_VERSION
            && HEADER <= lower
            && lower <= upper
            && upper <= special
            && u32::from(special) <= page_size;
        if !ok {
            return None;
        }
        seen = true;
    }
    // A head shorter than one page (a one-page file read whole is not).
    let first_only = head.len() < page_size as usize;
    (seen && !first_only).then_some(Paged {
        engine: Engine::Postgres,
        page_size,
    })
}

/// A PostgreSQL WAL segment: its first page has the long header
/// (`XLogLongPageHeaderData`, little-endian): `xlp_magic` (0xDxxx, one per
/// major version) at 0, `xlp_info` with `XLP_LONG_HEADER` at 2,
/// `xlp_pageaddr` at 8 (a multiple of the segment size), `xlp_seg_size` at
/// 32 (the file's size) and `xlp_xlog_blcksz` at 36 (its page size). The
/// next page, when the head holds it, has the same magic and the next
/// address.
fn postgres_wal(size: u64, head: &[u8]) -> Option<Paged> {
    const LONG_HEADER: u16 = 0x0002;
    if head.len() < 40 || le16(head, 0) & 0xf000 != 0xd000 || le16(head, 2) & LONG_HEADER == 0 {
        return None;
    }
    let (addr, seg, page) = (le64(head, 8), le32(head, 32), le32(head, 36));
    let sizes_ok = seg.is_power_of_two()
        && (1 << 20..=1 << 30).contains(&seg)
        && u64::from(seg) == size
        && page.is_power_of_two()
        && (1024..=65536).contains(&page)
        && addr % u64::from(seg) == 0;
    if !sizes_ok {
        return None;
    }
    if let Some(next) = head.get(page as usize..page as usize + 16) {
        // The same magic (a recycled segment's later pages still hold the
        // old segment's addresses), or zeros (a fresh segment).
        let same_magic = le16(next, 0) == le16(head, 0);
        if !same_magic && next.iter().any(|&b| b != 0) {
            return None;
        }
    }
    Some(Paged {
        engine: Engine::PostgresWal,
        page_size: page,
    })
}

/// InnoDB's FIL header and trailer (big-endian): the page number at 4
/// equals the page's index, and the trailer's last four bytes repeat the
/// low half of the page LSN at 16. Page 0 (the tablespace header) is never
/// zeros.
fn innodb(size: u64, head: &[u8]) -> Option<Paged> {
    [16384u32, 8192, 4096, 32768, 65536]
        .into_iter()
        .find(|&p| {
            let p_len = p as usize;
            size % u64::from(p) == 0
                && head.len() >= p_len
                && head
                    .chunks_exact(p_len)
                    .enumerate()
                    .all(|(i, page)| innodb_page_ok(page, i as u32))
        })
        .map(|page_size| Paged {
            engine: Engine::InnoDb,
            page_size,
        })
}

fn innodb_page_ok(page: &[u8], index: u32) -> bool {
    let n = page.len();
    if index > 0 && page.iter().all(|&b| b == 0) {
        return true;
    }
    let lsn_low = be32(page, 20);
    be32(page, 4) == index && lsn_low != 0 && be32(page, n - 4) == lsn_low
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::seeded::noise;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn pg_page(size: usize, lower: u16, upper: u16) -> Vec<u8> {
        let mut p = noise(size, u64::from(lower));
        p[12..14].copy_from_slice(&lower.to_le_bytes());
        p[14..16].copy_from_slice(&upper.to_le_bytes());
        p[16..18].copy_from_slice(&(size as u16).to_le_bytes());
        p[18..20].copy_from_slice(&(size as u16 | 4).to_le_bytes());
        p
    }

    fn innodb_page(size: usize, index: u32) -> Vec<u8> {
        // Pages are written at different times: each has its own LSN.
        let lsn = 0xdead_0000u32 + index;
        let mut p = noise(size, u64::from(index) + 99);
        p[4..8].copy_from_slice(&index.to_be_bytes());
        p[20..24].copy_from_slice(&lsn.to_be_bytes());
        p[size - 4..].copy_from_slice(&lsn.to_be_bytes());
        p
    }

    #[test]
    fn postgres_relations_are_recognised_by_their_page_headers() {
        let mut file = pg_page(8192, 40, 8000);
        file.extend(vec![0u8; 8192]); // a new, zeroed page
        file.extend(pg_page(8192, 200, 300));
        let found = detect(3 * 8192, &file);
        assert_eq!(
            found,
            Some(Paged {
                engine: Engine::Postgres,
                page_size: 8192
            })
        );
        // The size must be whole pages, and every non-zero page must check out.
        assert_eq!(detect(3 * 8192 + 1, &file), None);
        let mut bad = file.clone();
        bad[2 * 8192 + 12..2 * 8192 + 14].copy_from_slice(&9000u16.to_le_bytes());
        assert_eq!(detect(3 * 8192, &bad), None);
        // A file of zeros says nothing.
        assert_eq!(detect(3 * 8192, &vec![0u8; 3 * 8192]), None);
    }

    fn wal_page(magic: u16, info: u16, addr: u64, long: bool) -> Vec<u8> {
        let mut p = noise(8192, addr);
        p[0..2].copy_from_slice(&magic.to_le_bytes());
        p[2..4].copy_from_slice(&info.to_le_bytes());
        p[8..16].copy_from_slice(&addr.to_le_bytes());
        if long {
            p[32..36].copy_from_slice(&(16u32 << 20).to_le_bytes());
            p[36..40].copy_from_slice(&8192u32.to_le_bytes());
        }
        p
    }

    #[test]
    fn postgres_wal_segments_are_recognised_by_their_long_header() {
        let seg = 16u64 << 20;
        let first = 3 * seg;
        let mut head = wal_page(0xd110, 0x0002, first, true);
        head.extend(wal_page(0xd110, 0, first + 8192, false));
        let found = detect(seg, &head).unwrap();
        assert_eq!((found.engine, found.page_size), (Engine::PostgresWal, 8192));
        // The file must be one whole segment, at a segment's address.
        assert_eq!(detect(seg - 8192, &head), None);
        let mut shifted = head.clone();
        shifted[8..16].copy_from_slice(&(first + 8192).to_le_bytes());
        assert_eq!(detect(seg, &shifted), None);
        // No long header, or another magic on the next page: not WAL.
        let mut short = head.clone();
        short[2] = 0;
        assert_eq!(detect(seg, &short), None);
        let mut other = head.clone();
        other[8192..8194].copy_from_slice(&0x1234u16.to_le_bytes());
        assert_eq!(detect(seg, &other), None);
    }

    #[test]
    fn innodb_tablespaces_are_recognised_by_page_numbers_and_trailers() {
        let file: Vec<u8> = (0..4).flat_map(|i| innodb_page(16384, i)).collect();
        let found = detect(4 * 16384, &file).unwrap();
        assert_eq!((found.engine, found.page_size), (Engine::InnoDb, 16384));
        let mut swapped = file.clone();
        swapped[16384 + 7] = 9; // page 1 claims another number
        assert_eq!(detect(4 * 16384, &swapped), None);
    }

    #[test]
    fn sqlite_files_name_their_page_size() {
        let mut head = b"SQLite format 3\0".to_vec();
        head.extend([0x10, 0x00]);
        head.resize(4096, 0);
        let found = detect(10 * 4096, &head).unwrap();
        assert_eq!((found.engine, found.page_size), (Engine::Sqlite, 4096));
        head[16..18].copy_from_slice(&[0, 1]);
        assert_eq!(detect(65536, &head).unwrap().page_size, 65536);
        assert_eq!(detect(4096 * 3, &head), None);
    }

    #[test]
    fn other_files_are_left_to_content_defined_chunking() {
        for seed in 0..20 {
            let data = noise(65536, seed);
            assert_eq!(detect(8 * 65536, &data), None, "seed {seed}");
        }
        assert_eq!(detect(0, &[]), None);
        assert_eq!(detect(10, b"short file"), None);
    }
}
