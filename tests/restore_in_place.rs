//! `restore --overwrite` over a database file a service changed after the
//! restore: the file is updated in place, so only its changed page groups
//! are written; `--replace-files` writes it anew instead; a file with a
//! second name is never updated in place (the other name would change).

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use common::*;

const PAGE: usize = 8192;
const PAGES: usize = 1024;
const GROUP: u64 = 65_536;

/// An 8 MiB file of pages that check out as PostgreSQL heap pages, with a
/// run of all-zero pages (600..640), as new relation pages are.
fn relation() -> Vec<u8> {
    let mut file = pg_relation(PAGES, 33);
    file[600 * PAGE..640 * PAGE].fill(0);
    file
}

/// A snapshot `s1` of one relation file restored into `dst`, then changed
/// as a service would: three pages in three page groups rewritten (one of
/// them among the zero pages), and two pages appended. Returns the
/// restored file.
fn restored_then_changed(src: &Path, repo: &Path, dst: &Path) -> std::path::PathBuf {
    write(&src.join("pg/16384"), &relation());
    write(&src.join("pg/PG_VERSION"), b"15\n");
    ok(&["repo", "init", s(repo), "-q"]);
    let create = ["snapshot", "create", s(repo), "s1", "--source", s(src)];
    ok(&[&create[..], &["-q"]].concat());
    ok(&["restore", s(repo), "s1", "--target", s(dst), "-q"]);
    let restored = dst.join("pg/16384");
    let f = OpenOptions::new().write(true).open(&restored).unwrap();
    f.write_all_at(&[0xab; 300], (10 * PAGE + 100) as u64)
        .unwrap();
    f.write_all_at(&[0xcd; PAGE], (400 * PAGE) as u64).unwrap();
    f.write_all_at(&[7; PAGE], (610 * PAGE) as u64).unwrap();
    f.set_len(((PAGES + 2) * PAGE) as u64).unwrap();
    restored
}

/// `restore s1 --target DST --overwrite` of the repository at `repo`.
fn over<'a>(repo: &'a Path, dst: &'a Path) -> [&'a str; 6] {
    ["restore", s(repo), "s1", "--target", s(dst), "--overwrite"]
}

fn restore_over(repo: &Path, dst: &Path, extra: &[&str]) -> serde_json::Value {
    let out = json(&[&over(repo, dst)[..], extra].concat());
    out["snapshot"]["plan"].clone()
}

#[test]
fn a_changed_relation_is_updated_in_place_writing_only_its_changed_groups() {
    let (_t, src, repo, dst) = scene();
    let restored = restored_then_changed(&src, &repo, &dst);
    let inode = fs::metadata(&restored).unwrap().ino();
    let said = ok(&[&over(&repo, &dst)[..], &["--dry-run"]].concat());
    assert!(
        said.contains("(1 file(s) complete, 1 updated in place)"),
        "{said}"
    );

    let plan = restore_over(&repo, &dst, &[]);
    assert_eq!(plan["files_updated_in_place"], 1, "{plan}");
    // The existing file was cut into the same 64 KiB page groups as the
    // snapshot's: all but the three changed groups are in place.
    let size = (PAGES * PAGE) as u64;
    let in_place = plan["bytes_in_place"].as_u64().unwrap();
    let others = 3; // PG_VERSION is unchanged: its 3 bytes are in place too
    assert_eq!(in_place, size - 3 * GROUP + others, "{plan}");
    // The rewritten zero group is copied from a zero group beside it (a
    // place the update leaves alone); the two others are fetched.
    assert_eq!(plan["bytes_copied_locally"], GROUP, "{plan}");
    assert_eq!(plan["blobs"], 2, "{plan}");

    assert_same_tree(&src, &dst);
    assert_eq!(
        fs::metadata(&restored).unwrap().ino(),
        inode,
        "the file was updated, not replaced"
    );
    let names: Vec<String> = fs::read_dir(&dst)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["pg".to_string()], "no staging folder is left");

    // A second run finds the file complete.
    let plan = restore_over(&repo, &dst, &[]);
    assert_eq!(plan["files_unchanged"], 2, "{plan}");
}

#[test]
fn replace_files_writes_a_changed_file_anew() {
    let (_t, src, repo, dst) = scene();
    let restored = restored_then_changed(&src, &repo, &dst);
    let inode = fs::metadata(&restored).unwrap().ino();

    let plan = restore_over(&repo, &dst, &["--replace-files"]);
    assert!(plan.get("files_updated_in_place").is_none(), "{plan}");
    // Its unchanged groups (and the zero group, from its neighbour) are
    // copied from the old file into the new one.
    let size = (PAGES * PAGE) as u64;
    assert_eq!(plan["bytes_copied_locally"], size - 2 * GROUP, "{plan}");
    assert_same_tree(&src, &dst);
    assert_ne!(fs::metadata(&restored).unwrap().ino(), inode);

    let err = fails(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--replace-files",
    ]);
    assert!(err.contains("--overwrite"), "{err}");
}

#[test]
fn a_file_with_another_name_is_never_updated_in_place() {
    let (t, src, repo, dst) = scene();
    let restored = restored_then_changed(&src, &repo, &dst);
    let other = t.path().join("other-name");
    fs::hard_link(&restored, &other).unwrap();
    let changed = fs::read(&other).unwrap();

    let plan = restore_over(&repo, &dst, &[]);
    assert!(plan.get("files_updated_in_place").is_none(), "{plan}");
    assert_same_tree(&src, &dst);
    assert_eq!(
        fs::read(&other).unwrap(),
        changed,
        "the other name keeps what it held"
    );
}

/// A restore killed while it updates a file in place leaves that file
/// with some groups restored and the rest as the service left them; run
/// again, it reads the file again and finishes it.
#[test]
fn a_killed_update_in_place_is_finished_by_a_rerun() {
    let (_t, src, repo, dst) = scene();
    let restored = restored_then_changed(&src, &repo, &dst);
    // Sixteen groups far enough apart to be fetched one range each.
    let f = OpenOptions::new().write(true).open(&restored).unwrap();
    for g in 0..16u64 {
        f.write_all_at(&[0xee; 4096], g * 8 * GROUP + 512).unwrap();
    }
    drop(f);
    let mut first = std::process::Command::new(bin())
        .args(over(&repo, &dst))
        .args(["--max-restore-bytes-per-sec", "256KiB", "-q"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    first.kill().unwrap();
    assert!(!first.wait().unwrap().success(), "killed before it ended");

    let plan = restore_over(&repo, &dst, &[]);
    assert_eq!(plan["files_updated_in_place"], 1, "{plan}");
    assert!(plan["blobs"].as_u64().unwrap() > 0, "{plan}");
    assert_same_tree(&src, &dst);
}
