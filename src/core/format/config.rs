//! The repository `config` object, written once at `repo init`.

use serde::{Deserialize, Serialize};

use crate::core::chunker::ChunkerParams;
use crate::core::chunking::pages::DEFAULT_GROUP_BYTES;
use crate::core::chunking::rules::{ChunkingRule, ChunkingRules};
use crate::core::chunking::{Chunking, Cutting};
use crate::core::error::FormatError;
use crate::core::format::codec::Compression;

pub const FORMAT_VERSION: u32 = 1;
pub const DEFAULT_PACK_SIZE: u64 = 8 * 1024 * 1024;
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
pub const MIN_PACK_SIZE: u64 = 4 * 1024;
pub const MAX_PACK_SIZE: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    pub version: u32,
    /// Random id chosen at init; tells repositories apart.
    pub id: String,
    pub chunker: ChunkerParams,
    pub compression: Compression,
    pub compression_level: i32,
    /// Target size of packs; a pack is closed once it reaches this size.
    pub pack_size: u64,
    pub created_in_millis: i64,
    /// How files are cut (`repo init --chunking`); absent in repositories
    /// made before the modes, which cut every file with FastCDC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunking: Option<Chunking>,
    /// Bytes per chunk of a file cut as pages (whole pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_group: Option<u32>,
    /// Modes by path pattern (`repo init --chunking-rule`), tried in order
    /// before `chunking`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunking_rules: Vec<ChunkingRule>,
    /// An encrypted repository's keyed hash for blob ids, sealed here so
    /// that the config's plain part cannot change it unnoticed; absent in
    /// plain repositories and in encrypted ones made before it was
    /// recorded (`hmac-sha256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_ids: Option<String>,
}

/// The page-group sizes a config may name.
pub const PAGE_GROUP_RANGE: std::ops::RangeInclusive<u32> = 4096..=8 * 1024 * 1024;

impl RepoConfig {
    pub fn new(id: String, created_in_millis: i64) -> RepoConfig {
        RepoConfig {
            version: FORMAT_VERSION,
            id,
            chunker: ChunkerParams::default(),
            compression: Compression::Zstd,
            compression_level: DEFAULT_ZSTD_LEVEL,
            pack_size: DEFAULT_PACK_SIZE,
            created_in_millis,
            chunking: Some(Chunking::Auto),
            page_group: Some(DEFAULT_GROUP_BYTES),
            chunking_rules: Vec::new(),
            content_ids: None,
        }
    }

    /// How this repository's writers cut files.
    pub fn cutting(&self) -> Cutting {
        Cutting {
            params: self.chunker,
            mode: self.chunking.unwrap_or(Chunking::Cdc),
            page_group: self.page_group.unwrap_or(DEFAULT_GROUP_BYTES),
        }
    }

    /// Whether this repository's writers may cut a file as `recorded`
    /// (how its node says it was cut; `None` is by content).
    /// A file may be cut as the repository's mode or as any rule's.
    pub fn allows_chunking(&self, recorded: Option<Chunking>) -> bool {
        std::iter::once(self.cutting().mode)
            .chain(self.chunking_rules.iter().map(|r| r.chunking))
            .any(|mode| mode.allows(recorded))
    }

    /// The repository's chunking as `repo init` spells it, with its rules.
    pub fn chunking_name(&self) -> String {
        let rules = self
            .chunking_rules
            .iter()
            .map(|r| format!(", {}={}", r.pattern, r.chunking.name()));
        std::iter::once(self.cutting().mode.name())
            .chain(rules)
            .collect()
    }

    /// The compiled chunking rules (`decode` has checked they compile).
    pub fn rules(&self) -> Result<ChunkingRules, FormatError> {
        ChunkingRules::new(&self.chunking_rules).map_err(|e| FormatError::Invalid(e.to_string()))
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("configs always serialize")
    }

    /// A format v1 (plain) config.
    pub fn decode(bytes: &[u8]) -> Result<RepoConfig, FormatError> {
        Self::decode_version(bytes, FORMAT_VERSION)
    }

    /// Whether the repository is encrypted (format v2).
    pub fn is_encrypted(&self) -> bool {
        self.version == crate::core::format::sealed_config::ENCRYPTED_VERSION
    }

    /// A config that must say `version` (2 inside an encrypted
    /// repository's sealed config).
    pub fn decode_version(bytes: &[u8], version: u32) -> Result<RepoConfig, FormatError> {
        let c: RepoConfig =
            serde_json::from_slice(bytes).map_err(|e| FormatError::json("config", e))?;
        if c.version != version {
            return Err(FormatError::Version(c.version));
        }
        c.chunker
            .validate()
            .map_err(|e| FormatError::Invalid(e.to_string()))?;
        if !(MIN_PACK_SIZE..=MAX_PACK_SIZE).contains(&c.pack_size) {
            return Err(FormatError::Invalid(format!(
                "pack_size {} is outside {MIN_PACK_SIZE}..={MAX_PACK_SIZE}",
                c.pack_size
            )));
        }
        if let Some(g) = c.page_group.filter(|g| !PAGE_GROUP_RANGE.contains(g)) {
            return Err(FormatError::Invalid(format!(
                "page_group {g} is outside {}..={}",
                PAGE_GROUP_RANGE.start(),
                PAGE_GROUP_RANGE.end()
            )));
        }
        c.rules()?;
        Ok(c)
    }
}
