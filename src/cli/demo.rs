//! `snapkeep demo`: the whole cycle on built-in sample data, explained as it runs.

use std::fs;
use std::path::{Path, PathBuf};

use crate::core::format::config::RepoConfig;
use crate::core::policy::selection::{Rename, Selection};
use crate::native::backup::{create_snapshot, SnapshotOptions};
use crate::native::check::{check, ReadData};
use crate::native::clock::now_millis;
use crate::native::error::{Error, Result};
use crate::native::inspect::{diff, stats};
use crate::native::location::Location;
use crate::native::repo::Repo;
use crate::native::restore::{restore, RestoreOptions};
use crate::native::sample;

use super::render::bytes;

fn fresh_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "snapkeep-demo-{}-{}",
        std::process::id(),
        now_millis()
    ))
}

/// Every file under `a` has an identical twin under `b` and vice versa.
fn same_tree(a: &Path, b: &Path) -> Result<usize> {
    let mut count = 0;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let (da, db) = (a.join(&rel), b.join(&rel));
        let mut na: Vec<_> = fs::read_dir(&da)
            .map_err(|e| Error::io(&da, e))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        let mut nb: Vec<_> = fs::read_dir(&db)
            .map_err(|e| Error::io(&db, e))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        na.sort();
        nb.sort();
        if na != nb {
            return Err(Error::NotIdentical(format!(
                "{} and {} list different entries",
                da.display(),
                db.display()
            )));
        }
        for n in na {
            let r = rel.join(&n);
            if a.join(&r).is_dir() {
                stack.push(r);
            } else {
                let (x, y) = (a.join(&r), b.join(&r));
                if fs::read(&x).map_err(|e| Error::io(&x, e))?
                    != fs::read(&y).map_err(|e| Error::io(&y, e))?
                {
                    return Err(Error::NotIdentical(format!(
                        "{} differs from {}",
                        y.display(),
                        x.display()
                    )));
                }
                count += 1;
            }
        }
    }
    Ok(count)
}

pub fn run(dir: Option<PathBuf>) -> Result<()> {
    let dir = dir.unwrap_or_else(fresh_dir);
    let (data, repo_dir, target) = (dir.join("data"), dir.join("repo"), dir.join("restore"));
    for p in [&data, &repo_dir, &target] {
        if p.exists() {
            return Err(Error::Usage(format!(
                "{} already exists: give --dir a new or empty folder",
                p.display()
            )));
        }
    }
    println!("snapkeep demo in {}\n", dir.display());

    sample::generate(&data, 42)?;
    println!("1. generated sample data in {}: indices logs, metrics, users + global state (cluster_state.json, _meta/)", data.display());
    let repo = Repo::init(
        &Location::Local(repo_dir.clone()),
        RepoConfig::new(uuid::Uuid::new_v4().to_string(), now_millis()),
    )?;
    println!("2. initialised repository {}", repo.store.location());

    let snap = |name: &str| -> Result<()> {
        let out = create_snapshot(
            &repo,
            &SnapshotOptions {
                name: name.into(),
                source: data.clone(),
                selection: Selection::all(),
                include_global_state: true,
                ..Default::default()
            },
        )?;
        let t = out.manifest.totals();
        println!(
            "   snapshot [{name}] {}: {} files ({} read, {} unchanged and skipped), {} logical, {} new data, {} stored in {} pack(s)",
            out.manifest.state.as_str(), t.files, t.files_read, t.files - t.files_read,
            bytes(t.size_in_bytes), bytes(t.new_bytes), bytes(out.bytes_uploaded), out.packs_written
        );
        Ok(())
    };
    println!("3. first snapshot");
    snap("snap-1")?;
    sample::mutate(&data, 42)?;
    println!("4. changed the data (appended to a log, rewrote 4 KiB of a binary file, added and removed a document), second snapshot");
    snap("snap-2")?;

    let d = diff(&repo, "snap-1", "snap-2")?;
    println!(
        "5. diff snap-1 -> snap-2: {} added, {} removed, {} modified",
        d.added, d.removed, d.modified
    );
    for c in &d.changes {
        println!("     {:?} {}", c.change, c.path);
    }
    let s = stats(&repo)?;
    println!(
        "6. repository: {} snapshots holding {} of data in {} stored: dedup ratio {:.2}x",
        s.snapshots,
        bytes(s.logical_bytes),
        bytes(s.stored_bytes),
        s.dedup_ratio
    );

    let out = restore(
        &repo,
        &RestoreOptions {
            snapshot: "snap-2".into(),
            target: target.clone(),
            selection: Selection::parse("logs")?,
            rename: Some(Rename::new("^logs$", "restored-logs")?),
            ..Default::default()
        },
    )?;
    let verified = same_tree(&data.join("logs"), &target.join("restored-logs"))?;
    println!(
        "7. restored index logs as restored-logs into {} ({} files, {}); verified {verified} files byte for byte",
        target.display(), out.files, bytes(out.bytes)
    );
    let report = check(&repo, ReadData::All, false)?;
    if !report.is_ok() {
        return Err(Error::CheckFailed(report.problem_count()));
    }
    println!(
        "8. repo check --read-data: {} blobs in {} packs re-hashed, no problems",
        report.blobs, report.packs_read
    );
    println!("\nTry it yourself:\n  snapkeep snapshot list {0}\n  snapkeep snapshot diff {0} snap-1 snap-2\n  snapkeep restore {0} snap-1 --target /tmp/somewhere --indices users", repo_dir.display());
    Ok(())
}
