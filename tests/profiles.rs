//! Where the repository comes from when REPO is left out (cron habits):
//! `SNAPKEEP_REPOSITORY`, `--repo-file`, and profiles in
//! `~/.config/snapkeep/config.toml`, all through the real binary with a
//! temporary HOME.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::servers::moto_with_auth;
use common::*;

/// The binary in `dir`, with HOME in `home`, none of the caller's
/// snapkeep, XDG or AWS settings, and `env` added.
fn run_in(dir: &Path, home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir).env("HOME", home).args(args);
    for k in [
        "XDG_CONFIG_HOME",
        "SNAPKEEP_CONFIG",
        "SNAPKEEP_REPOSITORY",
        "SNAPKEEP_PROFILE",
        "SNAPKEEP_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT",
        "AWS_REGION",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    cmd.envs(env.iter().copied());
    cmd.output().expect("snapkeep runs")
}

#[track_caller]
fn succeeds(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Requires failure with `code` and one line on stderr; returns it.
#[track_caller]
fn refused(out: Output, code: i32) -> String {
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

fn total(stdout: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(stdout).unwrap();
    v["total"].as_u64().unwrap()
}

#[test]
fn snapkeep_repository_stands_in_for_a_left_out_repo() {
    let t = tempfile::tempdir().unwrap();
    let (dir, home) = (t.path(), t.path().join("home"));
    write(&dir.join("src/idx/f"), b"hello");
    init(&dir.join("r"));
    let env = [("SNAPKEEP_REPOSITORY", "r")];
    let run = |args: &[&str]| run_in(dir, &home, &env, args);

    succeeds(run(&["snapshot", "create", "s1", "--source", "src"]));
    succeeds(run(&["-q", "snapshot", "create", "--source", "src", "s2"]));
    assert_eq!(total(&succeeds(run(&["snapshot", "list", "--json"]))), 2);
    let got: serde_json::Value =
        serde_json::from_str(&succeeds(run(&["snapshot", "get", "s1", "--json"]))).unwrap();
    assert_eq!(got["snapshots"][0]["snapshot"], "s1", "{got}");
    succeeds(run(&["snapshot", "diff", "s1", "s2"]));
    succeeds(run(&["restore", "s1", "--target", "out"]));
    assert_eq!(std::fs::read(dir.join("out/idx/f")).unwrap(), b"hello");
    succeeds(run(&["snapshot", "delete", "s2"]));
    succeeds(run(&["repo", "check"]));

    // A REPO on the command line wins, and is named as it was typed.
    std::fs::create_dir(dir.join("empty")).unwrap();
    let err = refused(run(&["snapshot", "list", "empty"]), 4);
    assert!(err.contains("no snapkeep repository at empty "), "{err}");
    let err = refused(run(&["snapshot", "get", "empty", "s1"]), 4);
    assert!(err.contains("no snapkeep repository at empty "), "{err}");
}

#[test]
fn without_any_repository_the_error_says_how_to_give_one() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    for args in [
        &["snapshot", "list"][..],
        &["snapshot", "get", "s1"],
        &["restore", "s1", "--target", "out"],
        &["repo", "stats", "--json"],
    ] {
        let err = refused(run_in(t.path(), &home, &[], args), 2);
        assert!(
            err.contains("no repository given: pass REPO or set SNAPKEEP_REPOSITORY"),
            "{args:?}: {err}"
        );
    }
    // Something else missing is still clap's own message.
    let err = refused(
        run_in(t.path(), &home, &[], &["snapshot", "create", "s1"]),
        2,
    );
    assert!(err.contains("--source"), "{err}");
}

#[test]
fn repo_file_holds_the_location() {
    let t = tempfile::tempdir().unwrap();
    let (dir, home) = (t.path(), t.path().join("home"));
    init(&dir.join("r"));
    std::fs::write(dir.join("where"), "r\n").unwrap();
    let out = run_in(
        dir,
        &home,
        &[],
        &["snapshot", "list", "--repo-file", "where", "--json"],
    );
    assert_eq!(total(&succeeds(out)), 0);
    // It comes before SNAPKEEP_REPOSITORY.
    let env = [("SNAPKEEP_REPOSITORY", "elsewhere")];
    let out = run_in(dir, &home, &env, &["--repo-file", "where", "repo", "stats"]);
    succeeds(out);

    let err = refused(
        run_in(
            dir,
            &home,
            &[],
            &["snapshot", "list", "--repo-file", "nofile"],
        ),
        2,
    );
    assert!(err.contains("--repo-file nofile"), "{err}");
    assert!(!err.contains("os error"), "{err}");
    std::fs::write(dir.join("blank"), "\n").unwrap();
    let err = refused(
        run_in(
            dir,
            &home,
            &[],
            &["snapshot", "list", "--repo-file", "blank"],
        ),
        2,
    );
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn profiles_name_a_repository_by_flag_environment_or_at_name() {
    let t = tempfile::tempdir().unwrap();
    let (dir, home) = (t.path(), t.path().join("home"));
    init(&dir.join("r"));
    write(&dir.join("src/idx/f"), b"x");
    let config = format!(
        "[profiles.local]\nrepository = {:?}\n\n[profiles.bare]\n",
        s(&dir.join("r"))
    );
    write(
        &home.join(".config/snapkeep/config.toml"),
        config.as_bytes(),
    );
    let run = |env: &[(&str, &str)], args: &[&str]| run_in(dir, &home, env, args);

    succeeds(run(
        &[],
        &[
            "--profile",
            "local",
            "snapshot",
            "create",
            "s1",
            "--source",
            "src",
        ],
    ));
    let listed = run(
        &[("SNAPKEEP_PROFILE", "local")],
        &["snapshot", "list", "--json"],
    );
    assert_eq!(total(&succeeds(listed)), 1);
    assert_eq!(
        total(&succeeds(run(
            &[],
            &["snapshot", "list", "@local", "--json"]
        ))),
        1
    );

    // $XDG_CONFIG_HOME comes before ~/.config, $SNAPKEEP_CONFIG before both.
    let xdg = dir.join("xdg");
    write(&xdg.join("snapkeep/config.toml"), b"[profiles.other]\n");
    let env = [("XDG_CONFIG_HOME", s(&xdg))];
    let err = refused(run(&env, &["snapshot", "list", "@local"]), 2);
    assert!(
        err.contains("no profile [local]") && err.contains("(profiles: other)"),
        "{err}"
    );
    let home_config = home.join(".config/snapkeep/config.toml");
    let env = [
        ("XDG_CONFIG_HOME", s(&xdg)),
        ("SNAPKEEP_CONFIG", s(&home_config)),
    ];
    assert_eq!(
        total(&succeeds(run(
            &env,
            &["snapshot", "list", "@local", "--json"]
        ))),
        1
    );

    let err = refused(run(&[], &["--profile", "nope", "snapshot", "list"]), 2);
    assert!(
        err.contains("no profile [nope]") && err.contains("local"),
        "{err}"
    );
    let err = refused(run(&[], &["--profile", "bare", "snapshot", "list"]), 2);
    assert!(err.contains("profile [bare] has no repository"), "{err}");
    write(&home_config, b"[profiles.typo]\nrepo = \"x\"\n");
    let err = refused(run(&[], &["snapshot", "list", "@typo"]), 2);
    assert!(err.contains("config.toml") && err.contains("repo"), "{err}");
}

/// A profile carries the storage options and says where credentials are
/// (an environment variable, a file): an S3 server that checks them
/// accepts the profile alone, and no error ever shows a secret.
#[test]
fn a_profile_brings_storage_options_and_credentials() {
    let (server, id, secret) = moto_with_auth("creds");
    let t = tempfile::tempdir().unwrap();
    let (dir, home) = (t.path(), t.path().join("home"));
    write(&dir.join("src/idx/f"), b"offsite data");
    std::fs::write(dir.join("secret"), format!("{secret}\n")).unwrap();
    let config = format!(
        "[profiles.offsite]\nrepository = \"s3://creds/team\"\n\
         storage_options = {{ endpoint = \"http://127.0.0.1:{}\", allow_http = \"true\", region = \"us-east-1\" }}\n\
         [profiles.offsite.credentials]\naccess_key_id = {{ env = \"OFFSITE_KEY_ID\" }}\n\
         secret_access_key = {{ file = {:?} }}\n",
        server.port,
        s(&dir.join("secret"))
    );
    write(
        &home.join(".config/snapkeep/config.toml"),
        config.as_bytes(),
    );
    let env = [
        ("OFFSITE_KEY_ID", id.as_str()),
        ("SNAPKEEP_PROFILE", "offsite"),
    ];
    let run = |env: &[(&str, &str)], args: &[&str]| run_in(dir, &home, env, args);

    succeeds(run(&env, &["repo", "init"]));
    succeeds(run(&env, &["snapshot", "create", "s1", "--source", "src"]));
    succeeds(run(&env, &["restore", "s1", "--target", "out"]));
    assert_eq!(
        std::fs::read(dir.join("out/idx/f")).unwrap(),
        b"offsite data"
    );

    // The variable's name, never a value, when it is missing.
    let err = refused(
        run(&[("SNAPKEEP_PROFILE", "offsite")], &["snapshot", "list"]),
        2,
    );
    assert!(err.contains("OFFSITE_KEY_ID is not set"), "{err}");
    // A wrong secret is refused by the server; the message holds neither
    // secret and no internal object name.
    std::fs::write(dir.join("secret"), "wrong-secret-value\n").unwrap();
    let out = run(&env, &["snapshot", "list"]);
    let err = refused(out, 5);
    assert!(err.contains("permission denied"), "{err}");
    for hidden in [
        secret.as_str(),
        "wrong-secret-value",
        " on config",
        "index.latest",
    ] {
        assert!(!err.contains(hidden), "{hidden:?} in {err}");
    }
}
