//! Remote clusters (`cluster.remote.*` through `PUT /_cluster/settings`,
//! and `GET /_remote/info`) between real node processes on 127.0.0.1: a
//! remote is connected when the other node accepts its credentials, and
//! says why not otherwise; the credentials are kept in a file only the
//! node's user reads and never shown; settings survive a restart.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::node::{start, start_with, Dirs, Node};
use common::servers::free_port;
use serde_json::{json, Value};

const TOKEN: &str = "leader-token-7f3a9";

fn put(node: &Node, body: Value) -> (u16, Value, String) {
    let r = node.send("PUT", "/_cluster/settings", &body.to_string());
    (r.status, r.json(), r.text())
}

fn info(node: &Node) -> Value {
    let r = node.get("/_remote/info");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains(TOKEN), "{}", r.text());
    r.json()
}

#[test]
fn remotes_connect_with_their_credentials_and_say_why_not() {
    let (leader_dirs, follower_dirs) = (Dirs::new(), Dirs::new());
    let leader = start_with(&leader_dirs, &[], &[("SNAPKEEP_NODE_TOKEN", TOKEN)]);
    let mut follower = start(&follower_dirs, &[]);
    let leader_addr = format!("127.0.0.1:{}", leader.port);
    let nobody = format!("127.0.0.1:{}", free_port());

    let (status, body, text) = put(
        &follower,
        json!({"persistent": {"cluster": {"remote": {
            "leader": {"mode": "proxy", "proxy_address": leader_addr, "credentials": TOKEN},
            "wrong": {"mode": "proxy", "proxy_address": leader_addr, "credentials": "not-it"},
            "bare": {"proxy_address": leader_addr},
            "gone": {"proxy_address": nobody},
        }}}}),
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(body["acknowledged"], true);
    assert!(!text.contains(TOKEN), "{text}");
    assert_eq!(
        body["persistent"]["cluster"]["remote"]["leader"]["credentials"],
        "::es_redacted::"
    );

    let check = |info: &Value| {
        let leader = &info["leader"];
        assert_eq!(leader["connected"], true, "{info}");
        assert_eq!(leader["mode"], "proxy");
        assert_eq!(leader["proxy_address"], leader_addr);
        assert_eq!(leader["num_proxy_sockets_connected"], 1);
        assert_eq!(leader["cluster_credentials"], "::es_redacted::");
        let reason = |alias: &str| {
            assert_eq!(info[alias]["connected"], false, "{alias}: {info}");
            info[alias]["reason"].as_str().unwrap().to_string()
        };
        assert!(
            reason("wrong").contains("refused the credentials"),
            "{info}"
        );
        assert!(
            reason("bare").contains("set cluster.remote.bare.credentials"),
            "{info}"
        );
        assert!(reason("gone").contains("cannot connect"), "{info}");
    };
    check(&info(&follower));

    let file = follower_dirs.state().join("remotes.json");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the credentials file is the node user's only");
    let settings = follower.get("/_cluster/settings");
    assert!(!settings.text().contains(TOKEN), "{}", settings.text());

    // Kept over a restart.
    follower.signal("TERM");
    let follower = start(&follower_dirs, &[]);
    check(&info(&follower));

    // A null address removes a remote; a null credential forgets it.
    let (status, _, text) = put(
        &follower,
        json!({"persistent": {"cluster.remote.gone.proxy_address": null,
                              "cluster.remote.leader.credentials": null}}),
    );
    assert_eq!(status, 200, "{text}");
    let now = info(&follower);
    assert!(now.get("gone").is_none(), "{now}");
    assert_eq!(now["leader"]["connected"], false, "{now}");
    assert!(now["leader"].get("cluster_credentials").is_none());
}

#[test]
fn bad_remote_settings_are_refused_with_the_reason() {
    let dirs = Dirs::new();
    let node = start(&dirs, &[]);
    let cases = [
        (
            json!({"persistent": {"cluster.remote.a.mode": "sniff", "cluster.remote.a.seeds": ["h:9300"]}}),
            "not recognized",
        ),
        (
            json!({"persistent": {"cluster.remote.a.mode": "sniff", "cluster.remote.a.proxy_address": "h:1"}}),
            "[proxy] mode",
        ),
        (
            json!({"persistent": {"cluster.remote.a.proxy_address": "http://h:1"}}),
            "host:port",
        ),
        (
            json!({"persistent": {"cluster.routing.allocation.enable": "all"}}),
            "not recognized",
        ),
    ];
    for (body, expected) in cases {
        let (status, reply, text) = put(&node, body.clone());
        assert_eq!(status, 400, "{body}: {text}");
        assert_eq!(
            reply["error"]["type"], "illegal_argument_exception",
            "{text}"
        );
        let reason = reply["error"]["reason"].as_str().unwrap();
        assert!(reason.contains(expected), "{body}: {reason}");
    }
    let r = node.send("PUT", "/_cluster/settings", "not json");
    assert_eq!(r.status, 400, "{}", r.text());
    // Nothing was kept from the refused requests.
    assert_eq!(
        node.get("/_cluster/settings").json(),
        json!({"persistent": {}, "transient": {}})
    );
    assert_eq!(info(&node), json!({}));
}
