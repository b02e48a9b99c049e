//! A local repository on a full disk can still free space: `snapshot
//! delete` and `repo cleanup` use the reserve made at init (without it,
//! the delete cannot even write its in-flight marker). The disk is a
//! real, small tmpfs mounted for the test (the suite runs as root) and
//! unmounted when it ends.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root");
        Mount(dir.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn delete_and_cleanup_free_space_on_a_full_disk() {
    let t = tempfile::tempdir().unwrap();
    let disk = Mount::tmpfs(&t.path().join("disk"), "40m");
    let repo = disk.0.join("repo");
    let env = vec![(
        "SNAPKEEP_RESERVE_BYTES".to_string(),
        (4u64 << 20).to_string(),
    )];
    ok_env(&env, &["repo", "init", s(&repo)]);
    assert!(repo.join("reserve").exists(), "init makes the reserve");

    // Fill the disk with snapshots of fresh random data until one fails.
    let src = t.path().join("src");
    let mut made = Vec::new();
    for n in 1..=10 {
        std::fs::remove_dir_all(&src).ok();
        write(&src.join(format!("idx/f{n}")), &noise(7 << 20, 100 + n));
        let name = format!("s{n}");
        let out = run_env(
            &env,
            &["snapshot", "create", s(&repo), &name, "--source", s(&src)],
        );
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("No space left") || err.contains("space"),
                "{err}"
            );
            break;
        }
        made.push(name);
    }
    assert!(
        made.len() >= 2 && made.len() < 10,
        "the disk filled: {made:?}"
    );
    // Other data takes the last free bytes.
    let filler = disk.0.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        while f.write_all(&[0u8; 64 << 10]).is_ok() {}
    }

    // Deleting needs a marker, a root and an index file: the reserve makes
    // room for them, and the freed packs make room for the reserve again.
    ok_env(&env, &["snapshot", "delete", s(&repo), &made[0]]);
    ok_env(&env, &["repo", "cleanup", s(&repo), "--grace", "0s"]);
    assert!(repo.join("reserve").exists(), "the reserve is back");
    ok_env(&env, &["repo", "check", s(&repo), "--read-data"]);
    std::fs::remove_file(&filler).unwrap();
    ok_env(
        &env,
        &["snapshot", "create", s(&repo), "after", "--source", s(&src)],
    );
    let dst = t.path().join("dst");
    ok_env(&env, &["restore", s(&repo), "after", "--target", s(&dst)]);
    assert_same_tree(&src.join("idx"), &dst.join("idx"));
}
