//! The role each request needs, and the Elasticsearch action name a 403
//! reports, from its method and path alone (before routing, as
//! Elasticsearch authenticates before it looks for a handler).

use axum::http::Method;

use crate::node::auth::Role;

fn segments(path: &str) -> Vec<&str> {
    path.trim_matches('/').split('/').collect()
}

/// Reads (and the `/api` read API) need `monitor`; creating, restoring, cloning and deleting
/// snapshots need `snapshot`, and so do a lifecycle policy's run and
/// retention (they only create and delete snapshots); everything else
/// (repositories, indices, cleanup, lifecycle policies and the lifecycle's
/// start and stop) needs `manage`.
pub fn required_role(method: &Method, path: &str) -> Role {
    if method == Method::GET || method == Method::HEAD {
        return Role::Monitor;
    }
    match segments(path).as_slice() {
        // The read API: a restore plan is a POST that changes nothing.
        ["api", ..] => Role::Monitor,
        // A follower's delta asks read the checkpoint repository, which
        // `monitor` reads through `/api` anyway.
        [_, "_ccr", "deltas"] => Role::Monitor,
        ["_snapshot", _, snap] if !snap.starts_with('_') => Role::Snapshot,
        ["_snapshot", _, snap, "_restore"] if !snap.starts_with('_') => Role::Snapshot,
        ["_snapshot", _, _, "_clone", _] => Role::Snapshot,
        ["_slm", "policy", _, "_execute"] => Role::Snapshot,
        ["_slm", "_execute_retention"] => Role::Snapshot,
        _ => Role::Manage,
    }
}

/// Elasticsearch's action name for a request, as a 403 names it.
pub fn action(method: &Method, path: &str) -> String {
    let write = method == Method::PUT || method == Method::POST;
    let name = match (segments(path).as_slice(), write, method == Method::DELETE) {
        (["_snapshot", _], true, _) => "cluster:admin/repository/put",
        (["_snapshot", _], _, true) => "cluster:admin/repository/delete",
        (["_snapshot", _, "_verify"], _, _) => "cluster:admin/repository/verify",
        (["_snapshot", _, "_cleanup"], _, _) => "cluster:admin/repository/_cleanup",
        (["_snapshot", _, "_analyze"], _, _) => "cluster:admin/repository/analyze",
        (["_snapshot", _, _, "_restore"], _, _) => "cluster:admin/snapshot/restore",
        (["_snapshot", _, _, "_clone", _], _, _) => "cluster:admin/snapshot/clone",
        (["_snapshot", _, _], true, _) => "cluster:admin/snapshot/create",
        (["_snapshot", _, _], _, true) => "cluster:admin/snapshot/delete",
        (["_slm", "policy", _], true, _) => "cluster:admin/slm/put",
        (["_slm", "policy", _], _, true) => "cluster:admin/slm/delete",
        (["_slm", "policy", _, "_execute"], _, _) => "cluster:admin/slm/execute",
        (["_slm", "_execute_retention"], _, _) => "cluster:admin/slm/execute-retention",
        (["_slm", "start"], _, _) => "cluster:admin/slm/start",
        (["_slm", "stop"], _, _) => "cluster:admin/slm/stop",
        (["_cluster", "settings"], true, _) => "cluster:admin/settings/update",
        ([_, "_ccr", "follow"], true, _) => "indices:admin/xpack/ccr/put_follow",
        ([_, "_ccr", "deltas"], true, _) => "indices:data/read/snapkeep/ccr/deltas",
        ([_, "_ccr", "pause_follow"], true, _) => "indices:admin/xpack/ccr/pause_follow",
        ([_, "_ccr", "resume_follow"], true, _) => "indices:admin/xpack/ccr/resume_follow",
        ([_, "_ccr", "unfollow"], true, _) => "indices:admin/xpack/ccr/unfollow",
        ([_, "_ccr", "forget_follower"], true, _) => "indices:admin/xpack/ccr/forget_follower",
        ([_, "_ccr", "promote"], true, _) => "indices:admin/snapkeep/ccr/promote",
        ([_, "_ccr", "publish"], true, _) => "indices:admin/snapkeep/ccr/publish",
        ([_, "_ccr", "publish"], _, true) => "indices:admin/snapkeep/ccr/unpublish",
        ([_, "_close"], true, _) => "indices:admin/close",
        ([_, "_open"], true, _) => "indices:admin/open",
        ([index], _, true) if !index.starts_with('_') => "indices:admin/delete",
        _ => return format!("{method} {path}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_the_kind_of_endpoint() {
        let cases = [
            (Method::GET, "/_snapshot/r/s", Role::Monitor),
            (Method::HEAD, "/", Role::Monitor),
            (Method::PUT, "/_snapshot/r", Role::Manage),
            (Method::DELETE, "/_snapshot/r", Role::Manage),
            (Method::POST, "/_snapshot/r/_cleanup", Role::Manage),
            (Method::POST, "/_snapshot/r/_verify", Role::Manage),
            (Method::POST, "/_snapshot/r/_analyze", Role::Manage),
            (Method::PUT, "/_snapshot/r/s1", Role::Snapshot),
            (Method::DELETE, "/_snapshot/r/s1,s2", Role::Snapshot),
            (Method::POST, "/_snapshot/r/s1/_restore", Role::Snapshot),
            (Method::PUT, "/_snapshot/r/s1/_clone/s2", Role::Snapshot),
            (Method::DELETE, "/index", Role::Manage),
            (Method::POST, "/index/_close", Role::Manage),
            (Method::POST, "/index/_open", Role::Manage),
            (
                Method::POST,
                "/api/repos/r/snapshots/s/_restore_plan",
                Role::Monitor,
            ),
            (Method::GET, "/_slm/policy/p", Role::Monitor),
            (Method::GET, "/_slm/stats", Role::Monitor),
            (Method::PUT, "/_slm/policy/p", Role::Manage),
            (Method::DELETE, "/_slm/policy/p", Role::Manage),
            (Method::POST, "/_slm/stop", Role::Manage),
            (Method::POST, "/_slm/policy/p/_execute", Role::Snapshot),
            (Method::POST, "/_slm/_execute_retention", Role::Snapshot),
        ];
        for (m, p, role) in cases {
            assert_eq!(required_role(&m, p), role, "{m} {p}");
        }
        assert_eq!(
            action(&Method::PUT, "/_snapshot/r"),
            "cluster:admin/repository/put"
        );
        assert_eq!(action(&Method::DELETE, "/logs"), "indices:admin/delete");
        assert_eq!(
            action(&Method::PUT, "/_slm/policy/p"),
            "cluster:admin/slm/put"
        );
        assert_eq!(
            action(&Method::POST, "/_slm/policy/p/_execute"),
            "cluster:admin/slm/execute"
        );
        assert_eq!(action(&Method::POST, "/logs/_close"), "indices:admin/close");
        assert_eq!(
            action(&Method::PUT, "/copy/_ccr/follow"),
            "indices:admin/xpack/ccr/put_follow"
        );
        assert_eq!(
            required_role(&Method::PUT, "/copy/_ccr/follow"),
            Role::Manage
        );
        assert_eq!(
            required_role(&Method::GET, "/logs/_ccr/changes"),
            Role::Monitor
        );
        assert_eq!(
            required_role(&Method::POST, "/logs/_ccr/deltas"),
            Role::Monitor
        );
        assert_eq!(
            action(&Method::POST, "/_snapshot/r/s"),
            "cluster:admin/snapshot/create"
        );
    }
}
