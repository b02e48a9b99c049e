//! Errors of the pure core. Each variant names what was wrong with a value.

/// A stored object that does not decode as format v1 says it should.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    #[error("{0} is truncated")]
    Truncated(&'static str),
    #[error("{0} has a wrong magic number")]
    BadMagic(&'static str),
    #[error("unknown {what} byte {value}")]
    UnknownByte { what: &'static str, value: u8 },
    #[error("unsupported format version {0} (this snapkeep reads version 1)")]
    Version(u32),
    #[error("tree encoding version {0} is not one this snapkeep reads (1 to 2): upgrade snapkeep to read this snapshot")]
    TreeVersion(u32),
    #[error("malformed JSON in {what}: {detail}")]
    Json { what: &'static str, detail: String },
    #[error("{0}")]
    Invalid(String),
}

impl FormatError {
    pub fn json(what: &'static str, e: serde_json::Error) -> FormatError {
        FormatError::Json {
            what,
            detail: e.to_string(),
        }
    }
}
