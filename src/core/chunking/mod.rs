//! How a file is cut into chunks (issue #21): content-defined (FastCDC,
//! `core::chunker`) for files of any shape, or at page boundaries for files
//! made of fixed-size pages that change by being rewritten in place
//! (database files). `auto` looks at a file's size and first page and
//! picks one per file (`detect`).
//!
//! ```text
//!  mod.rs     Chunking, the mode a repository or file is chunked with
//!  pages.rs   PageGroups: cuts at fixed multiples of a page group
//!  detect.rs  which engine's pages a file holds, from its first bytes
//!  rules.rs   ChunkingRules: a mode per path pattern (`--chunking-rule`)
//! ```

pub mod detect;
pub mod pages;
pub mod rules;

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::core::chunker::ChunkerParams;
use detect::detect;
use pages::PageGroups;

/// The page sizes `pages:` accepts.
pub const PAGE_SIZES: [u32; 4] = [4096, 8192, 16384, 32768];

/// The chunking mode chosen for a repository (`--chunking`), or recorded
/// for one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Chunking {
    /// FastCDC with the repository's limits, for every file.
    Cdc,
    /// Cut only at page boundaries, in groups of pages (`pages.rs`).
    Pages { page_size: u32 },
    /// Pages for files `detect` recognises, FastCDC for the rest.
    Auto,
}

/// A `--chunking` value that is not one of the modes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkingError {
    #[error(
        "unknown chunking mode [{0}]: use cdc, auto or pages:SIZE (4KiB, 8KiB, 16KiB or 32KiB)"
    )]
    Unknown(String),
    #[error("page size [{0}] is not one of 4KiB, 8KiB, 16KiB, 32KiB")]
    PageSize(String),
}

impl Chunking {
    /// Parses `cdc`, `auto` or `pages:8KiB` (also `pages:8192`).
    pub fn parse(s: &str) -> Result<Chunking, ChunkingError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cdc" => Ok(Chunking::Cdc),
            "auto" => Ok(Chunking::Auto),
            other => {
                let size = other
                    .strip_prefix("pages:")
                    .ok_or_else(|| ChunkingError::Unknown(s.to_string()))?;
                let bytes = match size.strip_suffix("kib").or_else(|| size.strip_suffix("k")) {
                    Some(k) => k.parse::<u32>().ok().and_then(|k| k.checked_mul(1024)),
                    None => size.parse::<u32>().ok(),
                };
                match bytes {
                    Some(b) if PAGE_SIZES.contains(&b) => Ok(Chunking::Pages { page_size: b }),
                    _ => Err(ChunkingError::PageSize(size.to_string())),
                }
            }
        }
    }

    /// The mode as `--chunking` spells it (a page size under 1 KiB, which
    /// only `auto` finds in SQLite files, in bytes: `pages:512`).
    pub fn name(self) -> String {
        match self {
            Chunking::Cdc => "cdc".into(),
            Chunking::Auto => "auto".into(),
            Chunking::Pages { page_size } if page_size % 1024 == 0 => {
                format!("pages:{}KiB", page_size / 1024)
            }
            Chunking::Pages { page_size } => format!("pages:{page_size}"),
        }
    }

    /// Parses how one file was cut, as its tree node records it: `cdc`, or
    /// `pages:` with any page size `auto` can find (a power of two from
    /// 512 bytes to 64 KiB). `auto` is a choice, not a way a file was cut.
    pub fn parse_recorded(s: &str) -> Option<Chunking> {
        if s == "cdc" {
            return Some(Chunking::Cdc);
        }
        let size = s.strip_prefix("pages:")?;
        let bytes = match size.strip_suffix("KiB") {
            Some(k) => k.parse::<u32>().ok()?.checked_mul(1024)?,
            None => size.parse::<u32>().ok()?,
        };
        let valid = bytes.is_power_of_two() && (512..=65536).contains(&bytes);
        let page = Chunking::Pages { page_size: bytes };
        // Only the canonical spelling, so a node re-encodes to its bytes.
        (valid && page.name() == s).then_some(page)
    }

    /// Whether a repository whose mode is `self` cuts files as `recorded`
    /// (how a file's node says it was cut; `None` is by content).
    pub fn allows(self, recorded: Option<Chunking>) -> bool {
        match (self, recorded.unwrap_or(Chunking::Cdc)) {
            (_, Chunking::Auto) => false,
            (Chunking::Auto, _) => true,
            (mode, cut) => mode == cut,
        }
    }
}

/// The `chunking` member of a tree node: the recorded mode as its name.
pub mod recorded {
    use super::Chunking;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mode: &Option<Chunking>, s: S) -> Result<S::Ok, S::Error> {
        match mode {
            Some(m) => s.serialize_str(&m.name()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Chunking>, D::Error> {
        let Some(name) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        Chunking::parse_recorded(&name)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown chunking [{name}]")))
    }
}

/// How a writer cuts files: the repository's mode and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutting {
    pub params: ChunkerParams,
    pub mode: Chunking,
    /// Bytes per chunk of a paged file (whole pages).
    pub page_group: u32,
}

/// How one file is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cutter {
    Cdc(ChunkerParams),
    Pages(PageGroups),
}

impl Cutting {
    /// Content-defined chunking of every file (repositories made before
    /// chunking modes).
    pub fn cdc(params: ChunkerParams) -> Cutting {
        Cutting {
            params,
            mode: Chunking::Cdc,
            page_group: pages::DEFAULT_GROUP_BYTES,
        }
    }

    /// How to cut a file of `size` bytes whose first bytes are `head` (at
    /// least [`detect::HEAD_BYTES`] of it, or all of a shorter file).
    pub fn for_file(&self, size: u64, head: &[u8]) -> Cutter {
        let page_size = match self.mode {
            Chunking::Cdc => None,
            Chunking::Pages { page_size } => Some(page_size),
            Chunking::Auto => detect(size, head).map(|p| p.page_size),
        };
        match page_size {
            Some(p) => Cutter::Pages(PageGroups::new(p, self.page_group)),
            None => Cutter::Cdc(self.params),
        }
    }
}

impl Cutter {
    /// How a file cut by this is recorded in its node (`None`: by content).
    pub fn recorded(&self) -> Option<Chunking> {
        match self {
            Cutter::Cdc(_) => None,
            Cutter::Pages(g) => Some(Chunking::Pages {
                page_size: g.page_size,
            }),
        }
    }

    /// Finished chunks at the front of `window`, which starts at byte
    /// `offset` of its file (see `ChunkerParams::split`).
    pub fn split(&self, offset: u64, window: &[u8], eof: bool) -> Vec<Range<usize>> {
        match self {
            Cutter::Cdc(p) => p.split(window, eof),
            Cutter::Pages(g) => g.split(offset, window, eof),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn modes_parse_and_name_themselves() {
        assert_eq!(Chunking::parse("cdc"), Ok(Chunking::Cdc));
        assert_eq!(Chunking::parse("AUTO"), Ok(Chunking::Auto));
        for (text, size) in [
            ("pages:8KiB", 8192),
            ("pages:16k", 16384),
            ("pages:4096", 4096),
        ] {
            let mode = Chunking::parse(text).unwrap();
            assert_eq!(mode, Chunking::Pages { page_size: size });
            assert_eq!(Chunking::parse(&mode.name()), Ok(mode));
        }
        assert!(matches!(
            Chunking::parse("pages:3KiB"),
            Err(ChunkingError::PageSize(_))
        ));
        assert!(matches!(
            Chunking::parse("pages:"),
            Err(ChunkingError::PageSize(_))
        ));
        assert!(matches!(
            Chunking::parse("fixed"),
            Err(ChunkingError::Unknown(_))
        ));
    }

    #[test]
    fn recorded_modes_parse_only_in_their_canonical_spelling() {
        for (text, mode) in [
            ("cdc", Chunking::Cdc),
            ("pages:8KiB", Chunking::Pages { page_size: 8192 }),
            ("pages:512", Chunking::Pages { page_size: 512 }),
            ("pages:64KiB", Chunking::Pages { page_size: 65536 }),
        ] {
            assert_eq!(Chunking::parse_recorded(text), Some(mode), "{text}");
            assert_eq!(mode.name(), text);
        }
        for bad in [
            "auto",
            "pages:8192",
            "pages:8kib",
            "pages:3KiB",
            "pages:128KiB",
            "x",
        ] {
            assert_eq!(Chunking::parse_recorded(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_mode_allows_what_it_cuts() {
        let pages = |page_size| Some(Chunking::Pages { page_size });
        assert!(Chunking::Cdc.allows(None));
        assert!(!Chunking::Cdc.allows(pages(8192)));
        assert!(Chunking::Auto.allows(None) && Chunking::Auto.allows(pages(512)));
        assert!(Chunking::Pages { page_size: 8192 }.allows(pages(8192)));
        assert!(!Chunking::Pages { page_size: 8192 }.allows(pages(4096)));
        assert!(!Chunking::Pages { page_size: 8192 }.allows(None));
        assert!(!Chunking::Auto.allows(Some(Chunking::Auto)));
    }

    #[test]
    fn auto_cuts_recognised_page_files_as_pages_and_the_rest_by_content() {
        let auto = Cutting {
            mode: Chunking::Auto,
            ..Cutting::cdc(ChunkerParams::default())
        };
        let plain = crate::core::seeded::noise(4 * 8192, 1);
        assert_eq!(auto.for_file(4 * 8192, &plain), Cutter::Cdc(auto.params));
        let mut page = plain[..8192].to_vec();
        // pd_lower 40, pd_upper 7936, pd_special 8192, 8 KiB layout 4.
        page[12..20].copy_from_slice(&[40, 0, 0, 31, 0, 32, 4, 32]);
        let paged = [page.clone(), page].concat();
        assert_eq!(
            auto.for_file(2 * 8192, &paged),
            Cutter::Pages(PageGroups::new(8192, pages::DEFAULT_GROUP_BYTES))
        );
        let forced = Cutting {
            mode: Chunking::Pages { page_size: 4096 },
            ..auto
        };
        assert_eq!(
            forced.for_file(4 * 8192, &plain),
            Cutter::Pages(PageGroups::new(4096, pages::DEFAULT_GROUP_BYTES))
        );
    }
}
