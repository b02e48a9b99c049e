//! The `snapkeep` command line: parses arguments, calls the native shell,
//! prints results. Errors end the process with one line on stderr and a
//! non-zero exit status.

pub mod args;
pub mod demo;
pub mod render;

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;
use serde_json::json;

use crate::core::chunker::ChunkerParams;
use crate::core::format::codec::Compression;
use crate::core::format::config::RepoConfig;
use crate::core::plan::diff::ChangeKind;
use crate::core::policy::listing::{list, ListParams};
use crate::core::policy::selection::{Rename, Selection};
use crate::native::backup::{create_snapshot, now_millis, SnapshotOptions};
use crate::native::check::{check, ReadData};
use crate::native::delete::delete_snapshots;
use crate::native::error::{Error, Result};
use crate::native::inspect::{diff, stats};
use crate::native::location::Location;
use crate::native::repo::Repo;
use crate::native::restore::{restore, RestoreOptions};
use args::*;
use render::{bytes, iso_time, manifest_json, manifest_text, print_json};

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// A message as one line: control characters (a newline in a file or
/// index name, say) are shown escaped.
pub fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.trim_end().chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Help and version go out as clap prints them; a usage mistake is one line
/// on stderr, like every other error, with a pointer to `--help`.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    // The first paragraph says what is wrong (a list of missing arguments
    // continues on indented lines); tips and usage follow a blank line.
    let rendered = e.render().to_string();
    let first: Vec<&str> = rendered
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let what = first.join(" ");
    eprintln!(
        "error: {} (see --help)",
        one_line(what.trim_start_matches("error: "))
    );
    ExitCode::from(2)
}

/// How to reach repositories: `--storage-option`s and `--token`.
struct Reach {
    options: Vec<(String, String)>,
    token: Option<String>,
}

impl Reach {
    fn location(&self, repo: &str) -> Result<Location> {
        Ok(Location::parse_with(repo, &self.options)?.with_token(self.token.clone()))
    }
}

fn open(repo: &str, reach: &Reach) -> Result<Repo> {
    Repo::open(&reach.location(repo)?)
}

fn run(cli: Cli) -> Result<ExitCode> {
    let quiet = cli.quiet;
    let so = Reach {
        options: cli.storage_options.clone(),
        token: cli.token.clone(),
    };
    let say = |s: String| {
        if !quiet {
            println!("{s}");
        }
    };
    match cli.command {
        Command::Repo(RepoCommand::Init(a)) => {
            let chunker = ChunkerParams {
                min: a.chunk_min,
                avg: a.chunk_avg,
                max: a.chunk_max,
                normalization: a.chunk_normalization,
            };
            chunker
                .validate()
                .map_err(|e| Error::Usage(e.to_string()))?;
            let mut config = RepoConfig::new(uuid::Uuid::new_v4().to_string(), now_millis());
            config.chunker = chunker;
            config.compression = match a.compression {
                CompressionArg::Zstd => Compression::Zstd,
                CompressionArg::None => Compression::None,
            };
            let repo = Repo::init(&so.location(&a.repo)?, config)?;
            if a.json {
                print_json(&json!({"acknowledged": true, "config": repo.config}));
            } else {
                say(format!(
                    "initialised repository {} ({})",
                    repo.store.location(),
                    repo.config.id
                ));
            }
        }
        Command::Repo(RepoCommand::Stats(a)) => {
            let repo = open(&a.repo, &so)?;
            let s = stats(&repo)?;
            if a.json {
                let mut v = serde_json::to_value(&s).unwrap();
                v["requests"] = json!(repo.requests.stats());
                print_json(&v);
            } else {
                say(format!(
                    "repository {}\n  generation     {}\n  snapshots      {}\n  logical bytes  {}\n  stored bytes   {}\n  dedup ratio    {:.2}x\n  packs          {} ({})\n  blobs          {}\n  index files    {}",
                    s.location, s.generation, s.snapshots, bytes(s.logical_bytes), bytes(s.stored_bytes),
                    s.dedup_ratio, s.packs, bytes(s.pack_bytes), s.blobs, s.index_files
                ));
            }
        }
        Command::Repo(RepoCommand::Check(a)) => {
            let read_data = match (a.read_data, a.read_data_subset) {
                (true, _) => ReadData::All,
                (false, Some(f)) => ReadData::Subset(f),
                (false, None) => ReadData::None,
            };
            let report = check(&open(&a.repo, &so)?, read_data, !a.json && !quiet)?;
            if a.json {
                print_json(&serde_json::to_value(&report).unwrap());
            } else {
                say(format!(
                    "checked generation {}: {} snapshots, {} trees, {} blobs in {} packs{}",
                    report.generation,
                    report.snapshots,
                    report.trees_checked,
                    report.blobs,
                    report.packs,
                    if read_data != ReadData::None {
                        format!(
                            ", read {} in {} packs",
                            bytes(report.bytes_read),
                            report.packs_read
                        )
                    } else {
                        String::new()
                    }
                ));
                if report.unindexed_packs > 0 {
                    say(format!("  note: {} pack(s) are not referenced by the index (left by interrupted work)", report.unindexed_packs));
                }
                for p in &report.problems {
                    eprintln!("problem: {}", one_line(p));
                }
                for d in &report.damaged {
                    eprintln!(
                        "damaged: snapshot [{}] index [{}] {}: blob {} {}",
                        d.snapshot,
                        d.index,
                        if d.path.is_empty() { "(root)" } else { &d.path },
                        &d.blob[..8],
                        d.problem
                    );
                }
            }
            if !report.is_ok() {
                return Err(Error::CheckFailed(
                    report.problems.len() + report.damaged.len(),
                ));
            }
            if !a.json {
                say("no problems found".into());
            }
        }
        Command::Repo(RepoCommand::Verify(a)) => {
            let repo = open(&a.repo, &so)?;
            let took = crate::native::maintenance::verify(&repo.store)?;
            if a.json {
                print_json(&json!({"verified": true, "millis": took.as_millis() as u64}));
            } else {
                say(format!(
                    "{}: write, read, list and delete work ({} ms)",
                    repo.store.location(),
                    took.as_millis()
                ));
            }
        }
        Command::Repo(RepoCommand::Cleanup(a)) => {
            let repo = open(&a.repo, &so)?;
            let r = crate::native::maintenance::cleanup(&repo, a.grace, a.dry_run)?;
            if a.json {
                print_json(&serde_json::to_value(&r).unwrap());
            } else {
                let verb = if a.dry_run { "would delete" } else { "deleted" };
                say(format!(
                    "{verb} {} unreferenced object(s), {}; kept {} younger than the grace period",
                    r.objects,
                    bytes(r.bytes),
                    r.kept_young
                ));
            }
        }
        Command::Repo(RepoCommand::Settings(a)) => {
            let repo = Repo::open_unguarded(so.location(&a.repo)?.open(false)?)?;
            let mut settings = repo.settings.clone();
            let limit = |v: u64| (v > 0).then_some(v);
            let changing = a.readonly.is_some()
                || a.max_snapshot_bytes_per_sec.is_some()
                || a.max_restore_bytes_per_sec.is_some();
            if let Some(r) = a.readonly {
                settings.readonly = r;
            }
            if let Some(v) = a.max_snapshot_bytes_per_sec {
                settings.max_snapshot_bytes_per_sec = limit(v);
            }
            if let Some(v) = a.max_restore_bytes_per_sec {
                settings.max_restore_bytes_per_sec = limit(v);
            }
            if changing {
                repo.commit(&crate::core::format::root::RootChange::Settings(
                    settings.clone(),
                ))?;
            }
            if a.json {
                print_json(&json!({"settings": settings}));
            } else {
                let rate = |v: Option<u64>| {
                    v.map_or("unlimited".to_string(), |b| format!("{}/s", bytes(b)))
                };
                say(format!(
                    "readonly                     {}\nmax_snapshot_bytes_per_sec   {}\nmax_restore_bytes_per_sec    {}",
                    settings.readonly,
                    rate(settings.max_snapshot_bytes_per_sec),
                    rate(settings.max_restore_bytes_per_sec)
                ));
            }
        }
        Command::Repo(RepoCommand::Analyze(a)) => {
            let repo = open(&a.repo, &so)?;
            if repo.settings.readonly {
                // Every probe writes; say why they would all fail.
                return Err(crate::storage::StorageError::ReadOnly {
                    location: repo.store.location(),
                }
                .into());
            }
            let probes = crate::native::maintenance::analyze(&repo.store);
            let failed = probes.iter().filter(|p| !p.ok).count();
            if a.json {
                print_json(
                    &json!({"location": repo.store.location(), "probes": probes, "failed": failed}),
                );
            } else {
                for p in &probes {
                    say(format!(
                        "{:<22} {:<6} {:>6} ms  {}",
                        p.name,
                        if p.ok { "ok" } else { "FAILED" },
                        p.millis,
                        p.detail
                    ));
                }
            }
            if failed > 0 {
                return Err(Error::Usage(format!("{failed} storage semantics probe(s) failed: this storage is not safe for snapkeep")));
            }
        }
        Command::Snapshot(SnapshotCommand::Create(a)) => {
            let repo = open(&a.repo, &so)?;
            let up = a
                .max_snapshot_bytes_per_sec
                .or(repo.settings.max_snapshot_bytes_per_sec)
                .filter(|v| *v > 0);
            let repo = repo.with_limits(up, None);
            let opts = SnapshotOptions {
                name: a.name,
                source: a.source,
                selection: Selection::parse(&a.indices)?,
                extra_indices: a.extra,
                include_global_state: !a.no_global_state,
                partial: a.partial,
                metadata: a.metadata.into_iter().collect::<BTreeMap<_, _>>(),
                progress: !a.json && !quiet,
            };
            let out = create_snapshot(&repo, &opts)?;
            for path in out.skipped.iter().filter(|_| !quiet) {
                eprintln!(
                    "note: {} was left out: it is a snapkeep repository",
                    path.display()
                );
            }
            if a.json {
                let mut snap = manifest_json(&out.manifest);
                if !out.skipped.is_empty() {
                    snap["skipped"] = json!(out.skipped);
                }
                snap["storage"] = json!({
                    "packs_written": out.packs_written,
                    "bytes_uploaded": out.bytes_uploaded,
                    "requests": repo.requests.stats(),
                });
                print_json(&json!({"snapshot": snap}));
            } else {
                say(manifest_text(&out.manifest));
            }
        }
        Command::Snapshot(SnapshotCommand::List(a)) => {
            let q = ListParams {
                sort: Some(&a.sort),
                order: Some(&a.order),
                size: a.size.as_deref(),
                after: a.after.as_deref(),
            }
            .parse()
            .map_err(|e| Error::Usage(e.to_string()))?;
            let root = open(&a.repo, &so)?.root()?;
            let page = list(&root.snapshots, &q).map_err(|e| Error::Usage(e.to_string()))?;
            if a.json {
                print_json(&crate::repo::shapes::page_json(&page));
            } else {
                println!(
                    "{:<28} {:<8} {:<24} {:>10} {:>7} {:>11} {:>11}",
                    "snapshot", "state", "start_time", "duration", "indices", "size", "new"
                );
                for s in &page.snapshots {
                    println!(
                        "{:<28} {:<8} {:<24} {:>8}ms {:>7} {:>11} {:>11}",
                        s.snapshot,
                        s.state.as_str(),
                        iso_time(s.start_time_in_millis),
                        s.duration_in_millis(),
                        s.indices.len(),
                        bytes(s.size_in_bytes),
                        bytes(s.new_bytes)
                    );
                }
                if let Some(n) = &page.next {
                    println!("({} more; next page: --after '{n}')", page.remaining);
                }
            }
        }
        Command::Snapshot(SnapshotCommand::Get(a)) => {
            let repo = open(&a.repo, &so)?;
            let root = repo.root()?;
            let s = root
                .snapshot(&a.name)
                .ok_or_else(|| Error::SnapshotMissing(a.name.clone()))?;
            let m = repo.manifest(s)?;
            if a.json {
                print_json(&json!({"snapshots": [manifest_json(&m)], "total": 1, "remaining": 0}));
            } else {
                print!("{}", manifest_text(&m));
            }
        }
        Command::Snapshot(SnapshotCommand::Diff(a)) => {
            let d = diff(&open(&a.repo, &so)?, &a.from, &a.to)?;
            if a.json {
                print_json(&serde_json::to_value(&d).unwrap());
            } else {
                for c in &d.changes {
                    let mark = match c.change {
                        ChangeKind::Added => "+",
                        ChangeKind::Removed => "-",
                        ChangeKind::Modified => "M",
                        ChangeKind::Metadata => "U",
                    };
                    let size = match (c.old_size, c.new_size) {
                        (Some(o), Some(n)) if o != n => format!("  {} -> {}", bytes(o), bytes(n)),
                        (_, Some(n)) | (Some(n), None) => format!("  {}", bytes(n)),
                        _ => String::new(),
                    };
                    println!("{mark} {}{size}", c.path);
                }
                say(format!(
                    "{} added, {} removed, {} modified, {} metadata-only",
                    d.added, d.removed, d.modified, d.metadata
                ));
            }
        }
        Command::Snapshot(SnapshotCommand::Delete(a)) => {
            let out = delete_snapshots(&open(&a.repo, &so)?, &a.names)?;
            if a.json {
                let mut v = serde_json::to_value(&out).unwrap();
                v["acknowledged"] = json!(true);
                print_json(&v);
            } else {
                say(format!(
                    "deleted {}; freed {} ({} packs deleted, {} repacked)",
                    out.deleted.join(", "),
                    bytes(out.bytes_freed),
                    out.packs_deleted,
                    out.packs_repacked,
                ));
                if out.deferred_to_cleanup {
                    say("snapshots are running: unreferenced packs are left for `snapkeep repo cleanup`".into());
                }
            }
        }
        Command::Restore(a) => {
            let repo = open(&a.repo, &so)?;
            let down = a
                .max_restore_bytes_per_sec
                .or(repo.settings.max_restore_bytes_per_sec)
                .filter(|v| *v > 0);
            let repo = repo.with_limits(None, down);
            let rename = match (&a.rename_pattern, &a.rename_replacement) {
                (Some(p), Some(r)) => Some(Rename::new(p, r)?),
                _ => None,
            };
            let opts = RestoreOptions {
                snapshot: a.snapshot,
                target: a.target,
                selection: Selection::parse(&a.indices)?,
                rename,
                include_global_state: a.include_global_state,
                overwrite: a.overwrite,
                progress: if a.json {
                    crate::native::progress::ProgressMode::Json
                } else if quiet {
                    crate::native::progress::ProgressMode::Quiet
                } else {
                    crate::native::progress::ProgressMode::Bar
                },
                concurrency: a.concurrency,
            };
            if a.dry_run || a.plan_out.is_some() {
                let plan = crate::native::restore::plan(&repo, &opts)?.plan;
                if let Some(path) = &a.plan_out {
                    let body = serde_json::to_vec_pretty(&plan).expect("plans serialize");
                    std::fs::write(path, body).map_err(|e| Error::io(path, e))?;
                }
                if a.dry_run {
                    let s = &plan.summary;
                    if a.json {
                        print_json(&crate::repo::shapes::plan_summary_json(
                            &opts.snapshot,
                            &plan,
                        ));
                    } else {
                        say(format!(
                            "restore of [{}] would write {} files ({}), {} folders and {} symlinks, fetching {} in {} range request(s) ({} blobs)",
                            opts.snapshot, s.files, bytes(s.bytes), s.dirs, s.symlinks, bytes(s.bytes_to_fetch), s.requests, s.blobs
                        ));
                        for c in &plan.conflicts {
                            say(format!("  conflict: {}", serde_json::to_string(c).unwrap()));
                        }
                    }
                    if !plan.conflicts.is_empty() {
                        return Err(Error::Usage(format!(
                            "{} conflict(s): the restore would be refused",
                            plan.conflicts.len()
                        )));
                    }
                    return Ok(ExitCode::SUCCESS);
                }
            }
            let out = restore(&repo, &opts)?;
            if a.json {
                print_json(&json!({"snapshot": {
                    "snapshot": out.snapshot,
                    "indices": out.indices.iter().map(|(_, t)| t).collect::<Vec<_>>(),
                    "renamed": out.indices.iter().map(|(f, t)| json!({"from": f, "to": t})).collect::<Vec<_>>(),
                    "global_state": out.global_state,
                    "files": out.files, "dirs": out.dirs, "symlinks": out.symlinks, "size_in_bytes": out.bytes,
                    "plan": out.plan, "requests": repo.requests.stats(),
                }}));
            } else {
                let names: Vec<String> = out
                    .indices
                    .iter()
                    .map(|(f, t)| {
                        if f == t {
                            f.clone()
                        } else {
                            format!("{f} as {t}")
                        }
                    })
                    .collect();
                say(format!(
                    "restored {} from [{}]: {} files, {} dirs, {} symlinks, {}{}",
                    names.join(", "),
                    out.snapshot,
                    out.files,
                    out.dirs,
                    out.symlinks,
                    bytes(out.bytes),
                    if out.global_state {
                        " (with global state)"
                    } else {
                        ""
                    }
                ));
            }
        }
        Command::Demo(a) => demo::run(a.dir)?,
    }
    Ok(ExitCode::SUCCESS)
}
