//! Applying checkpoints over a follower folder (`native::ccr::apply`):
//! readers that open the folder always see one whole checkpoint while new
//! ones are applied; only what changed is written; a local write into the
//! follower folder is found and named.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use snapkeep::native::ccr::apply::{Follow, Prepared};
use snapkeep::native::job::Abort;
use snapkeep::native::location::Location;
use snapkeep::native::repo::Repo;

const FILES: usize = 12;

/// Version `v` of the leader index: every file says which version it is.
fn write_version(leader: &Path, v: u64) {
    for i in 0..FILES {
        let mut data = format!("version {v:08}\n").into_bytes();
        // Two files change size between versions, the rest only content;
        // one in three keeps a long shared tail.
        data.extend(std::iter::repeat_n(
            b'x',
            1000 * i + (v as usize % 2) * 7 * (i % 2),
        ));
        write(&leader.join(format!("logs/f{i:02}")), &data);
    }
}

/// The versions a reader sees through one handle on the folder.
fn versions_seen(folder: &Path) -> Option<BTreeSet<String>> {
    let dir = rustix::fs::open(
        folder,
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let mut seen = BTreeSet::new();
    for i in 0..FILES {
        let name = format!("f{i:02}");
        let fd = rustix::fs::openat(
            dir.as_fd(),
            name.as_str(),
            rustix::fs::OFlags::RDONLY,
            rustix::fs::Mode::empty(),
        )
        .ok()?;
        let mut head = [0u8; 16];
        fs::File::from(fd).read_exact(&mut head).ok()?;
        seen.insert(String::from_utf8_lossy(&head).into_owned());
    }
    Some(seen)
}

/// A leader folder, a checkpoint repository and a follower data folder.
struct Scene {
    _t: tempfile::TempDir,
    leader: std::path::PathBuf,
    repo_dir: std::path::PathBuf,
    data: std::path::PathBuf,
    repo: Repo,
}

impl Scene {
    fn new() -> Scene {
        let t = tempfile::tempdir().unwrap();
        let (leader, repo_dir, data) = (
            t.path().join("leader"),
            t.path().join("repo"),
            t.path().join("data"),
        );
        fs::create_dir_all(&data).unwrap();
        init(&repo_dir);
        let repo = Repo::open(&Location::Local(repo_dir.clone())).unwrap();
        Scene {
            _t: t,
            leader,
            repo_dir,
            data,
            repo,
        }
    }

    /// The leader's `logs` followed as `follower_index` in the data folder.
    fn follow<'a>(&'a self, follower_index: &'a str) -> Follow<'a> {
        Follow {
            repo: &self.repo,
            leader_index: "logs",
            data: &self.data,
            follower_index,
        }
    }

    /// A checkpoint `name` of the leader's `logs`.
    fn checkpoint(&self, name: &str) {
        ok(&[
            "snapshot",
            "create",
            s(&self.repo_dir),
            name,
            "--source",
            s(&self.leader),
            "--indices",
            "logs",
            "--no-global-state",
        ]);
    }
}

#[test]
fn readers_see_one_whole_checkpoint_while_checkpoints_are_applied() {
    let Scene {
        _t,
        leader,
        repo_dir,
        data,
        repo,
    } = Scene::new();
    let follow = Follow {
        repo: &repo,
        leader_index: "logs",
        data: &data,
        follower_index: "logs-copy",
    };
    let live = data.join("logs-copy");

    let stop = Arc::new(AtomicBool::new(false));
    let (whole, retired) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let reader = {
        let (stop, whole, retired, live) =
            (stop.clone(), whole.clone(), retired.clone(), live.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match versions_seen(&live) {
                    Some(seen) => {
                        assert_eq!(seen.len(), 1, "a reader saw a mix of checkpoints: {seen:?}");
                        whole.fetch_add(1, Ordering::Relaxed);
                    }
                    // The folder it opened was retired and removed meanwhile.
                    None => {
                        retired.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    // Old versions a killed process left (another run's name) go at the
    // next apply; another index's (whose name extends this one's) stay.
    let left = data.join(".ccr-old-logs-copy-1234-0");
    let other = data.join(".ccr-old-logs-copy-2-1234-0");
    for d in [&left, &other] {
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/f"), b"old").unwrap();
    }
    for v in 1..=8u64 {
        write_version(&leader, v);
        let name = format!("c{v}");
        ok(&[
            "snapshot",
            "create",
            s(&repo_dir),
            &name,
            "--source",
            s(&leader),
            "--indices",
            "logs",
            "--no-global-state",
        ]);
        let applied = follow.apply(&name, Abort::new()).unwrap();
        assert_eq!(applied.files, FILES as u64);
        let on_disk = versions_seen(&live).unwrap();
        assert_eq!(on_disk, BTreeSet::from([format!("version {v:08}")]));
        assert!(!data.join(".ccr-next-logs-copy").exists());
        assert!(follow.local_changes(&name).unwrap().is_empty());
        if v > 1 {
            // Every file changed its first line; unchanged tails came from
            // the folder, not the repository.
            assert!(applied.bytes_read < applied.bytes / 2, "{applied:?}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert!(whole.load(Ordering::Relaxed) > 0);
    assert!(!left.exists());
    assert!(other.join("sub/f").exists());
    // This run's old versions are removed in the background.
    let olds = || {
        std::fs::read_dir(&data)
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".ccr-old-logs-copy-1")
            })
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while olds() > 0 {
        assert!(std::time::Instant::now() < deadline, "old versions stay");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_local_write_into_the_follower_folder_is_named() {
    let scene = Scene::new();
    let (leader, data) = (&scene.leader, &scene.data);
    let follow = scene.follow("copy");
    write_version(leader, 1);
    scene.checkpoint("c1");
    follow.apply("c1", Abort::new()).unwrap();
    assert!(follow.local_changes("c1").unwrap().is_empty());
    write(
        &data.join("copy/f03"),
        b"written by someone on the follower",
    );
    write(&data.join("copy/new-file"), b"also");
    fs::remove_file(data.join("copy/f05")).unwrap();
    let changed = follow.local_changes("c1").unwrap();
    assert_eq!(
        changed,
        ["f03", "f05", "new-file"].map(String::from),
        "{changed:?}"
    );
}

/// An apply planned over the walk its local-write check made writes the
/// checkpoint as one that walks again would; a local write made between
/// the two is kept (the walk said the file was in place) and the next
/// comparison names it, so it is never silently replaced.
#[test]
fn an_apply_over_the_checks_walk_matches_and_loses_no_local_write() {
    let scene = Scene::new();
    let (leader, data) = (&scene.leader, &scene.data);
    let follow = scene.follow("copy");
    let checkpoint = |name: &str| scene.checkpoint(name);
    write_version(leader, 1);
    checkpoint("c1");
    follow.apply("c1", Abort::new()).unwrap();
    write_version(leader, 2);
    write(&leader.join("logs/added"), b"new on the leader");
    checkpoint("c2");
    let seen = follow.examine("c1").unwrap();
    assert!(seen.changes.is_empty(), "{:?}", seen.changes);
    let walked = seen.walked.expect("an overwriting plan walks");
    assert!(walked.files.contains_key("copy/f00"), "{:?}", walked.paths);
    let applied = follow
        .apply_with(
            "c2",
            Prepared {
                walked: Some(walked),
                ..Prepared::default()
            },
            Abort::new(),
        )
        .unwrap();
    assert_eq!(applied.files_written, FILES as u64 + 1);
    assert_eq!(contents(&data.join("copy")), contents(&leader.join("logs")));

    // A file the leader leaves alone, written locally after the walk.
    write(&leader.join("logs/added"), b"changed on the leader");
    checkpoint("c3");
    let seen = follow.examine("c2").unwrap();
    assert!(seen.changes.is_empty(), "{:?}", seen.changes);
    // The stage linked before the write, as the follower links it beside
    // its check.
    let staged = follow.link_stage().unwrap();
    let f04 = data.join("copy/f04");
    let mut local = fs::read(&f04).unwrap();
    local[0] ^= 1;
    fs::write(&f04, &local).unwrap();
    follow
        .apply_with(
            "c3",
            Prepared {
                walked: seen.walked,
                staged: Some(staged),
                deltas: None,
            },
            Abort::new(),
        )
        .unwrap();
    assert_eq!(
        fs::read(data.join("copy/added")).unwrap(),
        b"changed on the leader"
    );
    assert_eq!(fs::read(&f04).unwrap(), local, "kept, not replaced");
    assert_eq!(follow.local_changes("c3").unwrap(), ["f04"]);
}

/// Bytes that do not compress, from `seed`.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The apply takes the chunks of the files the local-write check found
/// in place from the held checkpoint instead of reading them, and a file
/// changed behind its size, mtime and mode (invisible to that check) gives
/// no wrong bytes: its chunk fails the copy's id check and is fetched.
#[test]
fn chunks_known_from_the_held_checkpoint_are_checked_when_copied() {
    let scene = Scene::new();
    let (leader, data) = (&scene.leader, &scene.data);
    let follow = scene.follow("copy");
    let big = noise(7, 300_000);
    write(&leader.join("logs/big"), &big);
    scene.checkpoint("c1");
    follow.apply("c1", Abort::new()).unwrap();

    // The leader copies `big` and replaces it; the follower's `big` is
    // changed behind its facts.
    write(&leader.join("logs/copy-of-big"), &big);
    write(&leader.join("logs/big"), b"small now");
    scene.checkpoint("c2");
    let local = data.join("copy/big");
    let mtime = fs::metadata(&local).unwrap().modified().unwrap();
    let mut changed = big.clone();
    changed[1000] ^= 1;
    fs::write(&local, &changed).unwrap();
    fs::File::options()
        .write(true)
        .open(&local)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let seen = follow.examine("c1").unwrap();
    assert!(seen.changes.is_empty(), "{:?}", seen.changes);

    let applied = follow
        .apply_with(
            "c2",
            Prepared {
                walked: seen.walked,
                ..Prepared::default()
            },
            Abort::new(),
        )
        .unwrap();
    assert_eq!(contents(&data.join("copy")), contents(&leader.join("logs")));
    // Planned as a local copy of the held chunk (a plan that read the
    // changed file would have fetched the whole chunk).
    assert!(applied.bytes_read < 4096, "{applied:?}");
}

/// The folder's files and their bytes.
fn contents(folder: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(folder)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_follower_keeps_in_step_with_a_leader_through_a_shared_repository() {
    use snapkeep::core::ccr::follower::{decide, FollowParams, Step, Tracker, View};
    use snapkeep::core::ccr::lineage::{relate, History, Relation};
    use snapkeep::native::ccr::checkpoint::Leader;

    let t = tempfile::tempdir().unwrap();
    let (leader_data, repo_dir, follower_data) = (
        t.path().join("a"),
        t.path().join("ckpt"),
        t.path().join("b"),
    );
    fs::create_dir_all(&follower_data).unwrap();
    init(&repo_dir);
    let repo = Repo::open(&Location::Local(repo_dir.clone())).unwrap();
    let lineage = "0123456789abcdef";
    let history = History::start(lineage).unwrap();
    let leader = Leader {
        repo: &repo,
        data: &leader_data,
        index: "logs",
    };
    let follow = Follow {
        repo: &repo,
        leader_index: "logs",
        data: &follower_data,
        follower_index: "logs",
    };
    let mut tracker = Tracker::default();

    for v in 1..=4u64 {
        write_version(&leader_data, v);
        let taken = leader
            .checkpoint(lineage, Abort::new())
            .unwrap()
            .expect("the index changed");
        assert_eq!(taken.point.seq, v);
        // Nothing changed since: no new checkpoint, and nothing committed
        // by the snapshot that found so.
        assert_eq!(leader.checkpoint(lineage, Abort::new()).unwrap(), None);
        assert_eq!(leader.checkpoints().unwrap().len(), v as usize);

        let head = leader.head(lineage).unwrap().unwrap();
        tracker.read_ok(Some((head.point.clone(), head.time_ms)), 0);
        let held = tracker.held.as_ref().map(|(p, _)| p.clone());
        let view = View {
            history: &history,
            head: Some(&head.point),
        };
        let step = decide(held.as_ref(), view, &[], FollowParams::default(), 0);
        assert_eq!(
            step,
            Step::Apply {
                point: head.point.clone(),
                resync: false
            }
        );
        let applied = follow.apply(&head.snapshot, Abort::new()).unwrap();
        tracker.applied(
            (head.point.clone(), head.time_ms),
            applied.bytes_read,
            applied.bytes_written,
            applied.files_written,
        );
        assert_eq!(
            contents(&follower_data.join("logs")),
            contents(&leader_data.join("logs"))
        );
        assert_eq!(tracker.lag(&history), (0, 0));
    }

    // A local write on the follower pauses it with the paths named.
    let held = tracker.held.clone().unwrap().0;
    write(&follower_data.join("logs/f01"), b"local");
    let changed = follow
        .local_changes(&leader.head(lineage).unwrap().unwrap().snapshot)
        .unwrap();
    let view = View {
        history: &history,
        head: Some(&held),
    };
    let Step::Pause(reason) = decide(Some(&held), view, &changed, FollowParams::default(), 0)
    else {
        panic!("a local write must pause the follower");
    };
    assert!(reason.describe().contains("f01"), "{}", reason.describe());

    // Failover: the follower is promoted at what it holds; the old leader
    // writes once more and is then diverged from the promoted history.
    let promoted = history.fork(&held, "fedcba9876543210").unwrap();
    write_version(&leader_data, 5);
    let extra = leader.checkpoint(lineage, Abort::new()).unwrap().unwrap();
    assert_eq!(
        relate(&promoted, None, Some(&extra.point)),
        Relation::Diverged {
            common: Some(held),
            local_after: 1
        }
    );
}
