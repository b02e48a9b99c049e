//! Applying a checkpoint with chunk deltas (`native::ccr::delta`): chunks
//! edited in the middle are rebuilt from the ones they replace, and only
//! the edits travel; chunks no delta saves enough on come whole in the
//! same answers; a source that fails or lies changes nothing but the
//! bytes read.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use common::*;
use snapkeep::core::ccr::delta::{encode_batch, Answer, Ask};
use snapkeep::core::format::id::Id;
use snapkeep::native::ccr::apply::{Applied, Follow, Prepared};
use snapkeep::native::ccr::delta::{answer, DeltaSource, Deltas};
use snapkeep::native::job::Abort;
use snapkeep::native::location::Location;
use snapkeep::native::repo::Repo;
use snapkeep::native::restore::{plan, RestoreOptions};

/// Files of about 200 KiB (one chunk each: under the chunker's minimum)
/// and two of 1 MiB, of random data.
const SMALL: u64 = 12;
const EDIT: usize = 64 << 10;

/// The leader's answers, computed from the checkpoint repository by the
/// leader node's own function (asked `whole`, as followers ask); `tamper`
/// may change each answer first.
struct FromRepo<'a> {
    repo: &'a Repo,
    tamper: fn(&mut Answer),
    requests: AtomicU64,
}

impl<'a> FromRepo<'a> {
    /// A leader that answers every delta as it is.
    fn honest(repo: &'a Repo) -> FromRepo<'a> {
        FromRepo {
            repo,
            tamper: |_| {},
            requests: AtomicU64::new(0),
        }
    }
}

impl DeltaSource for FromRepo<'_> {
    fn deltas(&self, asks: &[Ask]) -> Result<Bytes, String> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let (_, index) = self.repo.root_and_index().map_err(|e| e.to_string())?;
        let mut answers = answer(self.repo, &index, asks, true);
        answers.iter_mut().for_each(self.tamper);
        Ok(encode_batch(&answers).into())
    }
}

/// A leader that cannot be reached.
struct Unreachable;

impl DeltaSource for Unreachable {
    fn deltas(&self, _: &[Ask]) -> Result<Bytes, String> {
        Err("connection refused".into())
    }
}

struct Scene {
    _t: tempfile::TempDir,
    leader: PathBuf,
    repo_dir: PathBuf,
    data: PathBuf,
    repo: Repo,
}

impl Scene {
    /// Checkpoint `c1` of the leader index, applied to the follower.
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
        for i in 0..SMALL {
            write(&leader.join(format!("logs/s{i:02}")), &noise(200 << 10, i));
        }
        for i in 0..2u64 {
            write(
                &leader.join(format!("logs/big{i}")),
                &noise(1 << 20, 50 + i),
            );
        }
        let scene = Scene {
            _t: t,
            leader,
            repo_dir,
            data,
            repo,
        };
        scene.checkpoint("c1");
        scene.follow().apply("c1", Abort::new()).unwrap();
        scene
    }

    fn follow(&self) -> Follow<'_> {
        Follow {
            repo: &self.repo,
            leader_index: "logs",
            data: &self.data,
            follower_index: "copy",
        }
    }

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

    /// Overwrites 64 KiB in the middle of half the small files and in the
    /// first chunk of a big one (below the chunker's 256 KiB minimum, so
    /// no chunk boundary moves), with random data; rewrites two small
    /// files whole (s01 and s03: in the new pack, around the edited s02,
    /// so a read that bridged gaps would fetch s02's chunk after all);
    /// adds a file; takes checkpoint `c2`. Returns the bytes edited in
    /// place.
    fn edit(&self) -> u64 {
        for i in [1u64, 3] {
            let path = self.leader.join(format!("logs/s{i:02}"));
            write(&path, &noise(200 << 10, 800 + i));
        }
        let mut edited = 0;
        let files = (0..SMALL)
            .step_by(2)
            .map(|i| (format!("s{i:02}"), 70 << 10))
            .chain([("big1".to_string(), 150 << 10)]);
        for (n, (name, at)) in files.enumerate() {
            let path = self.leader.join("logs").join(name);
            let mut data = fs::read(&path).unwrap();
            data[at..at + EDIT].copy_from_slice(&noise(EDIT, 900 + n as u64));
            write(&path, &data);
            edited += EDIT as u64;
        }
        write(&self.leader.join("logs/added"), &noise(100 << 10, 999));
        self.checkpoint("c2");
        edited
    }

    /// The apply as a follower node makes it: after its local-write check,
    /// whose plan of the held checkpoint and walk the apply takes over
    /// (what the check found is for the node to judge, not the apply).
    fn apply_with(&self, source: &dyn DeltaSource) -> Applied {
        let seen = self.follow().examine("c1").unwrap();
        let deltas = Deltas {
            source,
            held: "c1",
            planned: Some(&seen.planned),
        };
        self.follow()
            .apply_with(
                "c2",
                Prepared {
                    deltas: Some(&deltas),
                    walked: seen.walked,
                    staged: None,
                },
                Abort::new(),
            )
            .unwrap()
    }

    /// The apply with nothing planned before it.
    fn apply_alone(&self, source: &dyn DeltaSource) -> Applied {
        let deltas = Deltas {
            source,
            held: "c1",
            planned: None,
        };
        self.follow()
            .apply_with(
                "c2",
                Prepared {
                    deltas: Some(&deltas),
                    ..Prepared::default()
                },
                Abort::new(),
            )
            .unwrap()
    }

    /// The chunks of each file of checkpoint `snapshot`, by path.
    fn chunks_of(&self, snapshot: &str) -> HashMap<String, Vec<Id>> {
        let empty = tempfile::tempdir().unwrap();
        let opts = RestoreOptions {
            snapshot: snapshot.into(),
            target: empty.path().to_path_buf(),
            ..Default::default()
        };
        let planned = plan(&self.repo, &opts).unwrap();
        planned
            .plan
            .files
            .into_iter()
            .map(|f| (f.path, f.chunks))
            .collect()
    }

    fn assert_converged(&self) {
        assert_same_tree(&self.leader.join("logs"), &self.data.join("copy"));
        assert!(!self.data.join(".ccr-deltas-copy").exists());
        assert!(!self.data.join(".ccr-next-copy").exists());
    }
}

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).unwrap().len()
}

/// Without the local-write check's plan, the apply plans the held
/// checkpoint itself and asks for the same deltas.
#[test]
fn deltas_need_no_plan_made_before() {
    let scene = Scene::new();
    scene.edit();
    let source = FromRepo::honest(&scene.repo);
    let applied = scene.apply_alone(&source);
    scene.assert_converged();
    let used = applied.deltas.expect("deltas were asked for");
    assert_eq!((used.asked, used.chunks, used.whole), (9, 7, 2));
}

#[test]
fn edits_in_the_middle_travel_as_deltas() {
    let scene = Scene::new();
    let edited = scene.edit();
    let source = FromRepo::honest(&scene.repo);
    let applied = scene.apply_with(&source);
    scene.assert_converged();
    let used = applied.deltas.clone().expect("deltas were asked for");
    // Seven edited files: six one-chunk files and one chunk of a big one;
    // the two rewritten files are asked for too, and come whole in the
    // same answer (the added file has no base: it is fetched).
    assert_eq!(
        (used.asked, used.chunks, used.whole),
        (9, 7, 2),
        "{applied:?}"
    );
    assert_eq!(used.failed_requests, 0, "{applied:?}");
    assert_eq!(source.requests.load(Ordering::Relaxed), 1);
    // The added and rewritten files travel whole; the edits travel as
    // about their own size, not as the chunks around them.
    let whole: u64 = ["added", "s01", "s03"]
        .iter()
        .map(|f| file_len(&scene.leader.join("logs").join(f)))
        .sum();
    let bound = whole + edited * 11 / 10 + (16 << 10);
    eprintln!(
        "read {} bytes ({} of delta answers) for {edited} edited bytes and {whole} bytes of whole files",
        applied.bytes_read, used.bytes_received
    );
    assert!(
        applied.bytes_read <= bound,
        "read {} for {edited} edited bytes and {whole} bytes of whole files: {applied:?}",
        applied.bytes_read
    );
    assert!(used.bytes_received >= edited, "{applied:?}");
}

/// What a follower before whole answers asks (no `whole`): rewrites are
/// answered "no delta", edits as deltas.
#[test]
fn without_whole_rewrites_get_no_answer() {
    let scene = Scene::new();
    scene.edit();
    let (c1, c2) = (scene.chunks_of("c1"), scene.chunks_of("c2"));
    let asks: Vec<Ask> = ["logs/s01", "logs/s02"]
        .iter()
        .map(|f| Ask {
            id: c2[*f][0],
            base: c1[*f][0],
        })
        .collect();
    let (_, index) = scene.repo.root_and_index().unwrap();
    let plain = answer(&scene.repo, &index, &asks, false);
    assert!(matches!(plain[0], Answer::None), "a rewrite: {plain:?}");
    assert!(matches!(plain[1], Answer::Delta(_)), "an edit");
    let whole = answer(&scene.repo, &index, &asks, true);
    assert!(matches!(whole[0], Answer::Stored(_)), "a rewrite, whole");
    assert!(matches!(whole[1], Answer::Delta(_)), "an edit, whole");
}

#[test]
fn an_unreachable_leader_fetches_the_chunks_as_usual() {
    let scene = Scene::new();
    scene.edit();
    let applied = scene.apply_with(&Unreachable);
    scene.assert_converged();
    let used = applied.deltas.clone().unwrap();
    assert_eq!((used.chunks, used.bytes_received), (0, 0), "{applied:?}");
    assert!(used.failed_requests > 0, "{applied:?}");
    // Whole chunks: at least the six small files and the added one.
    assert!(applied.bytes_read > 7 * (100 << 10), "{applied:?}");
}

#[test]
fn a_wrong_delta_is_caught_by_the_chunk_id_and_fetched() {
    let scene = Scene::new();
    scene.edit();
    let source = FromRepo {
        repo: &scene.repo,
        // One byte changed (or, with nothing between prefix and suffix,
        // one added): the rebuilt chunk, or the whole one, is not the one
        // asked for.
        tamper: |a| match a {
            Answer::Delta(d) if d.middle.is_empty() => d.middle.push(0),
            Answer::Delta(d) => d.middle[0] ^= 1,
            Answer::Stored(s) => {
                let mut v = s.to_vec();
                v[0] ^= 1;
                *s = v.into();
            }
            Answer::None => {}
        },
        requests: AtomicU64::new(0),
    };
    let applied = scene.apply_with(&source);
    scene.assert_converged();
    let used = applied.deltas.clone().unwrap();
    assert_eq!((used.chunks, used.whole), (0, 0), "{applied:?}");
    assert!(used.bytes_received > 0, "{applied:?}");
}

#[test]
fn a_base_changed_in_the_follower_folder_is_not_used() {
    let scene = Scene::new();
    scene.edit();
    // Every held file differs from its checkpoint in every 64 KiB now: no
    // chunk rebuilt from them can have the right id. (The node pauses a
    // follower for such a write before applying; the apply itself must
    // stay right regardless.)
    for e in fs::read_dir(scene.data.join("copy")).unwrap() {
        let path = e.unwrap().path();
        let mut data = fs::read(&path).unwrap();
        for at in (0..data.len()).step_by(64 << 10) {
            data[at] ^= 0xff;
        }
        write(&path, &data);
    }
    let source = FromRepo::honest(&scene.repo);
    let applied = scene.apply_with(&source);
    scene.assert_converged();
    let used = applied.deltas.clone().unwrap();
    assert!(used.bytes_received > 0, "{applied:?}");
    assert_eq!(used.chunks, 0, "{applied:?}");
}
