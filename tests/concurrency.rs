//! Several processes writing into one repository at once.

mod common;

use std::process::Command;

use common::*;

#[test]
fn concurrent_creates_from_separate_processes_all_land() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    init(&repo);
    let shared = noise(1 << 20, 99);
    let sources: Vec<_> = (0..6)
        .map(|i| {
            let src = t.path().join(format!("src{i}"));
            write(&src.join("idx/own"), &noise(300_000, i));
            write(&src.join("idx/shared"), &shared);
            src
        })
        .collect();
    // A repository that already holds snapshots, so writers also dedup
    // against committed data.
    for (i, src) in sources.iter().take(2).enumerate() {
        ok(&[
            "snapshot",
            "create",
            s(&repo),
            &format!("seq{i}"),
            "--source",
            s(src),
        ]);
    }
    // Six processes at once: every root commit but one per generation loses
    // the create-only race and must rebase.
    let mut procs: Vec<_> = sources
        .iter()
        .enumerate()
        .map(|(i, src)| {
            Command::new(bin())
                .args([
                    "snapshot",
                    "create",
                    s(&repo),
                    &format!("p{i}"),
                    "--source",
                    s(src),
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in procs.iter_mut() {
        assert!(p.wait().unwrap().success());
    }
    let list = json(&["snapshot", "list", s(&repo)]);
    assert_eq!(list["total"], 8);
    ok(&["repo", "check", s(&repo), "--read-data"]);
    for (i, src) in sources.iter().enumerate() {
        let dst = t.path().join(format!("dst{i}"));
        ok(&["restore", s(&repo), &format!("p{i}"), "--target", s(&dst)]);
        assert_same_tree(&src.join("idx"), &dst.join("idx"));
    }
}
