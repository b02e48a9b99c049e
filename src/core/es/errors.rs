//! Elasticsearch's error object, as the REST layer answers it:
//! `{"error":{"root_cause":[..],"type":..,"reason":..},"status":N}`
//! (`ElasticsearchException.generateFailureXContent`; reference 1.5-1.7).
//!
//! `type` is what clients see first (elasticsearch-py raises with it), so
//! each constructor pins the type, the HTTP status and the reason format
//! Elasticsearch uses for that failure. The HTTP layer's own errors carry a
//! plain string instead (see [`PlainError`]).

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

/// One Elasticsearch exception: its snake_case `type`, `reason`, HTTP
/// status, metadata members (`index`, `resource.id`, `header`, ...) and the
/// exception that caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct EsError {
    pub status: u16,
    pub kind: &'static str,
    pub reason: String,
    /// Extra members emitted after `reason`, in this order.
    pub fields: Vec<(String, Value)>,
    pub caused_by: Option<Box<EsError>>,
}

/// `WWW-Authenticate` challenges ES 8 sends with a 401, one per scheme.
pub const WWW_AUTHENTICATE: [&str; 3] = [
    "Basic realm=\"security\", charset=\"UTF-8\"",
    "Bearer realm=\"security\"",
    "ApiKey",
];

impl EsError {
    pub fn new(status: u16, kind: &'static str, reason: impl Into<String>) -> EsError {
        EsError {
            status,
            kind,
            reason: reason.into(),
            fields: Vec::new(),
            caused_by: None,
        }
    }

    /// Adds a metadata member (emitted after `reason`).
    pub fn with_field(mut self, name: &str, value: Value) -> EsError {
        self.fields.push((name.to_string(), value));
        self
    }

    pub fn with_cause(mut self, cause: EsError) -> EsError {
        self.caused_by = Some(Box::new(cause));
        self
    }

    /// The innermost cause: what ES reports as `root_cause`.
    pub fn root_cause(&self) -> &EsError {
        let mut e = self;
        while let Some(c) = &e.caused_by {
            e = c;
        }
        e
    }

    /// The whole response body as a JSON value.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("an error object always serializes")
    }

    /// 404: `[repo:snap] is missing`.
    pub fn snapshot_missing(repo: &str, snap: &str) -> EsError {
        EsError::new(
            404,
            "snapshot_missing_exception",
            format!("[{repo}:{snap}] is missing"),
        )
    }

    /// 404: `[repo] missing`.
    pub fn repository_missing(repo: &str) -> EsError {
        EsError::new(
            404,
            "repository_missing_exception",
            format!("[{repo}] missing"),
        )
    }

    /// 400: `[repo:snap] Invalid snapshot name [snap], <desc>`.
    pub fn invalid_snapshot_name(repo: &str, snap: &str, desc: &str) -> EsError {
        EsError::new(
            400,
            "invalid_snapshot_name_exception",
            format!("[{repo}:{snap}] Invalid snapshot name [{snap}], {desc}"),
        )
    }

    /// 400: the name is taken by a finished snapshot, or by a running one
    /// when `in_progress`.
    pub fn snapshot_name_already_in_use(repo: &str, snap: &str, in_progress: bool) -> EsError {
        let desc = if in_progress {
            "snapshot with the same name is already in-progress"
        } else {
            "snapshot with the same name already exists"
        };
        EsError::new(
            400,
            "snapshot_name_already_in_use_exception",
            format!("[{repo}:{snap}] Invalid snapshot name [{snap}], {desc}"),
        )
    }

    /// 503: `[repo:snap] <msg>`, e.g. `cannot snapshot while a repository
    /// cleanup is in-progress in [..]`.
    pub fn concurrent_snapshot_execution(repo: &str, snap: &str, msg: &str) -> EsError {
        EsError::new(
            503,
            "concurrent_snapshot_execution_exception",
            format!("[{repo}:{snap}] {msg}"),
        )
    }

    /// 400: an operation a running snapshot forbids (e.g. deleting its index).
    pub fn snapshot_in_progress(reason: impl Into<String>) -> EsError {
        EsError::new(400, "snapshot_in_progress_exception", reason)
    }

    /// 500: `[repo:snap/uuid] <msg>`.
    pub fn snapshot_restore(repo: &str, snap: &str, uuid: &str, msg: &str) -> EsError {
        EsError::new(
            500,
            "snapshot_restore_exception",
            format!("[{repo}:{snap}/{uuid}] {msg}"),
        )
    }

    /// 500: restoring over an open index of the same name.
    pub fn restore_over_open_index(repo: &str, snap: &str, uuid: &str, index: &str) -> EsError {
        let msg = format!(
            "cannot restore index [{index}] because an open index with same name already \
             exists in the cluster. Either close or delete the existing index or restore the \
             index under a different name by providing a rename pattern and replacement name"
        );
        EsError::snapshot_restore(repo, snap, uuid, &msg)
    }

    /// 500: `[repo] <msg>`; also what an invalid repository name gives.
    pub fn repository(repo: &str, msg: &str) -> EsError {
        EsError::new(500, "repository_exception", format!("[{repo}] {msg}"))
    }

    /// 409: a repository a snapshot or restore is using now cannot be
    /// unregistered or changed (ES's `ensureRepositoryNotInUse`).
    pub fn repository_in_use(repo: &str) -> EsError {
        EsError::new(
            409,
            "repository_conflict_exception",
            format!("[{repo}] trying to modify or unregister repository that is currently used"),
        )
    }

    /// 500: `[repo] repository is readonly`.
    pub fn repository_readonly(repo: &str) -> EsError {
        EsError::repository(repo, "repository is readonly")
    }

    /// 500: a registration that failed: `[repo] failed to create repository`
    /// caused by `cause`.
    pub fn repository_create_failed(repo: &str, cause: EsError) -> EsError {
        EsError::repository(repo, "failed to create repository").with_cause(cause)
    }

    /// 500: `[repo] <msg>`.
    pub fn repository_verification(repo: &str, msg: &str) -> EsError {
        EsError::new(
            500,
            "repository_verification_exception",
            format!("[{repo}] {msg}"),
        )
    }

    /// 400: `Validation Failed: 1: <a>;2: <b>;`.
    pub fn action_request_validation<S: AsRef<str>>(messages: &[S]) -> EsError {
        let mut reason = String::from("Validation Failed: ");
        for (i, m) in messages.iter().enumerate() {
            reason.push_str(&format!("{}: {};", i + 1, m.as_ref()));
        }
        EsError::new(400, "action_request_validation_exception", reason)
    }

    /// 400: a bad parameter or body member.
    pub fn illegal_argument(reason: impl Into<String>) -> EsError {
        EsError::new(400, "illegal_argument_exception", reason)
    }

    /// 400: `request [<path>] contains unrecognized parameter: [p]`
    /// (`parameters: [a, b]` for several).
    pub fn unrecognized_parameters<S: AsRef<str>>(path: &str, params: &[S]) -> EsError {
        let list: Vec<&str> = params.iter().map(AsRef::as_ref).collect();
        let noun = if list.len() == 1 {
            "parameter"
        } else {
            "parameters"
        };
        EsError::illegal_argument(format!(
            "request [{path}] contains unrecognized {noun}: [{}]",
            list.join(", ")
        ))
    }

    /// 404: `no such index [<name>]` with ES's resource members.
    pub fn index_not_found(index: &str) -> EsError {
        EsError::new(
            404,
            "index_not_found_exception",
            format!("no such index [{index}]"),
        )
        .with_field("resource.type", Value::from("index_or_alias"))
        .with_field("resource.id", Value::from(index))
        .with_field("index_uuid", Value::from("_na_"))
        .with_field("index", Value::from(index))
    }

    /// 404: a named resource other than an index, snapshot or repository.
    pub fn resource_not_found(reason: impl Into<String>) -> EsError {
        EsError::new(404, "resource_not_found_exception", reason)
    }

    /// 400: a body that is not what the endpoint parses.
    pub fn parse(reason: impl Into<String>) -> EsError {
        EsError::new(400, "parse_exception", reason)
    }

    /// 400: `request body is required`.
    pub fn body_required() -> EsError {
        EsError::parse("request body is required")
    }

    /// 400: malformed JSON at `line:column` (1-based, as serde_json counts).
    pub fn x_content_parse(line: usize, column: usize, msg: &str) -> EsError {
        EsError::new(
            400,
            "x_content_parse_exception",
            format!("[{line}:{column}] {msg}"),
        )
    }

    /// The error for a body serde_json could not read.
    pub fn from_json_error(e: &serde_json::Error) -> EsError {
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg);
        EsError::x_content_parse(e.line(), e.column(), msg)
    }

    /// 401 with ES's challenges: no credentials on `uri` (path and query).
    pub fn missing_credentials(uri: &str) -> EsError {
        EsError::security_401(format!(
            "missing authentication credentials for REST request [{uri}]"
        ))
    }

    /// 401 with ES's challenges: credentials that matched no user.
    pub fn bad_credentials(user: &str, uri: &str) -> EsError {
        EsError::security_401(format!(
            "unable to authenticate user [{user}] for REST request [{uri}]"
        ))
    }

    fn security_401(reason: String) -> EsError {
        EsError::new(401, "security_exception", reason).with_field(
            "header",
            serde_json::json!({ "WWW-Authenticate": WWW_AUTHENTICATE }),
        )
    }

    /// 403: the user's roles do not grant `action`.
    pub fn unauthorized(action: &str, user: &str, roles: &[&str], privileges: &[&str]) -> EsError {
        EsError::new(
            403,
            "security_exception",
            format!(
                "action [{action}] is unauthorized for user [{user}] with effective roles [{}], \
                 this action is granted by the cluster privileges [{}]",
                roles.join(","),
                privileges.join(",")
            ),
        )
    }

    /// 400 `status_exception` (the compatible-with header checks).
    pub fn status_exception(status: u16, reason: impl Into<String>) -> EsError {
        EsError::new(status, "status_exception", reason)
    }
}

/// An exception object without `root_cause` (a `caused_by`, a
/// `failures` entry of a multi-repository listing).
pub struct Cause<'a>(pub &'a EsError);

impl Serialize for Cause<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        write_cause(self.0, None, s)
    }
}

fn write_cause<S: Serializer>(
    e: &EsError,
    root: Option<&EsError>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(None)?;
    if let Some(root) = root {
        m.serialize_entry("root_cause", &[Cause(root)])?;
    }
    m.serialize_entry("type", e.kind)?;
    m.serialize_entry("reason", &e.reason)?;
    for (k, v) in &e.fields {
        m.serialize_entry(k, v)?;
    }
    if let Some(c) = &e.caused_by {
        m.serialize_entry("caused_by", &Cause(c))?;
    }
    m.end()
}

struct Outer<'a>(&'a EsError);

impl Serialize for Outer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        write_cause(self.0, Some(self.0.root_cause()), s)
    }
}

/// The response body: `{"error":{..},"status":N}`.
impl Serialize for EsError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("error", &Outer(self))?;
        m.serialize_entry("status", &self.status)?;
        m.end()
    }
}

/// The HTTP layer's errors, whose `error` is a plain string (405, 406, no
/// handler).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlainError {
    pub error: String,
    pub status: u16,
}

impl PlainError {
    /// 405 (the caller also sends `Allow`).
    pub fn method_not_allowed(uri: &str, method: &str, allowed: &[&str]) -> PlainError {
        PlainError {
            error: format!(
                "Incorrect HTTP method for uri [{uri}] and method [{method}], allowed: [{}]",
                allowed.join(", ")
            ),
            status: 405,
        }
    }

    /// 400: no route for this path.
    pub fn no_handler(uri: &str, method: &str) -> PlainError {
        PlainError {
            error: format!("no handler found for uri [{uri}] and method [{method}]"),
            status: 400,
        }
    }

    /// 406: a Content-Type the node does not read.
    pub fn unsupported_content_type(content_type: &str) -> PlainError {
        PlainError {
            error: format!("Content-Type header [{content_type}] is not supported"),
            status: 406,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_missing_snapshot_is_the_body_es_sends() {
        let e = EsError::snapshot_missing("my_repo", "nope");
        assert_eq!(e.status, 404);
        assert_eq!(
            e.to_json(),
            json!({"error":{"root_cause":[{"type":"snapshot_missing_exception","reason":"[my_repo:nope] is missing"}],
                "type":"snapshot_missing_exception","reason":"[my_repo:nope] is missing"},"status":404})
        );
    }

    #[test]
    fn each_constructor_pins_type_status_and_reason() {
        let cases = [
            (
                EsError::repository_missing("r"),
                404,
                "repository_missing_exception",
                "[r] missing",
            ),
            (
                EsError::invalid_snapshot_name("r", "A", "must be lowercase"),
                400,
                "invalid_snapshot_name_exception",
                "[r:A] Invalid snapshot name [A], must be lowercase",
            ),
            (
                EsError::snapshot_name_already_in_use("r", "s", false),
                400,
                "snapshot_name_already_in_use_exception",
                "[r:s] Invalid snapshot name [s], snapshot with the same name already exists",
            ),
            (
                EsError::snapshot_name_already_in_use("r", "s", true),
                400,
                "snapshot_name_already_in_use_exception",
                "[r:s] Invalid snapshot name [s], snapshot with the same name is already in-progress",
            ),
            (
                EsError::concurrent_snapshot_execution("r", "s", "cannot snapshot while a repository cleanup is in-progress in [r]"),
                503,
                "concurrent_snapshot_execution_exception",
                "[r:s] cannot snapshot while a repository cleanup is in-progress in [r]",
            ),
            (
                EsError::repository_readonly("r"),
                500,
                "repository_exception",
                "[r] repository is readonly",
            ),
            (
                EsError::repository_verification("r", "cannot write"),
                500,
                "repository_verification_exception",
                "[r] cannot write",
            ),
            (
                EsError::action_request_validation(&["size must be -1 or greater than 0", "x"]),
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: size must be -1 or greater than 0;2: x;",
            ),
            (
                EsError::unrecognized_parameters("/_snapshot/r", &["foo"]),
                400,
                "illegal_argument_exception",
                "request [/_snapshot/r] contains unrecognized parameter: [foo]",
            ),
            (
                EsError::unrecognized_parameters("/", &["a", "b"]),
                400,
                "illegal_argument_exception",
                "request [/] contains unrecognized parameters: [a, b]",
            ),
            (
                EsError::body_required(),
                400,
                "parse_exception",
                "request body is required",
            ),
            (
                EsError::bad_credentials("u", "/x"),
                401,
                "security_exception",
                "unable to authenticate user [u] for REST request [/x]",
            ),
            (
                EsError::unauthorized("cluster:admin/snapshot/create", "u", &["monitor"], &["create_snapshot", "manage", "all"]),
                403,
                "security_exception",
                "action [cluster:admin/snapshot/create] is unauthorized for user [u] with effective roles [monitor], this action is granted by the cluster privileges [create_snapshot,manage,all]",
            ),
        ];
        for (e, status, kind, reason) in cases {
            assert_eq!(
                (e.status, e.kind, e.reason.as_str()),
                (status, kind, reason)
            );
        }
        let restore = EsError::restore_over_open_index("r", "s", "u1", "idx");
        assert_eq!(restore.status, 500);
        assert!(restore
            .reason
            .starts_with("[r:s/u1] cannot restore index [idx] because an open index"));
    }

    #[test]
    fn a_401_mirrors_the_challenges_in_root_cause_and_error() {
        let body = EsError::missing_credentials("/?pretty").to_json();
        let challenges = json!({"WWW-Authenticate": WWW_AUTHENTICATE});
        assert_eq!(body["status"], 401);
        assert_eq!(body["error"]["header"], challenges);
        assert_eq!(body["error"]["root_cause"][0]["header"], challenges);
        assert_eq!(
            body["error"]["reason"],
            "missing authentication credentials for REST request [/?pretty]"
        );
    }

    #[test]
    fn root_cause_is_the_innermost_exception_and_caused_by_nests() {
        let inner = EsError::repository(
            "r",
            "location [/x] doesn't match any of the locations specified by path.repo",
        );
        let body = EsError::repository_create_failed("r", inner).to_json();
        assert_eq!(body["status"], 500);
        assert_eq!(body["error"]["reason"], "[r] failed to create repository");
        assert_eq!(
            body["error"]["caused_by"]["reason"],
            body["error"]["root_cause"][0]["reason"]
        );
        assert!(body["error"]["caused_by"].get("root_cause").is_none());
        assert!(body["error"]["root_cause"][0].get("caused_by").is_none());
    }

    #[test]
    fn index_not_found_carries_the_resource_members() {
        let body = EsError::index_not_found("logs").to_json();
        assert_eq!(body["error"]["reason"], "no such index [logs]");
        assert_eq!(body["error"]["resource.type"], "index_or_alias");
        assert_eq!(body["error"]["resource.id"], "logs");
        assert_eq!(body["error"]["index_uuid"], "_na_");
        assert_eq!(body["error"]["index"], "logs");
        assert_eq!(body["status"], 404);
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = serde_json::from_str::<Value>("{\n  \"a\": tru }").unwrap_err();
        let e = EsError::from_json_error(&err);
        assert_eq!(e.kind, "x_content_parse_exception");
        assert_eq!(e.status, 400);
        assert!(e.reason.starts_with("[2:"), "{}", e.reason);
        assert!(!e.reason.contains(" at line "), "{}", e.reason);
    }

    #[test]
    fn http_layer_errors_are_plain_strings() {
        let e = PlainError::method_not_allowed("/_snapshot/r/_verify", "GET", &["POST"]);
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"error":"Incorrect HTTP method for uri [/_snapshot/r/_verify] and method [GET], allowed: [POST]","status":405})
        );
        assert_eq!(PlainError::no_handler("/x", "GET").status, 400);
        assert_eq!(
            PlainError::unsupported_content_type("text/csv").error,
            "Content-Type header [text/csv] is not supported"
        );
        let failures = serde_json::to_value(Cause(&EsError::repository_missing("r"))).unwrap();
        assert_eq!(
            failures,
            json!({"type":"repository_missing_exception","reason":"[r] missing"})
        );
    }
}
