//! Encrypted repositories (format v2 encryption) through the real CLI:
//! round trips on a folder and on S3 (moto), every password source, wrong
//! passwords, tampering in each kind of object, key slots that change no
//! data object, and concurrent writers.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::servers::{create_bucket, moto, s3_env};
use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

const PASSWORD: &str = "correct horse battery staple";

fn env_with(password: &str) -> Vec<(String, String)> {
    vec![("SNAPKEEP_PASSWORD".into(), password.into())]
}

fn env() -> Vec<(String, String)> {
    env_with(PASSWORD)
}

/// Every file under `dir` (recursively), relative path -> SHA-256.
fn digests(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, hex::encode(Sha256::digest(fs::read(&p).unwrap())));
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// An encrypted repository with two snapshots of a small tree.
fn repo_with_snapshots(t: &Path) -> (PathBuf, PathBuf) {
    let (repo, src) = (t.join("repo"), t.join("src"));
    write(&src.join("idx/secret-name.txt"), b"the quarterly numbers\n");
    write(&src.join("idx/data.bin"), &noise(2 << 20, 7));
    ok_env(&env(), &["repo", "init", s(&repo), "--encryption"]);
    ok_env(
        &env(),
        &["snapshot", "create", s(&repo), "first", "--source", s(&src)],
    );
    write(&src.join("idx/later.txt"), b"added later");
    ok_env(
        &env(),
        &[
            "snapshot",
            "create",
            s(&repo),
            "second",
            "--source",
            s(&src),
        ],
    );
    (repo, src)
}

#[test]
fn an_encrypted_folder_repository_works_end_to_end_and_shows_nothing() {
    let t = tempfile::tempdir().unwrap();
    let url = t.path().join("repo");
    end_to_end_init(&env(), s(&url), t.path(), &["--encryption"]);
    for cmd in [
        vec!["repo", "stats", s(&url)],
        vec!["repo", "analyze", s(&url)],
        vec!["repo", "cleanup", s(&url)],
        vec!["repo", "check", s(&url), "--read-data"],
    ] {
        ok_env(&env(), &cmd);
    }
    // Names of files and snapshots, and file content, appear nowhere.
    for (rel, _) in digests(&url) {
        let bytes = fs::read(url.join(&rel)).unwrap();
        for needle in [
            &b"settings.json"[..],
            b"blob.bin",
            b"\"snapshot\"",
            b"log line",
        ] {
            assert!(
                !contains(&bytes, needle),
                "{} shows {:?}",
                rel.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    let config: Value = serde_json::from_slice(&fs::read(url.join("config")).unwrap()).unwrap();
    assert_eq!(config["version"], 2);
    assert!(
        config.get("chunker").is_none(),
        "settings are sealed: {config}"
    );
}

#[test]
fn an_encrypted_s3_repository_works_end_to_end() {
    let server = moto();
    create_bucket(server.port, "sealed");
    let t = tempfile::tempdir().unwrap();
    let mut env = s3_env(server.port);
    env.extend(self::env());
    end_to_end_init(&env, "s3://sealed/prod", t.path(), &["--encryption"]);
}

#[test]
fn passwords_come_from_every_source_and_wrong_ones_fail_in_one_line() {
    let t = tempfile::tempdir().unwrap();
    let (repo, _) = repo_with_snapshots(t.path());
    let list = |env: &[(String, String)], extra: &[&str]| {
        let mut args = vec!["snapshot", "list", s(&repo)];
        args.extend_from_slice(extra);
        run_env(env, &args)
    };
    let file = t.path().join("pw");
    fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let from_file = [("SNAPKEEP_PASSWORD_FILE".to_string(), s(&file).to_string())];
    assert!(list(&from_file, &[]).status.success());
    let command = format!("cat {}", s(&file));
    assert!(list(&[], &["--password-command", &command])
        .status
        .success());
    let failing = list(&[], &["--password-command", "exit 3"]);
    assert!(!failing.status.success());
    assert!(String::from_utf8_lossy(&failing.stderr).contains("password command"));

    let wrong = list(&env_with("not the password"), &[]);
    assert_eq!(
        wrong.status.code(),
        Some(5),
        "authentication failures exit 5"
    );
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("wrong password"), "{err}");
    let wrong_json = list(&env_with("nope"), &["--json"]);
    let body: Value = serde_json::from_slice(&wrong_json.stdout).unwrap();
    assert_eq!(body["error"]["type"], "security_exception", "{body}");

    // Standard input is not a terminal here: no prompt, a clear refusal.
    let none = Command::new(bin())
        .args(["snapshot", "list", s(&repo)])
        .env_remove("SNAPKEEP_PASSWORD")
        .env_remove("SNAPKEEP_PASSWORD_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(!none.status.success());
    assert!(err.contains("is encrypted: give its password"), "{err}");
}

/// Flips one bit of `key`'s object (at `at` from its start, or from its
/// end when negative) in a copy of `repo`, and returns the copy.
fn tampered(repo: &Path, t: &Path, name: &str, key: &Path, at: i64) -> PathBuf {
    let copy = copy_of(repo, t, name);
    let path = copy.join(key);
    let mut bytes = fs::read(&path).unwrap();
    let i = if at < 0 { bytes.len() as i64 + at } else { at } as usize;
    bytes[i] ^= 0x10;
    fs::write(&path, bytes).unwrap();
    copy
}

fn copy_of(repo: &Path, t: &Path, name: &str) -> PathBuf {
    let copy = t.join(name);
    assert!(Command::new("cp")
        .args(["-a", s(repo), s(&copy)])
        .status()
        .unwrap()
        .success());
    copy
}

fn first_file(repo: &Path, dir: &str) -> PathBuf {
    let mut all: Vec<PathBuf> = digests(&repo.join(dir)).into_keys().collect();
    all.sort();
    Path::new(dir).join(&all[0])
}

/// Packs by size, smallest first: the tree pack, then the data packs.
fn packs_by_size(repo: &Path) -> Vec<PathBuf> {
    let mut packs: Vec<PathBuf> = digests(&repo.join("packs"))
        .into_keys()
        .map(|p| Path::new("packs").join(p))
        .collect();
    packs.sort_by_key(|p| fs::metadata(repo.join(p)).unwrap().len());
    packs
}

#[test]
fn a_flipped_bit_in_any_kind_of_object_is_named_never_decrypted_into_wrong_bytes() {
    let t = tempfile::tempdir().unwrap();
    let (repo, _) = repo_with_snapshots(t.path());
    let packs = packs_by_size(&repo);
    let (tree_pack, data_pack) = (&packs[0], packs.last().unwrap());
    let authentic = "failed authentication";
    // Blobs and pack tables: check --read-data names them.
    for (name, key, at) in [
        ("data-blob", data_pack, 40),
        ("tree-blob", tree_pack, 40),
        ("pack-table", data_pack, -30),
    ] {
        let copy = tampered(&repo, t.path(), name, key, at);
        let out = run_env(&env(), &["repo", "check", s(&copy), "--read-data"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{name}: {text}");
        assert!(text.contains(authentic), "{name}: {text}");
    }
    // A damaged data blob fails the restore instead of writing wrong bytes.
    let copy = t.path().join("data-blob");
    let dst = t.path().join("restored");
    let err = fails_env(
        &env(),
        &["restore", s(&copy), "second", "--target", s(&dst)],
    );
    assert!(err.contains(authentic), "{err}");

    // Whole objects: every command reading them fails, naming the object.
    let manifest = first_file(&repo, "snapshots");
    let index = first_file(&repo, "index");
    for (name, key, args) in [
        ("root", PathBuf::from("index-2"), vec!["snapshot", "list"]),
        ("index", index, vec!["repo", "stats"]),
    ] {
        let copy = tampered(&repo, t.path(), name, &key, 30);
        let mut full = args.clone();
        full.insert(2, s(&copy));
        let err = fails_env(&env(), &full);
        assert!(
            err.contains(authentic) || err.contains("damaged") || err.contains("does not decode"),
            "{name}: {err}"
        );
        let file_name = key.file_name().unwrap().to_str().unwrap();
        assert!(err.contains(file_name), "{name}: {err}");
    }
    // The config's sealed part, one hex digit changed.
    let copy = copy_of(&repo, t.path(), "config");
    let mut config: Value =
        serde_json::from_slice(&fs::read(copy.join("config")).unwrap()).unwrap();
    let mut sealed = config["sealed"].as_str().unwrap().to_string();
    let digit = if sealed.ends_with('0') { "1" } else { "0" };
    sealed.replace_range(sealed.len() - 1.., digit);
    config["sealed"] = sealed.into();
    fs::write(copy.join("config"), serde_json::to_vec(&config).unwrap()).unwrap();
    let err = fails_env(&env(), &["snapshot", "list", s(&copy)]);
    assert!(err.contains("config") && err.contains(authentic), "{err}");
    let copy = tampered(&repo, t.path(), "manifest", &manifest, 30);
    let errs: Vec<String> = ["first", "second"]
        .iter()
        .map(|name| run_env(&env(), &["snapshot", "get", s(&copy), name]))
        .filter(|out| !out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stderr).into_owned())
        .collect();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains(authentic), "{}", errs[0]);
    // The index.latest hint is only a hint: a damaged one is ignored.
    let copy = tampered(&repo, t.path(), "latest", Path::new("index.latest"), 30);
    let list = ok_env(&env(), &["snapshot", "list", s(&copy), "--json"]);
    assert_eq!(serde_json::from_str::<Value>(&list).unwrap()["total"], 2);
    // An altered key slot opens with no password (it looks like a wrong one).
    let slot = first_file(&repo, "keys");
    let copy = copy_of(&repo, t.path(), "slot");
    let text = fs::read_to_string(copy.join(&slot)).unwrap();
    let at = text.find("wrapped_key").unwrap() + 16;
    let digit = if &text[at..=at] == "0" { "1" } else { "0" };
    let changed = format!("{}{digit}{}", &text[..at], &text[at + 1..]);
    fs::write(copy.join(&slot), changed).unwrap();
    let err = fails_env(&env(), &["snapshot", "list", s(&copy)]);
    assert!(err.contains("wrong password"), "{err}");
}

/// Two blobs of one length, their envelopes swapped inside the pack:
/// each is authentic, but not as the blob its index entry names. Readers
/// no longer hash blobs whose envelope binds their id, so the envelope
/// must refuse it: no restore, read or check takes one blob for another.
#[test]
fn a_blob_swapped_for_another_is_refused_by_its_envelope() {
    let t = tempfile::tempdir().unwrap();
    let (repo, src) = (t.path().join("repo"), t.path().join("src"));
    write(&src.join("idx/a.bin"), &noise(4096, 1));
    write(&src.join("idx/b.bin"), &noise(4096, 2));
    ok_env(&env(), &["repo", "init", s(&repo), "--encryption"]);
    ok_env(
        &env(),
        &["snapshot", "create", s(&repo), "snap", "--source", s(&src)],
    );
    let data_pack = repo.join(packs_by_size(&repo).last().unwrap());
    let mut pack = fs::read(&data_pack).unwrap();
    let n = pack.len();
    let table_len = u32::from_le_bytes(pack[n - 12..n - 8].try_into().unwrap()) as usize;
    let blobs = 8..n - 12 - table_len;
    assert_eq!(blobs.len() % 2, 0, "two envelopes of one length");
    let half = blobs.len() / 2;
    let (first, second) = (blobs.start, blobs.start + half);
    assert_eq!((pack[first], pack[second]), (0xE2, 0xE2), "bound envelopes");
    let swapped = [&pack[second..blobs.end], &pack[first..second]].concat();
    pack[blobs].copy_from_slice(&swapped);
    fs::write(&data_pack, pack).unwrap();

    let dst = t.path().join("restored");
    let err = fails_env(&env(), &["restore", s(&repo), "snap", "--target", s(&dst)]);
    assert!(err.contains("failed authentication"), "{err}");
    for name in ["idx/a.bin", "idx/b.bin"] {
        if let Ok(got) = fs::read(dst.join(name)) {
            assert_eq!(got, fs::read(src.join(name)).unwrap(), "{name}");
        }
    }
    let out = run_env(&env(), &["repo", "check", s(&repo), "--read-data"]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("failed authentication"), "{text}");
}

#[test]
fn key_slots_are_added_changed_and_removed_without_touching_data() {
    let t = tempfile::tempdir().unwrap();
    let (repo, _) = repo_with_snapshots(t.path());
    let data = |repo: &Path| {
        let mut d = digests(repo);
        d.retain(|p, _| !p.starts_with("keys"));
        d
    };
    let before = data(&repo);
    let keys = |password: &str| -> Value {
        serde_json::from_str(&ok_env(
            &env_with(password),
            &["repo", "key", "list", s(&repo), "--json"],
        ))
        .unwrap()
    };
    assert_eq!(keys(PASSWORD)["keys"].as_array().unwrap().len(), 1);

    let mut add_env = env();
    add_env.push(("SNAPKEEP_NEW_PASSWORD".into(), "second password".into()));
    let added: Value = serde_json::from_str(&ok_env(
        &add_env,
        &["repo", "key", "add", s(&repo), "--json"],
    ))
    .unwrap();
    let second_id = added["added"].as_str().unwrap().to_string();
    let listed = keys("second password");
    assert_eq!(listed["keys"].as_array().unwrap().len(), 2);
    let current: Vec<&Value> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["current"] == true)
        .collect();
    assert_eq!(
        current[0]["id"],
        second_id.as_str(),
        "the slot that opened is marked"
    );

    let new_file = t.path().join("new");
    fs::write(&new_file, "third password\n").unwrap();
    ok_env(
        &env(),
        &[
            "repo",
            "key",
            "passwd",
            s(&repo),
            "--new-password-file",
            s(&new_file),
        ],
    );
    let old = fails_env(&env(), &["snapshot", "list", s(&repo)]);
    assert!(old.contains("wrong password"), "{old}");
    ok_env(&env_with("third password"), &["snapshot", "list", s(&repo)]);
    ok_env(
        &env_with("second password"),
        &["repo", "key", "remove", s(&repo), &second_id],
    );
    let gone = fails_env(
        &env_with("second password"),
        &["snapshot", "list", s(&repo)],
    );
    assert!(gone.contains("wrong password"), "{gone}");
    let last = keys("third password")["keys"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = fails_env(
        &env_with("third password"),
        &["repo", "key", "remove", s(&repo), &last],
    );
    assert!(refused.contains("last"), "{refused}");

    assert_eq!(data(&repo), before, "no object but key slots changed");
    ok_env(
        &env_with("third password"),
        &["repo", "check", s(&repo), "--read-data"],
    );
    let plain = t.path().join("plain");
    init(&plain);
    let err = fails(&["repo", "key", "list", s(&plain)]);
    assert!(err.contains("not encrypted"), "{err}");
}

#[test]
fn concurrent_writers_share_an_encrypted_repository() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    ok_env(&env(), &["repo", "init", s(&repo), "--encryption"]);
    let shared = noise(1 << 20, 1);
    let sources: Vec<PathBuf> = (0..3)
        .map(|i| {
            let src = t.path().join(format!("src{i}"));
            write(&src.join("idx/shared.bin"), &shared);
            write(&src.join("idx/own.bin"), &noise(300_000, 10 + i));
            src
        })
        .collect();
    let handles: Vec<_> = sources
        .iter()
        .enumerate()
        .map(|(i, src)| {
            Command::new(bin())
                .args([
                    "snapshot",
                    "create",
                    s(&repo),
                    &format!("c{i}"),
                    "--source",
                    s(src),
                ])
                .env("SNAPKEEP_PASSWORD", PASSWORD)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for h in handles {
        let out = h.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ok_env(&env(), &["repo", "check", s(&repo), "--read-data"]);
    for (i, src) in sources.iter().enumerate() {
        let dst = t.path().join(format!("dst{i}"));
        ok_env(
            &env(),
            &["restore", s(&repo), &format!("c{i}"), "--target", s(&dst)],
        );
        assert_same_tree(&src.join("idx"), &dst.join("idx"));
    }
}

#[test]
fn a_node_serves_an_encrypted_repository_with_the_password_it_was_given() {
    use common::node::{start, start_with, Dirs};
    let dirs = Dirs::new();
    let repo = dirs.backups().join("sealed");
    ok_env(&env(), &["repo", "init", s(&repo), "--encryption"]);
    write(&dirs.data().join("orders/part-0"), &noise(400_000, 3));
    let register = serde_json::json!({"type": "fs", "settings": {"location": repo}}).to_string();

    let locked = start(&dirs, &[]);
    let refused = locked.send("PUT", "/_snapshot/sealed", &register);
    assert_ne!(refused.status, 200);
    assert!(refused.text().contains("encrypted"), "{}", refused.text());
    drop(locked);

    let node = start_with(&dirs, &[], &[("SNAPKEEP_PASSWORD", PASSWORD)]);
    assert_eq!(node.send("PUT", "/_snapshot/sealed", &register).status, 200);
    let taken = node.send("PUT", "/_snapshot/sealed/s1?wait_for_completion=true", "{}");
    assert_eq!(taken.status, 200, "{}", taken.text());
    assert_eq!(node.get("/_snapshot/sealed/_all").json()["total"], 1);
    let dst = dirs.backups().join("restored");
    ok_env(&env(), &["restore", s(&repo), "s1", "--target", s(&dst)]);
    assert_same_tree(&dirs.data().join("orders"), &dst.join("orders"));
}

#[test]
fn snapshots_copy_between_plain_and_encrypted_repositories() {
    let t = tempfile::tempdir().unwrap();
    let (sealed, src) = repo_with_snapshots(t.path());
    let plain = t.path().join("plain");
    let other = t.path().join("other");
    let chunker = ["--copy-chunker-params-from", s(&sealed)];
    ok_env(
        &env(),
        &[&["repo", "init", s(&plain)][..], &chunker].concat(),
    );
    let other_env = env_with("another password");
    // Encrypted to plain, plain to another encrypted repository (its own
    // keys), and back into the first: each restores what was taken.
    ok_env(&env(), &["snapshot", "copy", s(&sealed), s(&plain), "*"]);
    let again: Value = serde_json::from_str(&ok_env(
        &env(),
        &["snapshot", "copy", s(&sealed), s(&plain), "*", "--json"],
    ))
    .unwrap();
    assert!(again.to_string().contains("skipped"), "{again}");
    ok_env(
        &other_env,
        &[
            "repo",
            "init",
            s(&other),
            "--encryption",
            "--copy-chunker-params-from",
            s(&plain),
        ],
    );
    ok_env(
        &other_env,
        &["snapshot", "copy", s(&plain), s(&other), "second"],
    );
    for (repo, env) in [(&plain, env()), (&other, other_env.clone())] {
        ok_env(&env, &["repo", "check", s(repo), "--read-data"]);
        let dst = t.path().join(format!(
            "from-{}",
            repo.file_name().unwrap().to_str().unwrap()
        ));
        ok_env(&env, &["restore", s(repo), "second", "--target", s(&dst)]);
        assert_same_tree(&src.join("idx"), &dst.join("idx"));
    }
    let plain_text = digests(&plain)
        .into_keys()
        .any(|p| contains(&fs::read(plain.join(p)).unwrap(), b"the quarterly numbers"));
    assert!(
        plain_text,
        "the plain copy holds the data in the clear (the test's control)"
    );
    for p in digests(&other).into_keys() {
        assert!(!contains(
            &fs::read(other.join(&p)).unwrap(),
            b"the quarterly numbers"
        ));
    }

    // Between two encrypted repositories with different passwords: the
    // source's comes from --from-password-* or SNAPKEEP_FROM_PASSWORD*.
    let third = t.path().join("third");
    let init = ["repo", "init", s(&third), "--encryption"];
    ok_env(&env(), &[&init[..], &chunker].concat());
    let copy = ["snapshot", "copy", s(&other), s(&third), "second"];
    let err = fails_env(&env(), &copy);
    assert!(
        err.contains("wrong password") && err.contains("other"),
        "{err}"
    );
    let wrong_file = t.path().join("wrong-password");
    fs::write(&wrong_file, "not it\n").unwrap();
    let out = run_env(
        &env(),
        &[&copy[..], &["--from-password-file", s(&wrong_file)]].concat(),
    );
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let both = [&copy[..], &["--from-password-file", s(&wrong_file)]].concat();
    let mut conflicting = env();
    conflicting.push(("SNAPKEEP_FROM_PASSWORD".into(), "another password".into()));
    let err = fails_env(&conflicting, &both);
    assert!(err.contains("give one password source"), "{err}");
    let mut from_env = env();
    from_env.push(("SNAPKEEP_FROM_PASSWORD".into(), "another password".into()));
    ok_env(&from_env, &copy);
    let dst = t.path().join("from-third");
    ok_env(
        &env(),
        &["restore", s(&third), "second", "--target", s(&dst)],
    );
    assert_same_tree(&src.join("idx"), &dst.join("idx"));
    ok_env(&env(), &["repo", "check", s(&third), "--read-data"]);
}
