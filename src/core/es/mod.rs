//! Elasticsearch's snapshot REST API semantics, transport-neutral: error
//! objects, name rules and date math, the `SnapshotInfo` shape, listing
//! parameters, `_cat` tables, strict request bodies and the snapshot
//! status and recovery answers
//! (docs/ES_API_REFERENCE.md). The node's HTTP shell maps requests onto
//! these functions and their answers onto responses.

pub mod body;
pub mod cat;
pub mod clone_request;
pub mod create_request;
pub mod date_math;
pub mod errors;
pub mod get_snapshots;
pub mod mount_request;
pub mod names;
pub mod params;
pub mod patterns;
pub mod recovery;
pub mod repository_request;
pub mod restore_request;
pub mod running;
pub mod slm_policy;
pub mod snapshot_info;
pub mod status;
pub mod units;
