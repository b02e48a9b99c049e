//! Restore planning: dry runs, plan files, fetch-once, sparse output.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use common::*;

#[test]
fn a_dry_run_reports_the_plan_and_writes_nothing() {
    let (t, src, repo, dst) = scene();
    let shared = noise(3 << 20, 1);
    write(&src.join("logs/a"), &shared);
    write(&src.join("logs/b"), &shared); // same content: fetched once
    write(&src.join("logs/c"), &noise(100_000, 2));
    write(&src.join("other/x"), b"x");
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);

    let plan_file = t.path().join("plan.json");
    let dry = json(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--indices",
        "logs",
        "--dry-run",
        "--plan-out",
        s(&plan_file),
    ]);
    let sum = &dry["summary"];
    assert_eq!(sum["files"], 3);
    assert_eq!(sum["bytes"], (6 << 20) + 100_000);
    let fetched = sum["bytes_to_fetch"].as_u64().unwrap();
    assert!(
        fetched < (4 << 20),
        "the shared file is fetched once: {fetched}"
    );
    assert!(sum["requests"].as_u64().unwrap() >= 1);
    assert!(!dst.exists(), "a dry run writes nothing");
    let plan: serde_json::Value = serde_json::from_slice(&fs::read(&plan_file).unwrap()).unwrap();
    assert_eq!(plan["files"].as_array().unwrap().len(), 3);
    assert_eq!(plan["summary"], dry["summary"]);

    // The real restore does what the plan said.
    let out = json(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--indices",
        "logs",
    ]);
    assert_eq!(out["snapshot"]["files"], 3);
    assert_same_tree(&src.join("logs"), &dst.join("logs"));

    // Now the target is occupied: the dry run names the conflict and fails.
    let out = run(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--indices",
        "logs",
        "--dry-run",
        "--json",
    ]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["conflicts"][0]["type"], "target_not_empty");
}

#[test]
fn zero_runs_are_restored_as_holes() {
    let (_t, src, repo, dst) = scene();
    let mut data = vec![0u8; 48 << 20];
    data[..4096].copy_from_slice(&noise(4096, 3));
    let n = data.len();
    data[n - 4096..].copy_from_slice(&noise(4096, 4));
    write(&src.join("db/sparse.bin"), &data);
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    ok(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    let restored = dst.join("db/sparse.bin");
    assert!(fs::read(&restored).unwrap() == data);
    let allocated = fs::metadata(&restored).unwrap().blocks() * 512;
    assert!(
        allocated < (24 << 20),
        "{allocated} bytes allocated for a mostly-zero 48 MiB file"
    );
}

/// A file of one chunk is created by its only write; one of zeros is then
/// only sized, a hole, and still reads back as zeros of the right length.
#[test]
fn a_single_chunk_file_of_zeros_is_restored_as_a_hole() {
    let (_t, src, repo, dst) = scene();
    write(&src.join("db/zeros.bin"), &vec![0u8; 300_000]);
    write(&src.join("db/one.bin"), &noise(200_000, 9));
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    ok(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    assert_same_tree(&src.join("db"), &dst.join("db"));
    let zeros = fs::metadata(dst.join("db/zeros.bin")).unwrap();
    assert_eq!(zeros.len(), 300_000);
    assert!(zeros.blocks() * 512 < 300_000, "{} blocks", zeros.blocks());
}

#[test]
fn no_partial_files_are_left_behind() {
    let (_t, src, repo, dst) = scene();
    for i in 0..20 {
        write(
            &src.join(format!("idx/d{}/f{i}", i % 3)),
            &noise(10_000 + i, i as u64),
        );
    }
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    ok(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    assert_same_tree(&src.join("idx"), &dst.join("idx"));
}

/// Bytes of `dir`'s files actually allocated on disk (partial restore files
/// are sparse: only written chunks take space).
fn allocated(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

#[test]
fn a_killed_restore_resumes_and_fetches_only_what_is_missing() {
    let (_t, src, repo, dst) = scene();
    let file_size = 8usize << 20;
    for i in 0..12 {
        write(&src.join(format!("idx/f{i:02}")), &noise(file_size, 50 + i));
    }
    let total = 12 * file_size as u64;
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);

    // Throttled so it is still running when killed part-way; two reads in
    // flight at a time.
    let mut child = std::process::Command::new(bin())
        .args([
            "restore",
            s(&repo),
            "s1",
            "--target",
            s(&dst),
            "--max-restore-bytes-per-sec",
            "24MiB",
            "--concurrency",
            "2",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while allocated(&dst) < total / 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "restore made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "restore finished before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let written = allocated(&dst);
    assert!(written < total, "killed part-way");

    // The same command again continues where it stopped.
    let out = run(&["restore", s(&repo), "s1", "--target", s(&dst), "--json"]);
    assert!(out.status.success());
    let out: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fetched = out["snapshot"]["requests"]["bytes_received"]
        .as_u64()
        .unwrap();
    let in_place = out["snapshot"]["plan"]["bytes_in_place"].as_u64().unwrap();
    assert!(in_place > 0, "nothing was reused: {out}");
    // At most the remainder plus what was in flight at the kill: two reads,
    // each at most one coalesced range (16 MiB).
    let bound = total - written + 2 * (16 << 20);
    eprintln!("total {total}, written before kill {written}, fetched on resume {fetched}, in place {in_place}");
    assert!(
        fetched <= bound && fetched < total * 3 / 4,
        "fetched {fetched} bytes, bound {bound} (written before the kill: {written})"
    );
    assert_same_tree(&src.join("idx"), &dst.join("idx"));
    let staging = fs::read_dir(&dst)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with(".snapkeep-restore-")
        })
        .count();
    assert_eq!(staging, 0, "the staging folder is removed at the end");
}

#[test]
fn a_killed_overwrite_restore_can_be_run_again() {
    let (_t, src, repo, dst) = scene();
    for i in 0..8 {
        write(&src.join(format!("idx/f{i}")), &noise(6 << 20, 80 + i));
    }
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    write(&dst.join("idx/old-file"), &noise(1 << 20, 3));
    let args = [
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--overwrite",
    ];
    let mut child = std::process::Command::new(bin())
        .args(args)
        .args(["--max-restore-bytes-per-sec", "8MiB"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once temporary files hold data.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while allocated(&dst) < (10 << 20) {
        assert!(std::time::Instant::now() < deadline, "no progress");
        assert!(child.try_wait().unwrap().is_none(), "finished too early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = json(&args);
    assert!(
        out["snapshot"]["plan"]["bytes_in_place"].as_u64().unwrap() > 0,
        "the rerun reused nothing: {out}"
    );
    assert_same_tree(&src.join("idx"), &dst.join("idx"));
    let leftovers: Vec<_> = fs::read_dir(dst.join("idx"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("snapkeep"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn overwrite_reuses_what_the_target_holds_and_fetches_at_most_two_percent() {
    let (_t, src, repo, dst) = scene();
    for i in 0..40 {
        write(&src.join(format!("idx/f{i:02}")), &noise(2 << 20, 200 + i));
    }
    write(&src.join("idx/tiny"), &noise(4096, 199));
    let total = 40u64 * (2 << 20) + 4096;
    ok(&[
        "repo",
        "init",
        s(&repo),
        "--chunk-min",
        "64KiB",
        "--chunk-avg",
        "256KiB",
        "--chunk-max",
        "1MiB",
    ]);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    ok(&["restore", s(&repo), "s1", "--target", s(&dst)]);
    write(&dst.join("other/untouched"), b"another index, not restored");

    // The target drifts: in-place edits, an insertion that shifts a file,
    // a stray file, a folder where a file belongs, a changed mode.
    let edit = |name: &str, f: &dyn Fn(&mut Vec<u8>)| {
        let p = dst.join("idx").join(name);
        let mut d = fs::read(&p).unwrap();
        f(&mut d);
        fs::write(&p, d).unwrap();
    };
    edit("f03", &|d| d[1000..1010].copy_from_slice(b"0123456789"));
    edit("f07", &|d| {
        let mid = d.len() / 2;
        d.splice(mid..mid, noise(100, 9));
    });
    write(&dst.join("idx/stray.tmp"), b"not in the snapshot");
    fs::remove_file(dst.join("idx/tiny")).unwrap();
    write(
        &dst.join("idx/tiny/nested"),
        b"a folder where a file belongs",
    );
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dst.join("idx/f01"), fs::Permissions::from_mode(0o600)).unwrap();
    }

    assert!(fails(&["restore", s(&repo), "s1", "--target", s(&dst)]).contains("not empty"));
    let out = json(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--overwrite",
    ]);
    let fetched = out["snapshot"]["requests"]["bytes_received"]
        .as_u64()
        .unwrap();
    let plan = &out["snapshot"]["plan"];
    eprintln!("fetched {fetched} of {total}; plan {plan}");
    // The target holds over 99% of the data: at most 2% is fetched (the
    // edited chunks and the file a folder replaced).
    assert!(fetched <= total / 50, "fetched {fetched} of {total}");
    assert!(plan["bytes_copied_locally"].as_u64().unwrap() > 0);
    assert!(plan["files_unchanged"].as_u64().unwrap() >= 37);
    assert_same_tree(&src.join("idx"), &dst.join("idx"));
    assert_eq!(
        fs::read(dst.join("other/untouched")).unwrap(),
        b"another index, not restored"
    );
}

#[test]
fn json_restores_emit_progress_events_a_program_can_follow() {
    let (_t, src, repo, dst) = scene();
    write(&src.join("idx/a"), &noise(3 << 20, 1));
    write(&src.join("idx/b"), &noise(1 << 20, 2));
    init(&repo);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);
    let out = run(&[
        "restore",
        s(&repo),
        "s1",
        "--target",
        s(&dst),
        "--json",
        "--concurrency",
        "3",
    ]);
    assert!(out.status.success());
    let events: Vec<serde_json::Value> = String::from_utf8(out.stderr)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stderr line is a JSON event"))
        .collect();
    assert!(events.len() >= 2);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "done");
    assert_eq!(last["bytes_done"], 4 << 20);
    assert_eq!(last["bytes_total"], 4 << 20);
    assert_same_tree(&src.join("idx"), &dst.join("idx"));
}

/// Compares two files in blocks without loading them whole.
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::io::Read;
    let (mut x, mut y) = (fs::File::open(a).unwrap(), fs::File::open(b).unwrap());
    let (mut bx, mut by) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = x.read(&mut bx).unwrap();
        let mut m = 0;
        while m < n {
            let k = y.read(&mut by[m..n]).unwrap();
            if k == 0 {
                return false;
            }
            m += k;
        }
        if n == 0 {
            return y.read(&mut by[..1]).unwrap() == 0;
        }
        if bx[..n] != by[..n] {
            return false;
        }
    }
}

#[test]
fn a_one_gib_data_set_restores_byte_for_byte() {
    let (_t, src, repo, dst) = scene();
    let mut files = Vec::new();
    for i in 0..6u64 {
        files.push((format!("big/part{i}"), noise(160 << 20, 300 + i)));
    }
    for i in 0..400u64 {
        files.push((format!("small/d{}/f{i}", i % 20), noise(64 << 10, 1000 + i)));
    }
    let mut sparse = vec![0u8; 40 << 20];
    sparse[..1 << 20].copy_from_slice(&noise(1 << 20, 7));
    files.push(("db/sparse".into(), sparse));
    let total: usize = files.iter().map(|(_, d)| d.len()).sum();
    assert!(total >= 1 << 30, "{total}");
    for (p, d) in &files {
        write(&src.join("data").join(p), d);
    }
    drop(files);
    init(&repo);
    ok(&[
        "snapshot",
        "create",
        s(&repo),
        "big",
        "--source",
        s(&src),
        "-q",
    ]);
    ok(&["restore", s(&repo), "big", "--target", s(&dst), "-q"]);
    let mut stack = vec![std::path::PathBuf::from("data")];
    let mut compared = 0;
    while let Some(rel) = stack.pop() {
        let mut names: Vec<_> = fs::read_dir(src.join(&rel))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let mut got: Vec<_> = fs::read_dir(dst.join(&rel))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        got.sort();
        assert_eq!(names, got, "{}", rel.display());
        for n in names {
            let r = rel.join(n);
            if src.join(&r).is_dir() {
                stack.push(r);
            } else {
                assert!(
                    same_file(&src.join(&r), &dst.join(&r)),
                    "{} differs",
                    r.display()
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 6 + 400 + 1);
}
