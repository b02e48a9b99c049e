//! Page-group chunking through the real binary (issue #21): a new
//! repository cuts a PostgreSQL relation file at 64 KiB page groups, so a
//! page rewritten in place costs one group in the next snapshot, where
//! content-defined chunking costs at least its minimum chunk; and the
//! snapshot restores byte for byte.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use snapkeep::core::seeded::noise;

const PAGE: usize = 8192;
const PAGES: usize = 512;

/// A 4 MiB file of pages that check out as PostgreSQL heap pages.
fn relation() -> Vec<u8> {
    let mut file = noise(PAGES * PAGE, 21);
    for page in file.chunks_mut(PAGE) {
        // pd_lower 40, pd_upper 7936, pd_special 8192, 8 KiB layout 4.
        page[12..20].copy_from_slice(&[40, 0, 0, 31, 0, 32, 4, 32]);
    }
    file
}

/// The new plain bytes a second snapshot stores after one page of the
/// relation is rewritten in place, in a repository made with `init_args`.
fn incremental(root: &Path, init_args: &[&str]) -> u64 {
    let (src, repo) = (root.join("src"), root.join("repo"));
    let file = src.join("pg").join("16384");
    let mut data = relation();
    write(&file, &data);
    let mut args = vec!["repo", "init", s(&repo), "-q"];
    args.extend(init_args);
    ok(&args);
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "s1",
        "--source",
        s(&src),
        "-q",
    ]);
    data[200 * PAGE + 100..200 * PAGE + 300].fill(0xab);
    fs::write(&file, &data).unwrap();
    let out = json(&["snapshot", "create", s(&repo), "s2", "--source", s(&src)]);
    let stats = &out["snapshot"]["stats"];
    stats["new_bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("{out}"))
}

#[test]
fn a_page_rewritten_in_place_costs_one_page_group() {
    let (t, _, _, dst) = scene();
    let auto = incremental(&t.path().join("auto"), &[]);
    let cdc = incremental(&t.path().join("cdc"), &["--chunking", "cdc"]);
    eprintln!("one 8 KiB page rewritten: auto stored {auto} new bytes, cdc {cdc}");
    assert!(
        (65_536..65_536 + 8_192).contains(&auto),
        "auto: one 64 KiB group and the changed trees, got {auto}"
    );
    assert!(
        cdc >= 256 * 1024,
        "cdc cuts at least its minimum chunk: {cdc}"
    );

    let repo = t.path().join("auto/repo");
    ok(&["restore", s(&repo), "s2", "--target", s(&dst), "-q"]);
    assert_same_tree(&t.path().join("auto/src"), &dst);
}

#[test]
fn page_chunking_options_are_checked_and_recorded() {
    let (_t, _, repo, _) = scene();
    let err = fails(&["repo", "init", s(&repo), "--chunking", "pages:3KiB"]);
    assert!(err.contains("4KiB, 8KiB, 16KiB, 32KiB"), "{err}");
    let err = fails(&["repo", "init", s(&repo), "--chunking", "fixed"]);
    assert!(err.contains("unknown chunking mode [fixed]"), "{err}");
    let out = json(&[
        "repo",
        "init",
        s(&repo),
        "--chunking",
        "pages:16KiB",
        "--page-group",
        "128KiB",
    ]);
    assert_eq!(
        out["config"]["chunking"],
        serde_json::json!({"mode": "pages", "page_size": 16384})
    );
    assert_eq!(out["config"]["page_group"], 131072);
}
