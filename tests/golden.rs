//! A repository written by snapkeep 0.1 (format v1) lives in
//! tests/data/golden-v1. Every later version must still list, check, diff
//! and restore it byte for byte. Regenerate (only when deliberately changing
//! the format) with:
//!   cargo test --test golden -- --ignored regenerate_golden_repository

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-v1")
}

fn source(dir: &Path, second: bool) {
    let text: String = (0..800)
        .map(|i| format!("line {i} of a compressible log\n"))
        .collect();
    write(&dir.join("logs/app.log"), text.as_bytes());
    write(&dir.join("logs/empty"), b"");
    write(&dir.join("metrics/series.bin"), &noise(40_000, 11));
    write(
        &dir.join("users/名前.json"),
        "{\"name\":\"ünïcode\"}".as_bytes(),
    );
    fs::set_permissions(
        dir.join("metrics/series.bin"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::symlink("app.log", dir.join("logs/current")).unwrap_or(());
    write(&dir.join("cluster.json"), b"{\"cluster\":\"golden\"}");
    if second {
        let mut more = text.clone();
        more.push_str("appended in the second snapshot\n");
        write(&dir.join("logs/app.log"), more.as_bytes());
        write(&dir.join("users/new.json"), b"{}");
    }
}

/// path -> description of what restore must produce.
fn describe(root: &Path) -> BTreeMap<String, Value> {
    snapshot_of(root)
        .into_iter()
        .map(|(p, e)| {
            let v = match e {
                Entry::File { mode, data, .. } => json!({"type": "file", "mode": mode, "size": data.len(), "sha256": hex::encode(Sha256::digest(&data))}),
                Entry::Dir { mode, .. } => json!({"type": "dir", "mode": mode}),
                Entry::Link { target, .. } => json!({"type": "symlink", "target": target.to_str().unwrap()}),
            };
            (p.to_str().unwrap().to_string(), v)
        })
        .collect()
}

/// The password of the encrypted golden repository.
const GOLDEN_PASSWORD: &str = "golden password";

fn password_env() -> Vec<(String, String)> {
    vec![("SNAPKEEP_PASSWORD".into(), GOLDEN_PASSWORD.into())]
}

/// Writes a golden repository into `dir`: two snapshots of [`source`],
/// and what restoring each must give.
fn make_golden(dir: &Path, prefix: &str, init_extra: &[&str], env: &[(String, String)]) {
    let _ = fs::remove_dir_all(dir);
    let t = tempfile::tempdir().unwrap();
    let (src, repo) = (t.path().join("src"), dir.join("repo"));
    let mut init = vec![
        "repo",
        "init",
        s(&repo),
        "--chunk-min",
        "256",
        "--chunk-avg",
        "1024",
        "--chunk-max",
        "4096",
    ];
    init.extend_from_slice(init_extra);
    ok_env(env, &init);
    source(&src, false);
    let (first_name, second_name) = (format!("{prefix}-first"), format!("{prefix}-second"));
    ok_env(
        env,
        &[
            "snapshot",
            "create",
            s(&repo),
            &first_name,
            "--source",
            s(&src),
            "--metadata",
            "purpose=golden",
        ],
    );
    let first = describe(&src);
    fs::remove_dir_all(&src).unwrap();
    source(&src, true);
    ok_env(
        env,
        &[
            "snapshot",
            "create",
            s(&repo),
            &second_name,
            "--source",
            s(&src),
        ],
    );
    // The space a local repository keeps for deletes on a full disk is
    // not part of the format (and 32 MiB in git).
    let _ = fs::remove_file(repo.join("reserve"));
    let _ = fs::remove_dir(repo.join("inflight"));
    let expected = json!({first_name: first, second_name: describe(&src)});
    fs::write(
        dir.join("expected.json"),
        serde_json::to_vec_pretty(&expected).unwrap(),
    )
    .unwrap();
}

#[test]
#[ignore = "rewrites the checked-in golden repository"]
fn regenerate_golden_repository() {
    make_golden(&golden_dir(), "v1", &[], &[]);
}

/// tests/data/golden-encrypted was written on 2026-12-04 (blob ids by
/// HMAC-SHA256, blobs in envelopes of layout 1); today's writer would
/// write tests/data/golden-encrypted-bound's format, so it is never
/// regenerated. This writes the newest encrypted format.
#[test]
#[ignore = "rewrites the checked-in encrypted golden repository with bound blobs"]
fn regenerate_golden_bound_repository() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-encrypted-bound");
    make_golden(&dir, "bound", &["--encryption"], &password_env());
}

/// The envelope layout byte of the first blob of every pack of `repo`.
fn first_blob_layouts(repo: &Path) -> std::collections::BTreeSet<u8> {
    let mut out = std::collections::BTreeSet::new();
    for shard in fs::read_dir(repo.join("packs")).unwrap() {
        for pack in fs::read_dir(shard.unwrap().path()).unwrap() {
            let bytes = fs::read(pack.unwrap().path()).unwrap();
            assert_eq!(&bytes[..8], b"SKPACK01");
            out.insert(bytes[8]);
        }
    }
    out
}

/// Lists, checks, restores byte for byte and diffs a golden repository.
fn golden_still_reads(dir: &Path, prefix: &str, env: &[(String, String)]) {
    let repo = dir.join("repo");
    let expected: Value =
        serde_json::from_slice(&fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let list: Value = serde_json::from_str(&ok_env(
        env,
        &["snapshot", "list", s(&repo), "--sort", "name", "--json"],
    ))
    .unwrap();
    let names: Vec<&str> = list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshot"].as_str().unwrap())
        .collect();
    let (first, second) = (format!("{prefix}-first"), format!("{prefix}-second"));
    assert_eq!(names, [first.as_str(), second.as_str()]);
    ok_env(env, &["repo", "check", s(&repo), "--read-data"]);
    let t = tempfile::tempdir().unwrap();
    for name in names {
        let dst = t.path().join(name);
        ok_env(
            env,
            &[
                "restore",
                s(&repo),
                name,
                "--target",
                s(&dst),
                "--include-global-state",
            ],
        );
        let got = serde_json::to_value(describe(&dst)).unwrap();
        assert_eq!(got, expected[name], "{name} restores differently");
    }
    let diff = ["snapshot", "diff", s(&repo), &first, &second, "--json"];
    let d: Value = serde_json::from_str(&ok_env(env, &diff)).unwrap();
    assert_eq!(d["added"], 1);
    assert_eq!(d["modified"], 1);
    let get = ["snapshot", "get", s(&repo), &first, "--json"];
    let meta: Value = serde_json::from_str(&ok_env(env, &get)).unwrap();
    assert_eq!(meta["snapshots"][0]["metadata"]["purpose"], "golden");
}

#[test]
fn format_v1_golden_repository_still_reads() {
    golden_still_reads(&golden_dir(), "v1", &[]);
}

/// The first encrypted repository (format v2 encryption) must keep
/// opening with its password, and only with it.
#[test]
fn encrypted_golden_repository_still_reads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-encrypted");
    golden_still_reads(&dir, "enc", &password_env());
    let repo = dir.join("repo");
    let wrong = [("SNAPKEEP_PASSWORD".to_string(), "not it".to_string())];
    let err = fails_env(&wrong, &["snapshot", "list", s(&repo)]);
    assert!(err.contains("wrong password"), "{err}");
    // Its blobs are of envelope layout 1, checked by hashing, and named
    // by HMAC-SHA256.
    assert_eq!(first_blob_layouts(&repo), [0xE1].into());
    assert_eq!(content_ids(&repo), "hmac-sha256");
}

/// The keyed hash an encrypted repository's config names.
fn content_ids(repo: &Path) -> String {
    let config: Value = serde_json::from_slice(&fs::read(repo.join("config")).unwrap()).unwrap();
    config["encryption"]["content_ids"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Today's writer adds to the first encrypted repository in its own way
/// (blobs bound to HMAC-SHA256 ids): both kinds of blob then read, check
/// and dedup side by side.
#[test]
fn the_first_encrypted_golden_repository_takes_new_snapshots() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-encrypted");
    let t = tempfile::tempdir().unwrap();
    let (repo, src, dst) = (
        t.path().join("repo"),
        t.path().join("src"),
        t.path().join("dst"),
    );
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(golden.join("repo"))
        .arg(&repo)
        .status();
    assert!(copied.unwrap().success());
    source(&src, true);
    fs::write(
        src.join("logs/new.log"),
        "written by a later snapkeep\n".repeat(500),
    )
    .unwrap();
    let env = password_env();
    let create = [
        "snapshot",
        "create",
        s(&repo),
        "later",
        "--source",
        s(&src),
        "--json",
    ];
    let made: Value = serde_json::from_str(&ok_env(&env, &create)).unwrap();
    // Only the new file's bytes are new: the rest was found under the
    // repository's HMAC-SHA256 ids.
    let indices = made["snapshot"]["index_details"].as_object().unwrap();
    let sum = |field: &str| {
        indices
            .values()
            .map(|i| i[field].as_u64().unwrap())
            .sum::<u64>()
    };
    assert!(sum("new_bytes") <= 14_000, "{indices:?}");
    assert!(sum("size_in_bytes") > 14_000 + 40_000, "{indices:?}");
    assert_eq!(first_blob_layouts(&repo), [0xE1, 0xE2].into());
    assert_eq!(content_ids(&repo), "hmac-sha256");
    ok_env(&env, &["repo", "check", s(&repo), "--read-data"]);
    ok_env(
        &env,
        &[
            "restore",
            s(&repo),
            "later",
            "--target",
            s(&dst),
            "--include-global-state",
        ],
    );
    assert_eq!(describe(&dst), describe(&src));
}

/// Encrypted blobs bound to their ids (envelope layout 2, `0xE2`).
#[test]
fn bound_encrypted_golden_repository_still_reads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-encrypted-bound");
    golden_still_reads(&dir, "bound", &password_env());
    assert_eq!(first_blob_layouts(&dir.join("repo")), [0xE2].into());
    assert_eq!(content_ids(&dir.join("repo")), "blake3-keyed");
}
