//! The inspector's wasm bindings, run in wasm (Node.js, through
//! wasm-bindgen-test-runner) against the golden format-v1 repository (and
//! the golden encrypted one, unlocked in wasm) served by an in-memory
//! JavaScript backend:
//! `cargo test --target wasm32-unknown-unknown --no-default-features --features inspector --test inspector_wasm`.
#![cfg(all(target_arch = "wasm32", feature = "inspector"))]

use serde_json::Value;
use sha2::{Digest, Sha256};
use snapkeep::inspector::Inspector;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

/// Every object of tests/data/golden-v1/repo.
const GOLDEN: &[(&str, &[u8])] = &[
    ("config", include_bytes!("data/golden-v1/repo/config")),
    ("index-1", include_bytes!("data/golden-v1/repo/index-1")),
    ("index-2", include_bytes!("data/golden-v1/repo/index-2")),
    ("index.latest", include_bytes!("data/golden-v1/repo/index.latest")),
    ("index/3cb80b0b183a20547661584edaf2a86ae0bef700b0c59e334982d757d28d60ad", include_bytes!("data/golden-v1/repo/index/3cb80b0b183a20547661584edaf2a86ae0bef700b0c59e334982d757d28d60ad")),
    ("index/a02cbde246a05bd435cef84d591531012733d3db0298567d78a1e97a3dd3612a", include_bytes!("data/golden-v1/repo/index/a02cbde246a05bd435cef84d591531012733d3db0298567d78a1e97a3dd3612a")),
    ("packs/1f/1f793c2cf73e1519f893c791bcf2ee99698428412b4d082712344116080bc0fe", include_bytes!("data/golden-v1/repo/packs/1f/1f793c2cf73e1519f893c791bcf2ee99698428412b4d082712344116080bc0fe")),
    ("packs/5f/5f340b71001817ba8da88c1994cdf7608ed56ae19567b160488995c8a60b2ba9", include_bytes!("data/golden-v1/repo/packs/5f/5f340b71001817ba8da88c1994cdf7608ed56ae19567b160488995c8a60b2ba9")),
    ("packs/67/670b4e75767f861b5e05991350231c60064c31535fbb57e6c6bbd2cf7ab8243e", include_bytes!("data/golden-v1/repo/packs/67/670b4e75767f861b5e05991350231c60064c31535fbb57e6c6bbd2cf7ab8243e")),
    ("packs/82/82d6eb42a027cb247890b54c3f6e414cfda0bc700fa1765c227eaff0687eb796", include_bytes!("data/golden-v1/repo/packs/82/82d6eb42a027cb247890b54c3f6e414cfda0bc700fa1765c227eaff0687eb796")),
    ("snapshots/1c06fa7b-4515-4418-a4f1-2976ed95bcd2.json", include_bytes!("data/golden-v1/repo/snapshots/1c06fa7b-4515-4418-a4f1-2976ed95bcd2.json")),
    ("snapshots/bf49e021-6d1c-4c6d-9538-c3c654f7351d.json", include_bytes!("data/golden-v1/repo/snapshots/bf49e021-6d1c-4c6d-9538-c3c654f7351d.json")),
];

/// Every object of tests/data/golden-encrypted/repo (format v2, made by
/// tests/golden.rs with the password [`GOLDEN_PASSWORD`]).
#[rustfmt::skip]
const GOLDEN_ENCRYPTED: &[(&str, &[u8])] = &[
    ("config", include_bytes!("data/golden-encrypted/repo/config")),
    ("index-1", include_bytes!("data/golden-encrypted/repo/index-1")),
    ("index-2", include_bytes!("data/golden-encrypted/repo/index-2")),
    ("index.latest", include_bytes!("data/golden-encrypted/repo/index.latest")),
    ("index/9e2f0ccef32f334d3f6fd423bf47c5843031bdc7d7114c416352cfd5f2e8d4dd", include_bytes!("data/golden-encrypted/repo/index/9e2f0ccef32f334d3f6fd423bf47c5843031bdc7d7114c416352cfd5f2e8d4dd")),
    ("index/d8b221b46c0c26f4037a08ab5b78b0ec10af68f6d8f8d3764b2ef31ff5bc53fa", include_bytes!("data/golden-encrypted/repo/index/d8b221b46c0c26f4037a08ab5b78b0ec10af68f6d8f8d3764b2ef31ff5bc53fa")),
    ("keys/b1f22f2826aa1f8e.json", include_bytes!("data/golden-encrypted/repo/keys/b1f22f2826aa1f8e.json")),
    ("packs/07/074bef8bebb998e1e583275a70f344fa1d5632fa357ef7468bd7218624e36f98", include_bytes!("data/golden-encrypted/repo/packs/07/074bef8bebb998e1e583275a70f344fa1d5632fa357ef7468bd7218624e36f98")),
    ("packs/32/3218e6e0d5b45a0620d76efe893e23fea90e9c5f187d576f5d058af3b5f8d21d", include_bytes!("data/golden-encrypted/repo/packs/32/3218e6e0d5b45a0620d76efe893e23fea90e9c5f187d576f5d058af3b5f8d21d")),
    ("packs/34/342931e306d918f40af52df543d72dba94b9df7e22359fa1ccd4d97e27d7a61b", include_bytes!("data/golden-encrypted/repo/packs/34/342931e306d918f40af52df543d72dba94b9df7e22359fa1ccd4d97e27d7a61b")),
    ("packs/c0/c0722d36e6c5c1429add8272bce79cd87ba4141283e87dca8f4e529ef2b1023a", include_bytes!("data/golden-encrypted/repo/packs/c0/c0722d36e6c5c1429add8272bce79cd87ba4141283e87dca8f4e529ef2b1023a")),
    ("snapshots/f6693ae7-4497-4275-80e2-094f47b00fd3.json", include_bytes!("data/golden-encrypted/repo/snapshots/f6693ae7-4497-4275-80e2-094f47b00fd3.json")),
    ("snapshots/fd869ad6-861c-4916-9a50-b87276211989.json", include_bytes!("data/golden-encrypted/repo/snapshots/fd869ad6-861c-4916-9a50-b87276211989.json")),
];
const GOLDEN_PASSWORD: &str = "golden password";

/// Every object of tests/data/golden-encrypted-bound/repo (blobs in
/// envelopes bound to their ids, made by tests/golden.rs).
#[rustfmt::skip]
const GOLDEN_BOUND: &[(&str, &[u8])] = &[
    ("config", include_bytes!("data/golden-encrypted-bound/repo/config")),
    ("index-1", include_bytes!("data/golden-encrypted-bound/repo/index-1")),
    ("index-2", include_bytes!("data/golden-encrypted-bound/repo/index-2")),
    ("index.latest", include_bytes!("data/golden-encrypted-bound/repo/index.latest")),
    ("index/a16aadc4abff832212f4549a1e4e17fcd996a53e24e053c4000cf3713988ddda", include_bytes!("data/golden-encrypted-bound/repo/index/a16aadc4abff832212f4549a1e4e17fcd996a53e24e053c4000cf3713988ddda")),
    ("index/ce1b7ac9dfec78cb875cc67e14cbd6414c8fb8a4c9093499de0805ca2b397a0a", include_bytes!("data/golden-encrypted-bound/repo/index/ce1b7ac9dfec78cb875cc67e14cbd6414c8fb8a4c9093499de0805ca2b397a0a")),
    ("keys/7d3fb4d4cec1a5e5.json", include_bytes!("data/golden-encrypted-bound/repo/keys/7d3fb4d4cec1a5e5.json")),
    ("packs/3c/3cfb0817a4e97ad726f03e47c8ad7a86b1bbc41ace62ae93f41079c7aad71607", include_bytes!("data/golden-encrypted-bound/repo/packs/3c/3cfb0817a4e97ad726f03e47c8ad7a86b1bbc41ace62ae93f41079c7aad71607")),
    ("packs/4a/4a459327b9abf5acc30c374244f4a180eb46b5f016ca74aaf811ffe5dee019b2", include_bytes!("data/golden-encrypted-bound/repo/packs/4a/4a459327b9abf5acc30c374244f4a180eb46b5f016ca74aaf811ffe5dee019b2")),
    ("packs/79/798cefcd71eafc157404839fa0fe7c730fc293beaad794bbd0985d2f5dd42a8e", include_bytes!("data/golden-encrypted-bound/repo/packs/79/798cefcd71eafc157404839fa0fe7c730fc293beaad794bbd0985d2f5dd42a8e")),
    ("packs/db/db9f313a3700b906870c06e68e631f9ce35355358738096c916ce26019e9b8cc", include_bytes!("data/golden-encrypted-bound/repo/packs/db/db9f313a3700b906870c06e68e631f9ce35355358738096c916ce26019e9b8cc")),
    ("snapshots/37e41808-1262-461e-9000-2df942ac7610.json", include_bytes!("data/golden-encrypted-bound/repo/snapshots/37e41808-1262-461e-9000-2df942ac7610.json")),
    ("snapshots/b77f4215-c4ca-458f-962c-13a361cda4e9.json", include_bytes!("data/golden-encrypted-bound/repo/snapshots/b77f4215-c4ca-458f-962c-13a361cda4e9.json")),
];

#[wasm_bindgen(inline_js = r#"
export function memoryBackend(entries, failing) {
  const objects = new Map(entries);
  const fail = (key, code) => { const e = new Error(`${code}: ${key}`); e.code = code; return e; };
  return {
    location: "memory://golden",
    async get(key, start, end) {
      if (failing) throw fail(key, failing);
      const v = objects.get(key);
      if (!v) throw fail(key, "NotFound");
      return start === undefined ? v : v.slice(start, Math.min(end, v.length));
    },
    async list(prefix) {
      if (failing) throw fail(prefix, failing);
      return [...objects.keys()].filter(k => k.startsWith(prefix)).map(k => ({ key: k, size: objects.get(k).length }));
    },
    async head(key) {
      if (failing) throw fail(key, failing);
      const v = objects.get(key);
      if (!v) throw fail(key, "NotFound");
      return { key, size: v.length };
    },
  };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = memoryBackend)]
    fn memory_backend(entries: js_sys::Array, failing: JsValue) -> JsValue;
}

fn backend(except: &[&str], damage: Option<&str>, failing: Option<&str>) -> JsValue {
    backend_of(GOLDEN, except, damage, failing)
}

fn backend_of(
    objects: &[(&str, &[u8])],
    except: &[&str],
    damage: Option<&str>,
    failing: Option<&str>,
) -> JsValue {
    let entries = js_sys::Array::new();
    for (key, bytes) in objects.iter().filter(|(k, _)| !except.contains(k)) {
        let mut data = bytes.to_vec();
        if Some(*key) == damage {
            let mid = data.len() / 2;
            data[mid] ^= 0x55;
        }
        let pair = js_sys::Array::new();
        pair.push(&JsValue::from_str(key));
        pair.push(&js_sys::Uint8Array::from(data.as_slice()));
        entries.push(&pair);
    }
    memory_backend(
        entries,
        failing.map_or(JsValue::UNDEFINED, JsValue::from_str),
    )
}

fn json(v: JsValue) -> Value {
    serde_wasm_bindgen::from_value(v).expect("JSON-shaped values")
}

fn expected() -> Value {
    serde_json::from_str(include_str!("data/golden-v1/expected.json")).unwrap()
}

async fn open() -> Inspector {
    Inspector::open(backend(&[], None, None), None)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
}

fn message(e: JsError) -> String {
    open_message(JsValue::from(e))
}

/// The message of an error `Inspector::open` rejects with.
fn open_message(e: JsValue) -> String {
    js_sys::Error::from(e).message().into()
}

#[wasm_bindgen_test]
async fn lists_pages_and_filters_snapshots() {
    let insp = open().await;
    let page = json(insp.snapshots("name", "asc", None, None, None).unwrap());
    assert_eq!(page["total"], 2);
    assert_eq!(page["snapshots"][0]["snapshot"], "v1-first");
    assert_eq!(page["snapshots"][1]["snapshot"], "v1-second");
    let first = json(insp.snapshots("name", "desc", Some(1), None, None).unwrap());
    assert_eq!(first["snapshots"][0]["snapshot"], "v1-second");
    assert_eq!(first["remaining"], 1);
    let next = first["next"].as_str().unwrap().to_string();
    let second = json(
        insp.snapshots("name", "desc", Some(1), Some(next), None)
            .unwrap(),
    );
    assert_eq!(second["snapshots"][0]["snapshot"], "v1-first");
    let filtered = json(
        insp.snapshots("name", "asc", None, None, Some("sec".into()))
            .unwrap(),
    );
    assert_eq!(filtered["total"], 1);
    assert!(insp.snapshots("bogus", "asc", None, None, None).is_err());
    let chart = json(insp.chart().unwrap());
    assert_eq!(chart.as_array().unwrap().len(), 2);
    let stored: Vec<u64> = chart
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["stored_bytes"].as_u64().unwrap())
        .collect();
    assert!(stored[0] <= stored[1], "cumulative: {stored:?}");
    let stats = json(insp.stats().await.unwrap());
    assert_eq!(stats["snapshots"], 2);
}

#[wasm_bindgen_test]
async fn refuses_an_unknown_order_as_the_cli_and_the_worker_do() {
    let insp = open().await;
    for order in ["up", "DESC", ""] {
        let err = insp
            .snapshots("name", order, None, None, None)
            .expect_err("an unknown order is refused, not read as ascending");
        assert_eq!(
            message(err),
            format!("unknown order [{order}]: use asc or desc")
        );
    }
}

#[wasm_bindgen_test]
async fn browses_trees_and_reads_files_exactly() {
    let insp = open().await;
    let want = expected();
    for snap in ["v1-first", "v1-second"] {
        let files = want[snap].as_object().unwrap();
        let detail = json(insp.snapshot(snap).await.unwrap());
        assert_eq!(detail["snapshot"], snap);
        for (path, e) in files {
            if e["type"] != "file" || !path.contains('/') {
                continue;
            }
            let (index, rel) = path.split_once('/').unwrap();
            let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
            let level = json(insp.tree(snap, index, dir).await.unwrap());
            let entry = level["entries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["name"] == name)
                .unwrap_or_else(|| panic!("{snap}: {path} not listed"));
            assert_eq!(entry["size"], e["size"], "{path}");
            let bytes = insp.read_file(snap, index, rel).await.unwrap().to_vec();
            assert_eq!(
                hex::encode(Sha256::digest(&bytes)),
                e["sha256"].as_str().unwrap(),
                "{snap}: {path}"
            );
        }
    }
    let err = message(
        insp.read_file("v1-first", "logs", "nope")
            .await
            .err()
            .unwrap(),
    );
    assert!(err.contains("does not exist"), "{err}");
}

#[wasm_bindgen_test]
async fn diffs_and_plans_like_the_cli() {
    let insp = open().await;
    let d = json(insp.diff("v1-first", "v1-second").await.unwrap());
    let total = d["added"].as_u64().unwrap()
        + d["removed"].as_u64().unwrap()
        + d["modified"].as_u64().unwrap()
        + d["metadata"].as_u64().unwrap();
    assert_eq!(total as usize, d["changes"].as_array().unwrap().len());
    assert!(total > 0);
    let plan = json(
        insp.restore_plan(
            "v1-first",
            "logs",
            Some("(.+)".into()),
            Some("restored-$1".into()),
            false,
        )
        .await
        .unwrap(),
    );
    assert_eq!(plan["indices"][0]["to"], "restored-logs");
    let want = expected();
    let logs_bytes: u64 = want["v1-first"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(p, e)| p.starts_with("logs/") && e["type"] == "file")
        .map(|(_, e)| e["size"].as_u64().unwrap())
        .sum();
    assert_eq!(plan["summary"]["bytes"], logs_bytes);
    assert!(plan["summary"]["bytes_to_fetch"].as_u64().unwrap() > 0);
    let err = message(
        insp.restore_plan(
            "v1-first",
            "*",
            Some("(.+)".into()),
            Some("same".into()),
            false,
        )
        .await
        .err()
        .unwrap(),
    );
    assert!(err.contains("same"), "{err}");
}

#[wasm_bindgen_test]
async fn clear_errors_for_bad_repositories() {
    let not_repo = Inspector::open(backend(&["config"], None, None), None)
        .await
        .err()
        .unwrap();
    assert!(open_message(not_repo).contains("no snapkeep repository at"));
    let denied = Inspector::open(backend(&[], None, Some("Unauthorized")), None)
        .await
        .err()
        .unwrap();
    assert!(open_message(denied).contains("permission denied"));
    let down = Inspector::open(backend(&[], None, Some("Unavailable")), None)
        .await
        .err()
        .unwrap();
    assert!(open_message(down).contains("unavailable"));
    // A damaged pack is reported when its data is read, never returned.
    let pack = GOLDEN
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| k.starts_with("packs/"))
        .max_by_key(|k| GOLDEN.iter().find(|(x, _)| x == k).unwrap().1.len())
        .unwrap();
    let insp = Inspector::open(backend(&[], Some(pack), None), None)
        .await
        .unwrap();
    let mut damaged = 0;
    for path in ["app.log"] {
        if let Err(e) = insp.read_file("v1-first", "logs", path).await {
            let m = message(e);
            assert!(m.contains("damaged"), "{m}");
            damaged += 1;
        }
    }
    let series = insp.read_file("v1-first", "metrics", "series.bin").await;
    if let Err(e) = series {
        assert!(message(e).contains("damaged"));
        damaged += 1;
    }
    assert!(damaged >= 1, "the damaged pack holds file data");
}

/// A new encrypted repository (a key slot for `password` and the sealed
/// config, no snapshot yet), made with the core as `repo init --encryption`
/// makes one, with cheap argon2 parameters.
fn encrypted_backend(password: &str) -> JsValue {
    use snapkeep::core::crypto::keys::MasterKey;
    use snapkeep::core::crypto::slot::{Argon2Params, KeySlot};
    use snapkeep::core::format::config::RepoConfig;
    use snapkeep::core::format::sealed_config::{EncryptedConfig, ENCRYPTED_VERSION};
    let master = MasterKey::from_bytes([7; 32]);
    let cheap = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    let slot = KeySlot::wrap(&master, password.as_bytes(), cheap, [1; 16], [2; 24]).unwrap();
    let mut config = RepoConfig::new("enc".into(), 1);
    config.version = ENCRYPTED_VERSION;
    let sealed = EncryptedConfig::seal(&config, &master.data_key(), &[3; 24]);
    let entries = js_sys::Array::new();
    for (key, bytes) in [
        ("config", sealed.encode()),
        ("keys/0123456789abcdef.json", slot.to_json()),
    ] {
        let pair = js_sys::Array::new();
        pair.push(&JsValue::from_str(key));
        pair.push(&js_sys::Uint8Array::from(bytes.as_slice()));
        entries.push(&pair);
    }
    memory_backend(entries, JsValue::UNDEFINED)
}

fn code(e: &JsValue) -> Option<String> {
    js_sys::Reflect::get(e, &"code".into()).ok()?.as_string()
}

#[wasm_bindgen_test]
async fn an_encrypted_repository_asks_for_its_password_and_opens_with_it() {
    let pw = "in the page only";
    let e = Inspector::open(encrypted_backend(pw), None)
        .await
        .err()
        .unwrap();
    assert_eq!(code(&e).as_deref(), Some("Encrypted"));
    assert!(open_message(e).contains("is encrypted"));
    let e = Inspector::open(encrypted_backend(pw), Some("not it".into()))
        .await
        .err()
        .unwrap();
    assert_eq!(code(&e).as_deref(), Some("WrongPassword"));
    assert!(open_message(e).contains("wrong password"));
    let insp = Inspector::open(encrypted_backend(pw), Some(pw.into()))
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(json(insp.config().unwrap())["config"]["id"], "enc");
    // Other failures carry no such code: the page shows them as errors.
    let e = Inspector::open(backend(&["config"], None, None), None)
        .await
        .err()
        .unwrap();
    assert_eq!(code(&e), None);
}

/// The golden encrypted repository opens in the page with its password
/// (and only with it), and every file reads back with its recorded digest.
#[wasm_bindgen_test]
async fn the_golden_encrypted_repository_opens_with_its_password() {
    let golden = || backend_of(GOLDEN_ENCRYPTED, &[], None, None);
    let e = Inspector::open(golden(), None).await.err().unwrap();
    assert_eq!(code(&e).as_deref(), Some("Encrypted"));
    let e = Inspector::open(golden(), Some("not it".into()))
        .await
        .err()
        .unwrap();
    assert_eq!(code(&e).as_deref(), Some("WrongPassword"));
    let insp = Inspector::open(golden(), Some(GOLDEN_PASSWORD.into()))
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let want = include_str!("data/golden-encrypted/expected.json");
    read_every_file(&insp, want).await;
}

/// Blobs bound to their ids open in wasm too, unhashed.
#[wasm_bindgen_test]
async fn the_golden_bound_repository_opens_and_reads_in_wasm() {
    let golden = backend_of(GOLDEN_BOUND, &[], None, None);
    let insp = Inspector::open(golden, Some(GOLDEN_PASSWORD.into()))
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    read_every_file(
        &insp,
        include_str!("data/golden-encrypted-bound/expected.json"),
    )
    .await;
}

/// Reads every file `expected` (a golden's expected.json) lists in an
/// index and compares its SHA-256.
async fn read_every_file(insp: &Inspector, expected: &str) {
    let want: Value = serde_json::from_str(expected).unwrap();
    let mut read = 0;
    for (snap, files) in want.as_object().unwrap() {
        for (path, e) in files.as_object().unwrap() {
            if e["type"] != "file" || !path.contains('/') {
                continue;
            }
            let (index, rel) = path.split_once('/').unwrap();
            let bytes = insp.read_file(snap, index, rel).await.unwrap().to_vec();
            assert_eq!(
                hex::encode(Sha256::digest(&bytes)),
                e["sha256"].as_str().unwrap(),
                "{snap}: {path}"
            );
            read += 1;
        }
    }
    assert!(read >= 8, "{read} files read");
}
