//! The core kernels on one core: FastCDC chunking, SHA-256, zstd, and
//! restore planning for a million chunks. `cargo bench --bench kernels`;
//! throughput is printed per benchmark (targets: chunking >= 2 GB/s,
//! SHA-256 >= 1.5 GB/s with SHA instructions).

use std::collections::HashMap;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use snapkeep::core::chunker::ChunkerParams;
use snapkeep::core::format::blob::{BlobEntry, BlobKind};
use snapkeep::core::format::codec::{decode, Codec, Compression};
use snapkeep::core::format::id::Id;
use snapkeep::core::format::index::RepoIndex;
use snapkeep::core::format::tree::{Node, NodeType, Tree};
use snapkeep::core::plan::read::{DEFAULT_MAX_GAP, DEFAULT_MAX_RANGE};
use snapkeep::core::plan::restore::{
    plan_restore, Declared, IndexToRestore, PlanRequest, TargetState,
};
use snapkeep::core::seeded::noise;
use snapkeep::native::backup::compressor::with_encoded;
use snapkeep::native::decompressor::libzstd_decode;

fn text(len: usize) -> Vec<u8> {
    let words = [
        "snapshot ",
        "restore ",
        "index ",
        "shard ",
        "GET ",
        "/api/v1 ",
        "200 ",
        "latency=",
        "12ms\n",
    ];
    let seeds = noise(len, 9);
    let mut out = Vec::with_capacity(len + 16);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(words[seeds[i % seeds.len()] as usize % words.len()].as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

fn kernels(c: &mut Criterion) {
    let data = noise(64 << 20, 1);
    let mut g = c.benchmark_group("kernels");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(data.len() as u64));
    let params = ChunkerParams::default();
    g.bench_function("fastcdc_chunking_64MiB", |b| {
        b.iter(|| black_box(params.split_all(black_box(&data))).len())
    });
    g.bench_function("sha256_64MiB_in_1MiB_blocks", |b| {
        b.iter(|| {
            for block in data.chunks(1 << 20) {
                black_box(Id::of(black_box(block)));
            }
        })
    });
    // The pipeline hashes a chunk right after the chunker read it, often
    // from cache; this is the same kernel on one block that stays in cache.
    let block = &data[..1 << 20];
    g.throughput(Throughput::Bytes(block.len() as u64));
    g.bench_function("sha256_1MiB_block_in_cache", |b| {
        b.iter(|| black_box(Id::of(black_box(block))))
    });
    let logs = text(16 << 20);
    g.throughput(Throughput::Bytes(logs.len() as u64));
    g.bench_function("zstd3_compress_16MiB_text_in_1MiB_blobs", |b| {
        b.iter(|| {
            for blob in logs.chunks(1 << 20) {
                with_encoded(Compression::Zstd, 3, blob, |codec, stored| {
                    black_box((codec, stored.len()))
                });
            }
        })
    });
    let compressed: Vec<Vec<u8>> = logs
        .chunks(1 << 20)
        .map(|blob| with_encoded(Compression::Zstd, 3, blob, |_, s| s.to_vec()))
        .collect();
    g.bench_function("zstd_decompress_16MiB_text", |b| {
        b.iter(|| {
            for stored in &compressed {
                black_box(decode(Codec::Zstd, stored, 1 << 20, libzstd_decode).unwrap());
            }
        })
    });
    g.finish();
}

/// A million distinct chunks in 1,000 files of one index, indexed in 1,000
/// packs: the plan places every chunk and coalesces the reads.
fn plan_one_million_chunks(c: &mut Criterion) {
    let (files, per_file) = (1000u32, 1000u32);
    let mut index = RepoIndex::new();
    let mut nodes = Vec::new();
    for f in 0..files {
        let mut entries = Vec::with_capacity(per_file as usize);
        let mut chunks = Vec::with_capacity(per_file as usize);
        for k in 0..per_file {
            let id = Id::of(&(f as u64 * per_file as u64 + k as u64).to_le_bytes());
            entries.push(BlobEntry {
                id,
                offset: 8 + k as u64 * 1024,
                stored_len: 1000,
                raw_len: 1024,
                kind: BlobKind::Data,
                codec: Codec::Raw,
            });
            chunks.push(id);
        }
        index.add_pack(Id::of(&f.to_le_bytes()), &entries);
        nodes.push(Node {
            name: format!("file-{f:04}"),
            kind: NodeType::File,
            mode: 0o644,
            mtime_ns: 0,
            size: per_file as u64 * 1024,
            inode: 0,
            chunks,
            subtree: None,
            ..Node::default()
        });
    }
    let tree = Tree::new(nodes);
    let top = tree.id();
    let trees: HashMap<Id, Tree> = [(top, tree)].into_iter().collect();
    let mut g = c.benchmark_group("restore_plan");
    g.sample_size(10);
    g.throughput(Throughput::Elements(files as u64 * per_file as u64));
    g.bench_function("plan_1M_chunks", |b| {
        b.iter_batched(
            || PlanRequest {
                indices: vec![IndexToRestore {
                    source: "big".into(),
                    target: "big".into(),
                    tree: Some(top),
                    mode: None,
                    mtime_ns: None,
                    attrs: None,
                    declared: Declared {
                        files: files as u64,
                        dirs: 0,
                    },
                }],
                global_state: None,
                global_declared: Declared::default(),
                trees: &trees,
                index: &index,
                target: TargetState::default(),
                max_gap: DEFAULT_MAX_GAP,
                max_range: DEFAULT_MAX_RANGE,
                include: None,
            },
            |req| black_box(plan_restore(&req).unwrap().summary.requests),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// Retention over 10,000 hourly snapshots of one policy with every rule
/// set (issue #16's target: under 1 s).
fn retention_ten_thousand(c: &mut Criterion) {
    use snapkeep::core::slm::retention::{retention_plan, Candidate, Outcome, Retention};
    const HOUR: i64 = 3_600_000;
    let t0 = 1_767_225_600_000;
    let snapshots: Vec<Candidate> = (0..10_000)
        .map(|i| Candidate {
            name: format!("hourly-{i:05}"),
            policy: Some(if i % 10 == 0 { "other" } else { "hourly" }.into()),
            outcome: if i % 97 == 0 {
                Outcome::Failed
            } else {
                Outcome::Success
            },
            start_ms: t0 + i * HOUR,
            end_ms: t0 + i * HOUR + 60_000,
            pinned: None,
        })
        .collect();
    let rules = Retention {
        expire_after_ms: Some(365 * 24 * HOUR),
        min_count: Some(5),
        max_count: Some(5_000),
        keep_hourly: 48,
        keep_daily: 30,
        keep_weekly: 12,
        keep_monthly: 24,
        keep_yearly: 5,
    };
    let zone = jiff::tz::TimeZone::fixed(jiff::tz::offset(1));
    let now = t0 + 10_000 * HOUR;
    let mut g = c.benchmark_group("slm");
    g.sample_size(10);
    g.bench_function("retention_plan_10k_snapshots", |b| {
        b.iter(|| {
            black_box(
                retention_plan(&snapshots, "hourly", &rules, &zone, now)
                    .decisions
                    .len(),
            )
        })
    });
    g.finish();
}

/// The CPU the edge watchdog spends on one repository of 10,000
/// snapshots of one policy at a cron run: decode the root, judge health,
/// plan retention and make (and encode) the root that removes what the
/// plan deletes. Object reads are I/O and do not count against a Worker's
/// CPU limit; this is what does.
fn edge_watchdog_ten_thousand(c: &mut Criterion) {
    use snapkeep::core::format::manifest::{SnapshotState, SnapshotSummary};
    use snapkeep::core::format::root::Root;
    use snapkeep::core::slm::health::{policy_health, Watched};
    use snapkeep::core::slm::retention::Retention;
    use snapkeep::core::slm::watchdog::{candidate, plan_all, retention_root, PolicyRules};
    const HOUR: i64 = 3_600_000;
    let t0 = 1_767_225_600_000;
    let snapshots: Vec<SnapshotSummary> = (0..10_000)
        .map(|i| SnapshotSummary {
            snapshot: format!("hourly-{i:05}"),
            uuid: format!("{i:032x}"),
            state: SnapshotState::Success,
            start_time_in_millis: t0 + i * HOUR,
            end_time_in_millis: t0 + i * HOUR + 60_000,
            indices: vec!["logs".into(), "metrics".into()],
            include_global_state: true,
            size_in_bytes: 1 << 30,
            new_bytes: 1 << 20,
            new_stored_bytes: 1 << 19,
            files: 3_000,
            failures: 0,
            manifest: Some(Id::of(&i.to_le_bytes())),
            policy: Some("hourly".into()),
        })
        .collect();
    let root = Root {
        generation: 10_000,
        snapshots,
        ..Root::empty()
    };
    let bytes = root.encode();
    let rules = Retention {
        max_count: Some(5_000),
        keep_daily: 30,
        ..Retention::default()
    };
    let zone = jiff::tz::TimeZone::UTC;
    let now = t0 + 10_000 * HOUR;
    let policy = [PolicyRules {
        id: "hourly",
        rules: &rules,
        tz: &zone,
    }];
    let watched = Watched {
        id: "hourly",
        threshold_ms: Some(2 * HOUR),
        modified_ms: t0,
    };
    let mut g = c.benchmark_group("edge");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("watchdog_one_repository_10k_snapshots", |b| {
        b.iter(|| {
            let root = Root::decode(&bytes).unwrap();
            let candidates: Vec<_> = root.snapshots.iter().map(|s| candidate(s, None)).collect();
            let health = policy_health(watched, &candidates, now);
            let (_, doomed) = plan_all(&policy, &candidates, now);
            let next = retention_root(&root, &doomed).unwrap().unwrap();
            black_box((health.healthy, next.encode().len()))
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    kernels,
    plan_one_million_chunks,
    retention_ten_thousand,
    edge_watchdog_ten_thousand
);
criterion_main!(benches);
