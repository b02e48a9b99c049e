//! S3 repositories against a real S3 server (moto) on 127.0.0.1.

mod common;

use std::sync::Arc;

use common::servers::{create_bucket, moto, s3_env, s3_options};
use common::*;
use snapkeep::storage::object::ObjectStorage;
use snapkeep::storage::{PutMode, Storage, StorageError};

#[test]
fn s3_storage_conforms_and_the_cli_works_end_to_end() {
    let server = moto();
    create_bucket(server.port, "conformance");
    create_bucket(server.port, "repos");
    let rt = tokio::runtime::Runtime::new().unwrap();
    for url in ["s3://conformance", "s3://conformance/with/prefix"] {
        let store = ObjectStorage::open(url, &s3_options(server.port)).unwrap();
        rt.block_on(snapkeep::storage::conformance::run_all(Arc::new(store)));
    }
    let t = tempfile::tempdir().unwrap();
    end_to_end(&s3_env(server.port), "s3://repos/team/prod", t.path());
}

#[test]
fn storage_options_work_without_environment_variables() {
    let server = moto();
    create_bucket(server.port, "opts");
    let t = tempfile::tempdir().unwrap();
    write(&t.path().join("src/idx/f"), b"hello");
    let mut args: Vec<String> = Vec::new();
    for (k, v) in s3_options(server.port) {
        args.push("--storage-option".into());
        args.push(format!("{k}={v}"));
    }
    let with = |base: &[&str]| -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(args.iter().cloned())
            .collect()
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        ok_env(
            &[("AWS_EC2_METADATA_DISABLED".into(), "true".into())],
            &refs,
        );
    };
    run(with(&["repo", "init", "s3://opts/r"]));
    run(with(&[
        "snapshot",
        "create",
        "s3://opts/r",
        "s1",
        "--source",
        t.path().join("src").to_str().unwrap(),
    ]));
    run(with(&["repo", "check", "s3://opts/r", "--read-data"]));
}

#[test]
fn bad_s3_setups_give_one_clear_line() {
    let server = moto();
    create_bucket(server.port, "real");
    let t = tempfile::tempdir().unwrap();
    let env = s3_env(server.port);
    // Missing bucket.
    let err = fails_env(&env, &["repo", "init", "s3://no-such-bucket/r"]);
    assert!(err.contains("[no-such-bucket] does not exist"), "{err}");
    let err = fails_env(&env, &["snapshot", "list", "s3://no-such-bucket/r"]);
    assert!(err.contains("does not exist"), "{err}");
    // An empty prefix is not a repository.
    let err = fails_env(&env, &["snapshot", "list", "s3://real/nothing-here"]);
    assert!(err.contains("no snapkeep repository at"), "{err}");
    // Unreachable endpoint.
    let mut dead = env.clone();
    let dead_endpoint = format!("127.0.0.1:{}", common::servers::free_port());
    dead[0].1 = format!("http://{dead_endpoint}");
    let err = fails_env(&dead, &["snapshot", "list", "s3://real/r"]);
    // Named as the store being unreachable, at the endpoint that was given
    // (not the repository's URL, which any message names).
    assert!(
        err.contains("storage unavailable") && err.contains(&format!("http://{dead_endpoint}/")),
        "{err}"
    );
    // A repository still works afterwards.
    write(&t.path().join("src/i/f"), b"x");
    ok_env(&env, &["repo", "init", "s3://real/r"]);
    ok_env(
        &env,
        &[
            "snapshot",
            "create",
            "s3://real/r",
            "s1",
            "--source",
            s(&t.path().join("src")),
        ],
    );
}

/// Wrong credentials stop at once with one clear line and leave nothing
/// behind; the right ones then work.
#[test]
fn wrong_s3_credentials_are_refused_at_once() {
    let (server, id, secret) = common::servers::moto_with_auth("locked");
    let t = tempfile::tempdir().unwrap();
    write(&t.path().join("src/i/f"), b"x");
    let with = |id: &str, secret: &str| {
        let mut env = s3_env(server.port);
        env[2].1 = id.into();
        env[3].1 = secret.into();
        env
    };
    for env in [with("AKIANOSUCHKEY0000000", &secret), with(&id, "wrong")] {
        let started = std::time::Instant::now();
        let err = fails_env(&env, &["repo", "init", "s3://locked/r"]);
        assert!(err.contains("permission denied"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
    let good = with(&id, &secret);
    ok_env(&good, &["repo", "init", "s3://locked/r"]);
    let err = fails_env(&with(&id, "wrong"), &["snapshot", "list", "s3://locked/r"]);
    assert!(err.contains("permission denied"), "{err}");
    let src = t.path().join("src");
    ok_env(
        &good,
        &[
            "snapshot",
            "create",
            "s3://locked/r",
            "s1",
            "--source",
            s(&src),
        ],
    );
    ok_env(&good, &["repo", "check", "s3://locked/r", "--read-data"]);
}

#[test]
fn create_only_puts_are_conditional_on_s3() {
    let server = moto();
    create_bucket(server.port, "cas");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = ObjectStorage::open("s3://cas", &s3_options(server.port)).unwrap();
    rt.block_on(async {
        store
            .put(
                "index-1",
                bytes::Bytes::from_static(b"first"),
                PutMode::Create,
            )
            .await
            .unwrap();
        let again = store
            .put(
                "index-1",
                bytes::Bytes::from_static(b"second"),
                PutMode::Create,
            )
            .await;
        assert!(
            matches!(again, Err(StorageError::AlreadyExists { .. })),
            "{again:?}"
        );
        assert_eq!(
            store.get("index-1", None).await.unwrap(),
            bytes::Bytes::from_static(b"first")
        );
    });
}
