//! `snapkeep node` through real HTTP: start and stop, its state folder,
//! its config, the auth matrix, the repository APIs and ES's error shapes.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use common::node::{command, hash_password, start, start_with, Dirs};
use common::servers::free_port;
use common::{s, set_age, write};
use serde_json::json;

fn register_fs(node: &common::node::Node, name: &str, location: &Path) -> common::node::Reply {
    node.send(
        "PUT",
        &format!("/_snapshot/{name}"),
        &json!({"type": "fs", "settings": {"location": location}}).to_string(),
    )
}

#[test]
fn root_health_and_a_clean_stop_on_sigterm() {
    let dirs = Dirs::new();
    let mut node = start(&dirs, &[]);
    let root = node.get("/");
    assert_eq!(root.status, 200);
    assert_eq!(root.header("X-elastic-product"), Some("Elasticsearch"));
    assert_eq!(root.header("content-type"), Some("application/json"));
    let info = root.json();
    assert!(info["version"]["number"]
        .as_str()
        .unwrap()
        .starts_with("8."));
    assert_eq!(info["version"]["build_flavor"], "default");
    assert_eq!(info["tagline"], "You Know, for Search");
    let head = node.call("HEAD", "/", &[], None);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("X-elastic-product"), Some("Elasticsearch"));
    assert_eq!(node.get("/_cluster/health").json()["status"], "green");
    // The cluster UUID is the node's, kept in its state folder.
    let compat = "application/vnd.elasticsearch+json; compatible-with=8";
    let asked = node.call("GET", "/", &[("Accept", compat)], None);
    assert_eq!(
        asked.header("content-type"),
        Some("application/vnd.elasticsearch+json;compatible-with=8")
    );
    let status = node.signal("TERM");
    assert_eq!(status.code(), Some(0), "SIGTERM ends the node with 0");
    let again = start(&dirs, &[]);
    assert_eq!(again.get("/").json()["cluster_uuid"], info["cluster_uuid"]);
}

#[test]
fn a_second_node_on_the_same_state_folder_is_refused_naming_the_first() {
    let dirs = Dirs::new();
    let first = start(&dirs, &[]);
    let out = command(&dirs, free_port(), &[]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(&format!("pid {}", first.pid())), "{err}");
    assert_eq!(first.get("/").status, 200, "the first node keeps running");
}

#[test]
fn registrations_survive_kill_9() {
    let dirs = Dirs::new();
    let mut node = start(&dirs, &[]);
    let location = dirs.backups().join("r1");
    assert_eq!(register_fs(&node, "r1", &location).status, 200);
    let before = node.get("/_snapshot/r1").json();
    assert!(node.signal("KILL").code().is_none());
    // The lock went with the process; the registration stayed.
    let node = start(&dirs, &[]);
    assert_eq!(node.get("/_snapshot/r1").json(), before);
    assert_eq!(before["r1"]["settings"]["location"], s(&location));
}

#[test]
fn config_mistakes_stop_the_node_with_one_line() {
    let dirs = Dirs::new();
    let cases = [
        ("listen_address = \"x\"\n", "listen_address"),
        ("[auth]\ntoken = \"x\"\n", "token"),
        (
            "[[auth.tokens]]\ntoken = \"t\"\nrole = \"admin\"\n",
            "admin",
        ),
        (
            "[[auth.users]]\nname = \"u\"\npassword_hash = \"plain\"\nrole = \"manage\"\n",
            "hash-password",
        ),
    ];
    for (extra, named) in cases {
        let config = dirs.config(extra);
        let out = command(&dirs, free_port(), &["--config", s(&config)])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{extra}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.starts_with("error: ") && err.contains(named),
            "{extra}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    let open = command(&dirs, free_port(), &["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    let err = String::from_utf8(open.stderr).unwrap();
    assert!(!open.status.success());
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without credentials"),
        "{err}"
    );
    // The same address with a credential starts (and is stopped at once).
    let mut c = command(&dirs, free_port(), &["--listen", "0.0.0.0:0"]);
    let mut child = c
        .env("SNAPKEEP_NODE_TOKEN", "t0ken")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "a node with a credential may listen widely"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

fn basic(user: &str, password: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b}")
}

#[test]
fn the_auth_matrix() {
    let dirs = Dirs::new();
    let hash = hash_password("correct horse");
    assert!(hash.starts_with("$argon2"), "{hash}");
    let config = dirs.config(&format!(
        "[[auth.tokens]]\nname = \"watcher\"\ntoken = \"mon-token\"\nrole = \"monitor\"\n\
         [[auth.tokens]]\ntoken = \"snap-token\"\nrole = \"snapshot\"\n\
         [[auth.users]]\nname = \"alice\"\npassword_hash = {hash:?}\nrole = \"manage\"\n"
    ));
    let node = start_with(
        &dirs,
        &["--config", s(&config)],
        &[("SNAPKEEP_NODE_TOKEN", "env-token")],
    );
    let put_body =
        json!({"type": "fs", "settings": {"location": dirs.backups().join("r")}}).to_string();
    let put = |auth: &str| {
        node.call(
            "PUT",
            "/_snapshot/r",
            &[
                ("Authorization", auth),
                ("Content-Type", "application/json"),
            ],
            Some(put_body.as_bytes()),
        )
    };
    let manage = basic("alice", "correct horse");
    let registered = || {
        node.call("GET", "/_snapshot", &[("Authorization", &manage)], None)
            .json()
    };

    let missing = node.get("/");
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("X-elastic-product"), Some("Elasticsearch"));
    let challenges = missing.all("WWW-Authenticate");
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with("Basic realm=\"security\"")),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().any(|c| c.starts_with("Bearer")),
        "{challenges:?}"
    );
    let body = missing.json();
    assert_eq!(body["status"], 401);
    assert_eq!(body["error"]["type"], "security_exception");
    assert_eq!(
        body["error"]["reason"],
        "missing authentication credentials for REST request [/]"
    );
    assert_eq!(body["error"]["root_cause"][0]["type"], "security_exception");

    let wrong_token = put("Bearer nope");
    assert_eq!(wrong_token.status, 401);
    assert_eq!(wrong_token.json()["error"]["type"], "security_exception");
    let wrong_password = put(&basic("alice", "wrong horse"));
    assert_eq!(wrong_password.status, 401);
    assert_eq!(
        wrong_password.json()["error"]["reason"],
        "unable to authenticate user [alice] for REST request [/_snapshot/r]"
    );
    let monitor = put("Bearer mon-token");
    assert_eq!(monitor.status, 403);
    assert!(monitor.header("WWW-Authenticate").is_none());
    let reason = monitor.json()["error"]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.starts_with(
            "action [cluster:admin/repository/put] is unauthorized for user [watcher]"
        ),
        "{reason}"
    );
    let snapshot = put("Bearer snap-token");
    assert_eq!(snapshot.status, 403);
    assert_eq!(registered(), json!({}), "refused requests changed nothing");
    assert!(!dirs.backups().join("r").exists());

    // Reads need monitor; every role has it.
    for auth in [
        "Bearer mon-token",
        "Bearer snap-token",
        "Bearer env-token",
        manage.as_str(),
    ] {
        assert_eq!(
            node.call("GET", "/_snapshot", &[("Authorization", auth)], None)
                .status,
            200,
            "{auth}"
        );
    }
    assert_eq!(put(&manage).status, 200);
    assert_eq!(
        put("Bearer env-token").status,
        200,
        "SNAPKEEP_NODE_TOKEN has the manage role"
    );
    assert_eq!(registered()["r"]["type"], "fs");
    let delete = node.call(
        "DELETE",
        "/_snapshot/r",
        &[("Authorization", "Bearer snap-token")],
        None,
    );
    assert_eq!(delete.status, 403);
    assert_eq!(registered()["r"]["type"], "fs");

    // Snapshots: the snapshot role may take and delete them, monitor may not.
    let take = |auth: &str| {
        node.call(
            "PUT",
            "/_snapshot/r/s1?wait_for_completion=true",
            &[
                ("Authorization", auth),
                ("Content-Type", "application/json"),
            ],
            Some(b"{}"),
        )
    };
    assert_eq!(take("Bearer mon-token").status, 403);
    assert_eq!(take("Bearer snap-token").status, 200);
    let listed = node.call(
        "GET",
        "/_snapshot/r/_all",
        &[("Authorization", "Bearer mon-token")],
        None,
    );
    assert_eq!(listed.json()["total"], 1);
    let drop = |auth: &str| {
        node.call(
            "DELETE",
            "/_snapshot/r/s1",
            &[("Authorization", auth)],
            None,
        )
    };
    assert_eq!(drop("Bearer mon-token").status, 403);
    assert_eq!(drop("Bearer snap-token").status, 200);
}

#[test]
fn repositories_register_list_verify_clean_and_unregister() {
    let dirs = Dirs::new();
    let config = dirs.config("cleanup_grace_secs = 60\n");
    let node = start(&dirs, &["--config", s(&config)]);
    assert_eq!(node.get("/_snapshot").json(), json!({}));
    let first = dirs.backups().join("first");
    assert_eq!(
        register_fs(&node, "first", &first).json(),
        json!({"acknowledged": true})
    );
    // Registration made the repository, as `snapkeep repo init` would.
    common::ok(&["repo", "stats", s(&first)]);
    let relative = node.send(
        "PUT",
        "/_snapshot/second?verify=true",
        r#"{"type":"fs","settings":{"location":"second","compress":true}}"#,
    );
    assert_eq!(relative.status, 200, "{}", relative.text());
    let unverified = node.send(
        "PUT",
        "/_snapshot/later?verify=false",
        &json!({"type": "fs", "settings": {"location": dirs.backups().join("later")}}).to_string(),
    );
    assert_eq!(unverified.status, 200);
    assert!(
        !dirs.backups().join("later").exists(),
        "verify=false touches nothing"
    );

    let all = node.get("/_snapshot").json();
    assert_eq!(all.as_object().unwrap().len(), 3);
    assert_eq!(
        all["second"]["settings"]["compress"], "true",
        "settings come back as strings"
    );
    assert!(all["first"]["uuid"].is_string());
    assert!(all["later"].get("uuid").is_none());
    let picked = node.get("/_snapshot/f*,later").json();
    assert_eq!(
        picked.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["first", "later"]
    );
    assert_eq!(node.get("/_snapshot/_all").json(), all);
    assert_eq!(
        node.get("/_snapshot/*,-s*")
            .json()
            .as_object()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(node.get("/_snapshot/none*").json(), json!({}));
    let missing = node.get("/_snapshot/first,nope");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json()["error"]["type"],
        "repository_missing_exception"
    );
    assert_eq!(missing.json()["error"]["reason"], "[nope] missing");

    let verified = node.call("POST", "/_snapshot/first/_verify", &[], None);
    assert_eq!(verified.status, 200, "{}", verified.text());
    let nodes = verified.json()["nodes"].as_object().unwrap().clone();
    assert_eq!(nodes.len(), 1);
    let broken = node.call("POST", "/_snapshot/later/_verify", &[], None);
    assert_eq!(broken.status, 500);
    assert_eq!(
        broken.json()["error"]["type"],
        "repository_verification_exception"
    );

    assert_eq!(
        node.call("POST", "/_snapshot/first/_cleanup", &[], None)
            .json(),
        json!({"results": {"deleted_bytes": 0, "deleted_blobs": 0}})
    );
    let orphan = first.join(format!("packs/ab/{}", "ab".repeat(32)));
    write(&orphan, &[7u8; 1000]);
    set_age(&orphan, Duration::from_secs(3600));
    let young = first.join(format!("packs/cd/{}", "cd".repeat(32)));
    write(&young, &[7u8; 10]);
    let cleaned = node
        .call("POST", "/_snapshot/first/_cleanup", &[], None)
        .json();
    assert_eq!(
        cleaned,
        json!({"results": {"deleted_bytes": 1000, "deleted_blobs": 1}})
    );
    assert!(
        !orphan.exists() && young.exists(),
        "younger than the grace, kept"
    );

    let cat = node.get("/_cat/repositories?v");
    assert_eq!(
        cat.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    let lines: Vec<String> = cat
        .text()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines, vec!["id type", "first fs", "later fs", "second fs"]);
    assert_eq!(
        node.get("/_cat/repositories?format=json").json()[0],
        json!({"id": "first", "type": "fs"})
    );

    assert_eq!(
        node.call("DELETE", "/_snapshot/first", &[], None).json(),
        json!({"acknowledged": true})
    );
    assert_eq!(node.get("/_snapshot/first").status, 404);
    common::ok(&["repo", "stats", s(&first)]);
    assert_eq!(
        node.call("DELETE", "/_snapshot/first", &[], None).status,
        404
    );
}

#[test]
fn fs_locations_outside_path_repo_are_refused_as_elasticsearch_does() {
    let dirs = Dirs::new();
    let node = start(&dirs, &[]);
    let outside = dirs.root.path().join("elsewhere");
    let refused = register_fs(&node, "r", &outside);
    assert_eq!(refused.status, 500);
    let body = refused.json();
    assert_eq!(body["error"]["type"], "repository_exception");
    assert_eq!(body["error"]["reason"], "[r] failed to create repository");
    let expected = format!(
        "[r] location [{}] doesn't match any of the locations specified by path.repo",
        s(&outside)
    );
    assert_eq!(body["error"]["caused_by"]["reason"], expected);
    assert_eq!(body["error"]["root_cause"][0]["reason"], expected);
    let sneaky = node.send(
        "PUT",
        "/_snapshot/r",
        r#"{"type":"fs","settings":{"location":"../elsewhere"}}"#,
    );
    assert_eq!(sneaky.status, 500);
    assert!(!outside.exists());
    assert_eq!(node.get("/_snapshot").json(), json!({}));
}

#[test]
fn bad_requests_get_elasticsearch_errors_and_change_nothing() {
    let dirs = Dirs::new();
    let config = dirs.config("max_body_bytes = 4096\n");
    let node = start(&dirs, &["--config", s(&config)]);
    let location = dirs.backups().join("r");
    let expect = |reply: common::node::Reply, status: u16, kind: &str| {
        assert_eq!(reply.status, status, "{}", reply.text());
        assert_eq!(reply.header("X-elastic-product"), Some("Elasticsearch"));
        let body = reply.json();
        assert_eq!(body["error"]["type"], kind, "{body}");
        assert_eq!(body["status"], status);
        body
    };
    expect(
        node.send("PUT", "/_snapshot/r", "{\"type\": \"fs\", "),
        400,
        "x_content_parse_exception",
    );
    let unknown = expect(
        node.send(
            "PUT",
            "/_snapshot/r",
            &json!({"type": "fs", "settings": {"location": location}, "colour": 1}).to_string(),
        ),
        400,
        "illegal_argument_exception",
    );
    assert_eq!(unknown["error"]["reason"], "Unknown parameter colour");
    expect(
        node.send(
            "PUT",
            "/_snapshot/r",
            &json!({"type": "fs", "settings": {"location": location, "readonly": "yes"}})
                .to_string(),
        ),
        400,
        "illegal_argument_exception",
    );
    expect(
        node.send("PUT", "/_snapshot/r", r#"{"settings":{}}"#),
        400,
        "action_request_validation_exception",
    );
    expect(
        node.send("PUT", "/_snapshot/r", r#"{"type":"fs","settings":"x"}"#),
        400,
        "illegal_argument_exception",
    );
    expect(
        node.send("PUT", "/_snapshot/r", "[1]"),
        400,
        "parse_exception",
    );
    expect(
        node.call("PUT", "/_snapshot/r", &[], None),
        400,
        "parse_exception",
    );
    // Elasticsearch refuses such names with a repository_exception (500).
    expect(
        node.send("PUT", "/_snapshot/a*b", r#"{"type":"fs"}"#),
        500,
        "repository_exception",
    );
    let param = expect(
        node.get("/_snapshot?colour=red"),
        400,
        "illegal_argument_exception",
    );
    assert_eq!(
        param["error"]["reason"],
        "request [/_snapshot] contains unrecognized parameter: [colour]"
    );
    let big = format!(
        r#"{{"type":"fs","settings":{{"location":{:?},"pad":"{}"}}}}"#,
        s(&location),
        "x".repeat(8000)
    );
    expect(
        node.send("PUT", "/_snapshot/r", &big),
        413,
        "illegal_argument_exception",
    );
    let form = node.call(
        "PUT",
        "/_snapshot/r",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(b"a=b"),
    );
    assert_eq!(form.status, 406);
    assert_eq!(
        form.json()["error"],
        "Content-Type header [application/x-www-form-urlencoded] is not supported"
    );

    let unrouted = node.get("/_no/such/thing?x=1");
    assert_eq!(unrouted.status, 400);
    assert_eq!(
        unrouted.json()["error"],
        "no handler found for uri [/_no/such/thing?x=1] and method [GET]"
    );
    let wrong_method = node.call("GET", "/_snapshot/r/_cleanup", &[], None);
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("allow"), Some("POST"));
    assert_eq!(
        wrong_method.json()["error"],
        "Incorrect HTTP method for uri [/_snapshot/r/_cleanup] and method [GET], allowed: [POST]"
    );
    assert_eq!(
        node.get("/_snapshot").json(),
        json!({}),
        "nothing was registered"
    );
    assert!(!location.exists());
    assert_eq!(node.get("/").status, 200, "the node is still up");
}

#[test]
fn tls_serves_https_with_the_configured_certificate() {
    let dirs = Dirs::new();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = dirs.root.path().join("node.crt");
    let key = dirs.root.path().join("node.key");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();

    let missing = dirs.root.path().join("absent.crt");
    let out = command(
        &dirs,
        free_port(),
        &["--tls-cert", s(&missing), "--tls-key", s(&key)],
    )
    .output()
    .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(
        err.starts_with("error: TLS: ") && err.contains("absent.crt"),
        "{err}"
    );

    let node = start(&dirs, &["--tls-cert", s(&cert), "--tls-key", s(&key)]);
    let url = format!("https://127.0.0.1:{}/", node.port);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(made.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let (status, product, info) = runtime.block_on(async {
        let r = trusting.get(&url).send().await.unwrap();
        let product = r.headers()["x-elastic-product"]
            .to_str()
            .unwrap()
            .to_string();
        (
            r.status().as_u16(),
            product,
            r.json::<serde_json::Value>().await.unwrap(),
        )
    });
    assert_eq!((status, product.as_str()), (200, "Elasticsearch"));
    assert_eq!(info["tagline"], "You Know, for Search");
    // A client that does not trust the certificate gets no answer, and
    // plain HTTP on the port gets no HTTP answer either.
    let stranger = reqwest::Client::new();
    assert!(runtime.block_on(stranger.get(&url).send()).is_err());
    let plain = format!("http://127.0.0.1:{}/", node.port);
    assert!(runtime.block_on(stranger.get(&plain).send()).is_err());
    assert_eq!(
        runtime
            .block_on(trusting.get(&url).send())
            .unwrap()
            .status()
            .as_u16(),
        200,
        "the node still serves after refused handshakes"
    );
}

#[test]
fn snapshots_are_listed_with_elasticsearch_paging_and_deleted() {
    let dirs = Dirs::new();
    let node = start(&dirs, &[]);
    let location = dirs.backups().join("r");
    assert_eq!(register_fs(&node, "r", &location).status, 200);
    write(&dirs.data().join("idx/file"), &[1u8; 5000]);
    for name in ["s1", "s2"] {
        common::ok(&[
            "snapshot",
            "create",
            s(&location),
            name,
            "--source",
            s(&dirs.data()),
        ]);
    }
    let one = node.get("/_snapshot/r/s1").json();
    assert_eq!(
        (one["total"].as_u64(), one["remaining"].as_u64()),
        (Some(1), Some(0))
    );
    let info = &one["snapshots"][0];
    assert_eq!(info["snapshot"], "s1");
    assert_eq!(info["repository"], "r");
    assert_eq!(info["state"], "SUCCESS");
    assert_eq!(info["indices"], json!(["idx"]));

    let page = node
        .get("/_snapshot/r/_all?sort=name&order=desc&size=1")
        .json();
    assert_eq!(page["snapshots"][0]["snapshot"], "s2");
    assert_eq!(
        (page["total"].as_u64(), page["remaining"].as_u64()),
        (Some(2), Some(1))
    );
    let next = page["next"].as_str().unwrap().to_string();
    let rest = node
        .get(&format!(
            "/_snapshot/r/_all?sort=name&order=desc&size=1&after={next}"
        ))
        .json();
    assert_eq!(rest["snapshots"][0]["snapshot"], "s1");
    assert_eq!(rest["remaining"], 0);
    let brief = node.get("/_snapshot/r/s*?verbose=false").json();
    assert!(brief["snapshots"][0].get("shards").is_none());
    assert_eq!(brief["total"], 2);

    let missing = node.get("/_snapshot/r/s1,nope");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json()["error"]["type"],
        "snapshot_missing_exception"
    );
    assert_eq!(missing.json()["error"]["reason"], "[r:nope] is missing");
    let ignored = node
        .get("/_snapshot/r/s1,nope?ignore_unavailable=true")
        .json();
    assert_eq!(ignored["total"], 1);
    assert_eq!(
        node.get("/_snapshot/none/s1").json()["error"]["type"],
        "repository_missing_exception"
    );
    assert_eq!(node.get("/_snapshot/r/_all?sort=colour").status, 400);

    let gone = node.call("DELETE", "/_snapshot/r/s1", &[], None);
    assert_eq!(gone.json(), json!({"acknowledged": true}));
    let left = node.get("/_snapshot/r/_all").json();
    assert_eq!(left["total"], 1);
    assert_eq!(left["snapshots"][0]["snapshot"], "s2");
    let again = node.call("DELETE", "/_snapshot/r/s1", &[], None);
    assert_eq!(again.status, 404);
    assert_eq!(again.json()["error"]["reason"], "[r:s1] is missing");
    // The repository is whole after the delete.
    common::ok(&["repo", "check", s(&location)]);
}

/// Listings keep a reader per repository between requests (the root is
/// read again only when a newer generation exists): another writer's
/// snapshots and deletes still show at once, in `GET _snapshot` and
/// `_cat/snapshots`, and a registration moved to another location lists
/// that location's snapshots.
#[test]
fn listings_follow_other_writers_and_changed_registrations() {
    let dirs = Dirs::new();
    let node = start(&dirs, &[]);
    let first = dirs.backups().join("first");
    assert_eq!(register_fs(&node, "r", &first).status, 200);
    write(&dirs.data().join("idx/file"), &[7u8; 3000]);
    let snapshot = |location: &Path, name: &str| {
        common::ok(&[
            "snapshot",
            "create",
            s(location),
            name,
            "--source",
            s(&dirs.data()),
        ]);
    };
    let names = |node: &common::node::Node| -> Vec<String> {
        let listed = node.get("/_snapshot/r/_all").json();
        let cat = node.get("/_cat/snapshots/r?h=id&s=id").text();
        let names: Vec<String> = listed["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["snapshot"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(cat.split_whitespace().collect::<Vec<_>>(), names, "{cat}");
        names
    };
    snapshot(&first, "a");
    assert_eq!(names(&node), ["a"]);
    snapshot(&first, "b");
    assert_eq!(names(&node), ["a", "b"], "another writer's commit");
    common::ok(&["snapshot", "delete", s(&first), "a"]);
    assert_eq!(names(&node), ["b"], "another writer's delete");
    let second = dirs.backups().join("second");
    common::ok(&["repo", "init", s(&second)]);
    snapshot(&second, "c");
    assert_eq!(register_fs(&node, "r", &second).status, 200);
    assert_eq!(names(&node), ["c"], "the new registration's location");
    // The folder wiped and made a repository again under the same
    // registration: its first root is older than the one the node read.
    snapshot(&second, "d");
    assert_eq!(names(&node), ["c", "d"]);
    std::fs::remove_dir_all(&second).unwrap();
    common::ok(&["repo", "init", s(&second)]);
    snapshot(&second, "e");
    assert_eq!(
        names(&node),
        ["e"],
        "a repository made again in the same folder"
    );
}

#[test]
fn snapshots_are_created_from_the_data_directory() {
    let dirs = Dirs::new();
    let node = start(&dirs, &[]);
    let location = dirs.backups().join("r");
    assert_eq!(register_fs(&node, "r", &location).status, 200);
    write(&dirs.data().join("idx/file"), &[3u8; 20_000]);
    write(&dirs.data().join("other/file"), &[4u8; 100]);

    let body = r#"{"indices":["idx"],"include_global_state":false,"metadata":{"taken_by":"test"}}"#;
    let made = node.send(
        "PUT",
        "/_snapshot/r/%3Cnightly-%7Bnow%2Fd%7D%3E?wait_for_completion=true",
        body,
    );
    assert_eq!(made.status, 200, "{}", made.text());
    let info = made.json()["snapshot"].clone();
    let name = info["snapshot"].as_str().unwrap().to_string();
    assert!(
        name.starts_with("nightly-") && !name.contains('{'),
        "date math resolved: {name}"
    );
    assert_eq!(info["state"], "SUCCESS");
    assert_eq!(info["indices"], json!(["idx"]));
    assert_eq!(info["metadata"], json!({"taken_by": "test"}));
    assert_eq!(info["include_global_state"], false);

    let taken = node.send(
        "PUT",
        &format!("/_snapshot/r/{name}?wait_for_completion=true"),
        "{}",
    );
    assert_eq!(taken.status, 400);
    assert_eq!(
        taken.json()["error"]["type"],
        "snapshot_name_already_in_use_exception"
    );
    let bad = node.send("PUT", "/_snapshot/r/_bad", "{}");
    assert_eq!(
        bad.json()["error"]["type"],
        "invalid_snapshot_name_exception"
    );
    let field = node.send("PUT", "/_snapshot/r/s9", r#"{"colour":"red"}"#);
    assert_eq!(field.status, 400);
    assert_eq!(node.send("PUT", "/_snapshot/nope/s9", "{}").status, 404);

    // Without waiting: accepted at once, listed IN_PROGRESS until done.
    assert_eq!(
        node.send("POST", "/_snapshot/r/later", "").json(),
        json!({"accepted": true})
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while node.get("/_snapshot/r/later").json()["snapshots"][0]["state"] != "SUCCESS" {
        assert!(
            std::time::Instant::now() < deadline,
            "the snapshot did not land"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let later = node.get("/_snapshot/r/later").json();
    assert_eq!(later["snapshots"][0]["indices"], json!(["idx", "other"]));
    assert_eq!(
        node.get("/_snapshot/r/_all").json()["total"],
        2,
        "refused requests made nothing"
    );
    common::ok(&["repo", "check", s(&location)]);
}

#[test]
fn sigterm_lets_a_running_request_finish() {
    use std::io::{Read, Write};
    let dirs = Dirs::new();
    let mut node = start(&dirs, &[]);
    let body =
        json!({"type": "fs", "settings": {"location": dirs.backups().join("r")}}).to_string();
    let (head, tail) = body.as_bytes().split_at(10);
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", node.port)).unwrap();
    write!(
        conn,
        "PUT /_snapshot/r HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(head).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = node.pid().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(300));
    // The request began before the signal: it is finished, and answered.
    conn.write_all(tail).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"acknowledged":true}"#), "{answer}");
    let status = node.signal("TERM");
    assert_eq!(status.code(), Some(0));
    let restarted = start(&dirs, &[]);
    assert_eq!(restarted.get("/_snapshot/r").json()["r"]["type"], "fs");
}
