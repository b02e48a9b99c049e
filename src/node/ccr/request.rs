//! The bodies of `PUT /<follower>/_ccr/follow` and `resume_follow`:
//! Elasticsearch's members, checked, as the follower's parameters.

use serde_json::{Map, Value};

use crate::core::ccr::auto_follow::{Pattern, LEADER_INDEX};
use crate::core::es::repository_request::parse_byte_size;
use crate::core::es::units::parse_time_value;
use crate::node::ccr::follows::Parameters;
use crate::node::ccr::leader::{DEFAULT_POLL_MS, MAX_POLL_MS};
use crate::node::reply::EsError;

/// The members a follow request may have (Elasticsearch's, and
/// snapkeep's `reuse_existing`); the write-side ones are accepted and
/// have no use here, since a checkpoint is applied whole.
pub const FOLLOW_FIELDS: &[&str] = &[
    "remote_cluster",
    "leader_index",
    "settings",
    "data_stream_name",
    "max_read_request_operation_count",
    "max_outstanding_read_requests",
    "max_read_request_size",
    "max_write_request_operation_count",
    "max_write_request_size",
    "max_outstanding_write_requests",
    "max_write_buffer_count",
    "max_write_buffer_size",
    "max_retry_delay",
    "read_poll_timeout",
    "reuse_existing",
    "max_bytes_per_sec",
];

fn string_field(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, EsError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(EsError::illegal_argument(format!(
            "[{name}] must be a string, not {other}"
        ))),
    }
}

fn time_field(obj: &Map<String, Value>, name: &str, default: i64) -> Result<i64, EsError> {
    match string_field(obj, name)? {
        None => Ok(default),
        Some(v) => parse_time_value(&v).filter(|ms| *ms >= 0).ok_or_else(|| {
            EsError::parse(format!(
                "failed to parse setting [{name}] with value [{v}] as a time value"
            ))
        }),
    }
}

/// A request body as a JSON object of `allowed` members; `request` names
/// it in a refusal as Elasticsearch does.
fn parse_object(
    bytes: &[u8],
    request: &str,
    allowed: &[&str],
) -> Result<Map<String, Value>, EsError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| EsError::from_json_error(&e))?;
    let Value::Object(obj) = value else {
        return Err(EsError::parse(format!(
            "a {request}'s body is a JSON object"
        )));
    };
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(EsError::new(
            400,
            "x_content_parse_exception",
            format!("[{request}] unknown field [{k}]"),
        ));
    }
    Ok(obj)
}

/// The follow parameters of a follow or resume body (defaults for those
/// it leaves out).
fn parse_parameters(obj: &Map<String, Value>) -> Result<Parameters, EsError> {
    let size = string_field(obj, "max_read_request_size")?;
    if let Some(s) = &size {
        parse_byte_size("max_read_request_size", s)?;
    }
    let rate = string_field(obj, "max_bytes_per_sec")?;
    if let Some(r) = &rate {
        parse_byte_size("max_bytes_per_sec", r)?;
    }
    let outstanding = match obj.get("max_outstanding_read_requests") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
            EsError::illegal_argument("[max_outstanding_read_requests] must be a positive number")
        })?),
    };
    let reuse_existing = match obj.get("reuse_existing") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(EsError::illegal_argument(
                "[reuse_existing] must be a boolean",
            ))
        }
    };
    Ok(Parameters {
        read_poll_timeout_ms: time_field(obj, "read_poll_timeout", DEFAULT_POLL_MS)?
            .min(MAX_POLL_MS),
        max_retry_delay_ms: time_field(obj, "max_retry_delay", 500)?,
        max_read_request_size: size,
        max_outstanding_read_requests: outstanding,
        reuse_existing,
        max_bytes_per_sec: rate,
    })
}

/// The follow request's body as parameters, with the leader it names.
pub fn parse_follow(bytes: &[u8]) -> Result<(String, String, Parameters), EsError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(EsError::body_required());
    }
    let obj = parse_object(bytes, "put_follow_request", FOLLOW_FIELDS)?;
    let remote = string_field(&obj, "remote_cluster")?;
    let leader = string_field(&obj, "leader_index")?;
    let (Some(remote), Some(leader)) = (remote, leader) else {
        let mut missing = Vec::new();
        if obj.get("remote_cluster").is_none() {
            missing.push("remote_cluster is missing");
        }
        if obj.get("leader_index").is_none() {
            missing.push("leader_index is missing");
        }
        return Err(EsError::action_request_validation(&missing));
    };
    Ok((remote, leader, parse_parameters(&obj)?))
}

/// The publish request's body: the registered repository to publish into.
pub fn parse_publish(bytes: &[u8]) -> Result<String, EsError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(EsError::body_required());
    }
    let obj = parse_object(bytes, "put_publish_request", &["repository"])?;
    string_field(&obj, "repository")?
        .filter(|r| !r.is_empty())
        .ok_or_else(|| EsError::action_request_validation(&["repository is missing"]))
}

/// A resume body's parameters: `None` without a body (the follower's
/// are kept), else the body's with defaults for the rest, as
/// Elasticsearch's resume sets them.
pub fn parse_resume(bytes: &[u8]) -> Result<Option<Parameters>, EsError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let allowed: Vec<&str> = FOLLOW_FIELDS
        .iter()
        .copied()
        .filter(|f| {
            ![
                "remote_cluster",
                "leader_index",
                "settings",
                "data_stream_name",
            ]
            .contains(f)
        })
        .collect();
    let obj = parse_object(bytes, "resume_follow_request", &allowed)?;
    parse_parameters(&obj).map(Some)
}

/// A forget-follower body: the follower's cluster (its node id) and index.
pub fn parse_forget(bytes: &[u8]) -> Result<(String, String), EsError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(EsError::body_required());
    }
    let allowed = [
        "follower_cluster",
        "follower_index",
        "follower_index_uuid",
        "leader_remote_cluster",
    ];
    let obj = parse_object(bytes, "forget_follower_request", &allowed)?;
    match (
        string_field(&obj, "follower_cluster")?,
        string_field(&obj, "follower_index")?,
    ) {
        (Some(c), Some(i)) => Ok((c, i)),
        _ => Err(EsError::action_request_validation(&[
            "follower_cluster and follower_index are required",
        ])),
    }
}

/// An auto-follow pattern's body: the pattern and the parameters of the
/// follows it starts.
pub fn parse_auto_follow(bytes: &[u8]) -> Result<(Pattern, Parameters), EsError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(EsError::body_required());
    }
    let mut allowed: Vec<&str> = FOLLOW_FIELDS
        .iter()
        .copied()
        .filter(|f| *f != "leader_index" && *f != "data_stream_name")
        .collect();
    allowed.extend([
        "leader_index_patterns",
        "leader_index_exclusion_patterns",
        "follow_index_pattern",
    ]);
    let obj = parse_object(bytes, "put_auto_follow_pattern_request", &allowed)?;
    let list = |name: &str| -> Result<Vec<String>, EsError> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(s.split(',').map(|p| p.trim().to_string()).collect()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        EsError::illegal_argument(format!("[{name}] must hold strings"))
                    })
                })
                .collect(),
            Some(_) => Err(EsError::illegal_argument(format!(
                "[{name}] must be a list of index patterns"
            ))),
        }
    };
    let Some(remote_cluster) = string_field(&obj, "remote_cluster")? else {
        return Err(EsError::action_request_validation(&[
            "[remote_cluster] is missing",
        ]));
    };
    let pattern = Pattern {
        remote_cluster,
        leader_index_patterns: list("leader_index_patterns")?,
        leader_index_exclusion_patterns: list("leader_index_exclusion_patterns")?,
        follow_index_pattern: string_field(&obj, "follow_index_pattern")?
            .unwrap_or_else(|| LEADER_INDEX.to_string()),
    };
    pattern
        .check()
        .map_err(|e| EsError::action_request_validation(&[e.to_string()]))?;
    Ok((pattern, parse_parameters(&obj)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follow_body_gives_its_leader_and_parameters() {
        let body = br#"{"remote_cluster": "a", "leader_index": "logs", "read_poll_timeout": "2s",
                        "max_retry_delay": "1s", "max_read_request_size": "32mb",
                        "max_outstanding_read_requests": 4, "reuse_existing": true}"#;
        let (remote, leader, p) = parse_follow(body).unwrap();
        assert_eq!((remote.as_str(), leader.as_str()), ("a", "logs"));
        assert_eq!(
            (p.read_poll_timeout_ms, p.max_retry_delay_ms),
            (2_000, 1_000)
        );
        assert_eq!(p.max_read_request_size.as_deref(), Some("32mb"));
        assert_eq!(p.max_outstanding_read_requests, Some(4));
        assert!(p.reuse_existing);
        let (_, _, d) = parse_follow(br#"{"remote_cluster": "a", "leader_index": "l"}"#).unwrap();
        assert_eq!(
            (d.read_poll_timeout_ms, d.reuse_existing),
            (DEFAULT_POLL_MS, false)
        );
    }

    #[test]
    fn bad_follow_bodies_are_refused_with_the_member_named() {
        let cases: [(&[u8], &str); 8] = [
            (b"", "request body is required"),
            (b"[]", "JSON object"),
            (br#"{"remote_cluster": "a", "leader_index": "l", "max_bytes_per_sec": "fast"}"#, "max_bytes_per_sec"),
            (br#"{"remote_cluster": "a", "leader_index": "l", "max_outstanding_read_requests": 0}"#, "[max_outstanding_read_requests]"),
            (br#"{"leader_index": "l"}"#, "remote_cluster is missing"),
            (
                br#"{"remote_cluster": "a", "leader_index": "l", "x": 1}"#,
                "[x]",
            ),
            (
                br#"{"remote_cluster": "a", "leader_index": "l", "read_poll_timeout": "soon"}"#,
                "[read_poll_timeout]",
            ),
            (
                br#"{"remote_cluster": "a", "leader_index": "l", "reuse_existing": "yes"}"#,
                "[reuse_existing]",
            ),
        ];
        for (body, says) in cases {
            let e = parse_follow(body).unwrap_err();
            assert!(
                e.reason.contains(says),
                "{}: {}",
                String::from_utf8_lossy(body),
                e.reason
            );
        }
    }

    #[test]
    fn an_auto_follow_body_gives_its_pattern() {
        let (p, params) = parse_auto_follow(
            br#"{"remote_cluster": "a", "leader_index_patterns": ["logs-*"],
                 "leader_index_exclusion_patterns": "logs-tmp*",
                 "follow_index_pattern": "{{leader_index}}-copy", "read_poll_timeout": "1s"}"#,
        )
        .unwrap();
        assert_eq!(p.follower_name("logs-1"), "logs-1-copy");
        assert_eq!(p.leader_index_exclusion_patterns, ["logs-tmp*"]);
        assert_eq!(params.read_poll_timeout_ms, 1_000);
        let e = parse_auto_follow(br#"{"remote_cluster": "a", "leader_index_patterns": []}"#)
            .unwrap_err();
        assert!(e.reason.contains("leader_index_patterns"), "{}", e.reason);
        let e = parse_auto_follow(br#"{"leader_index_patterns": ["x"]}"#).unwrap_err();
        assert!(e.reason.contains("remote_cluster"), "{}", e.reason);
    }

    #[test]
    fn a_resume_body_replaces_the_parameters_or_keeps_them() {
        assert_eq!(parse_resume(b"").unwrap(), None);
        let p = parse_resume(
            br#"{"read_poll_timeout": "3s", "reuse_existing": true, "max_bytes_per_sec": "2mb"}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!((p.read_poll_timeout_ms, p.reuse_existing), (3_000, true));
        assert_eq!(p.read_limit(), Some(2 << 20));
        let e = parse_resume(br#"{"leader_index": "other"}"#).unwrap_err();
        assert!(e.reason.contains("[leader_index]"), "{}", e.reason);
    }
}
