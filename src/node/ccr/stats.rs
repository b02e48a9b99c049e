//! `_ccr/stats` and `_ccr/info` in Elasticsearch's shapes. A follower
//! index is one shard; Elasticsearch's sequence numbers are checkpoint
//! numbers here (`-1`: none), and snapkeep's own figures (the checkpoints
//! as `lineage:seq`, lag in checkpoints and milliseconds, bytes and files
//! written, the last error) follow Elasticsearch's fields.

use serde_json::{json, Value};

use crate::core::ccr::follower::PauseReason;
use crate::core::es::units::time_value;
use crate::node::ccr::follows::{FollowRecord, Parameters};

fn seq(p: Option<&crate::core::ccr::checkpoint::Point>) -> i64 {
    p.map_or(-1, |p| p.seq as i64)
}

/// One follower index's shard stats at `now_ms`.
pub fn shard(index: &str, rec: &FollowRecord, now_ms: i64) -> Value {
    let t = &rec.tracker;
    let leader = t.leader.as_ref().map(|(p, _)| p);
    let held = t.held.as_ref().map(|(p, _)| p);
    let (lag_checkpoints, lag_millis) = rec.history.as_ref().map_or((0, 0), |h| t.lag(h));
    let read_exceptions = match (&t.last_error, t.consecutive_failures) {
        (Some(e), n) if n > 0 => json!([{
            "from_seq_no": seq(held) + 1,
            "retries": n,
            "exception": {"type": "exception", "reason": e},
        }]),
        _ => json!([]),
    };
    let mut out = json!({
        "remote_cluster": rec.remote_cluster,
        "leader_index": rec.leader_index,
        "follower_index": index,
        "shard_id": 0,
        "leader_global_checkpoint": seq(leader),
        "leader_max_seq_no": seq(leader),
        "follower_global_checkpoint": seq(held),
        "follower_max_seq_no": seq(held),
        "last_requested_seq_no": seq(held),
        "outstanding_read_requests": u64::from(t.paused.is_none()),
        "outstanding_write_requests": 0,
        "write_buffer_operation_count": 0,
        "write_buffer_size_in_bytes": 0,
        "follower_mapping_version": 0,
        "follower_settings_version": 0,
        "follower_aliases_version": 0,
        "successful_read_requests": rec.successful_reads,
        "failed_read_requests": t.failed_reads,
        "operations_read": t.checkpoints_applied,
        "bytes_read": t.bytes_read,
        "successful_write_requests": t.checkpoints_applied,
        "failed_write_requests": 0,
        "operations_written": t.files_written,
        "read_exceptions": read_exceptions,
        "time_since_last_read_millis": t.last_read_ms.map_or(-1, |at| (now_ms - at).max(0)),
        "leader_checkpoint": leader.map(ToString::to_string),
        "follower_checkpoint": held.map(ToString::to_string),
        "lag_checkpoints": lag_checkpoints,
        "lag_millis": lag_millis,
        "checkpoints_applied": t.checkpoints_applied,
        "bytes_written": t.bytes_written,
        "files_written": t.files_written,
        "last_error": t.last_error,
    });
    if let Some(note) = &rec.resynced {
        out["split_brain_resync"] = json!(note);
    }
    if let Some(reason) = t.paused.as_ref().filter(|r| **r != PauseReason::Requested) {
        out["fatal_exception"] = json!({
            "type": "illegal_state_exception",
            "reason": reason.describe(),
            "cause": reason,
        });
    }
    out
}

/// One index of `_ccr/stats`'s `indices`.
pub fn index(index: &str, rec: &FollowRecord, now_ms: i64) -> Value {
    let shard = shard(index, rec, now_ms);
    json!({
        "index": index,
        "total_global_checkpoint_lag": shard["lag_checkpoints"],
        "shards": [shard],
    })
}

/// `GET /_ccr/stats`.
pub fn all(auto_follow_stats: Value, indices: Vec<Value>) -> Value {
    json!({
        "auto_follow_stats": auto_follow_stats,
        "follow_stats": {"indices": indices},
    })
}

/// One entry of `_ccr/info`'s `follower_indices`.
pub fn info(index: &str, rec: &FollowRecord) -> Value {
    json!({
        "follower_index": index,
        "remote_cluster": rec.remote_cluster,
        "leader_index": rec.leader_index,
        "status": if rec.tracker.paused.is_some() { "paused" } else { "active" },
        "parameters": parameters(&rec.parameters),
    })
}

/// Follow parameters as `_ccr/info` and auto-follow patterns show them.
pub fn parameters(p: &Parameters) -> Value {
    let mut parameters = json!({
        "read_poll_timeout": time_value(p.read_poll_timeout_ms),
        "max_retry_delay": time_value(p.max_retry_delay_ms),
        "reuse_existing": p.reuse_existing,
    });
    if let Some(size) = &p.max_read_request_size {
        parameters["max_read_request_size"] = json!(size);
    }
    if let Some(rate) = &p.max_bytes_per_sec {
        parameters["max_bytes_per_sec"] = json!(rate);
    }
    if let Some(n) = p.max_outstanding_read_requests {
        parameters["max_outstanding_read_requests"] = json!(n);
    }
    parameters
}
