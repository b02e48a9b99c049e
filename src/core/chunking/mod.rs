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
//! ```

pub mod detect;
pub mod pages;

use serde::{Deserialize, Serialize};

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

    /// The mode as `--chunking` spells it.
    pub fn name(self) -> String {
        match self {
            Chunking::Cdc => "cdc".into(),
            Chunking::Auto => "auto".into(),
            Chunking::Pages { page_size } => format!("pages:{}KiB", page_size / 1024),
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
}
