//! `--read-data`: downloads the chosen packs and re-hashes every blob, a
//! few packs at a time, hashing on the check's [`crate::repo::cpu::Cpu`].

use bytes::Bytes;
use futures::stream::{self, StreamExt};

use crate::core::format::blob::BlobEntry;
use crate::core::format::codec::ZstdDecoder;
use crate::core::format::id::Id;
use crate::core::format::keys;
use crate::core::format::pack::parse_pack;
use crate::core::format::patch;
use crate::core::policy::read_subset::choose_subset;
use crate::repo::cpu;
use crate::repo::findings::{Finding, FindingKind};
use crate::repo::reader::{decode_rehashed, Bases};
use crate::repo::sealing::Sealing;
use crate::storage::Latency;

use super::steps::{damaged, BadBlob, Checker};
use super::{Check, ReadData};

/// Packs downloaded at once from remote storage: enough to keep the CPU
/// busy while the next download waits, few enough to bound the memory held
/// (one pack each).
const PACKS_AT_ONCE: usize = 4;

/// Packs read at once from a local repository, where a read does not wait
/// on a network: one read while two are hashed. A fourth held 10 MiB more
/// (peak RSS 88 MiB against 78 on the benchmark's mixed data set, above
/// borg's 81) for a check 10% faster; two saved 8 MiB more but cost a
/// quarter of the speed.
const LOCAL_PACKS_AT_ONCE: usize = 3;

/// What re-reading one pack found.
struct PackCheck {
    problems: Vec<Finding>,
    /// Blobs that do not decode or hash to their id.
    damaged: Vec<(Id, BadBlob)>,
    bytes: u64,
}

impl Checker<'_> {
    /// Downloads the chosen packs and re-hashes every blob.
    pub(super) async fn read_packs(&mut self, how: &Check<'_>) {
        let mut packs: Vec<(&Id, &Vec<BlobEntry>)> = self
            .pack_tables
            .iter()
            .filter(|(p, _)| self.stored.contains_key(p))
            .collect();
        if let ReadData::Subset(fraction) = how.read_data {
            packs = choose_subset(packs, fraction, how.salt);
        }
        let total: u64 = packs.iter().map(|(p, _)| self.stored[p]).sum();
        how.progress.start(total);
        // The futures are built before awaiting (they start when polled):
        // a closure inside the stream would keep the whole future from
        // being `Send` (rustc's "FnOnce is not general enough").
        let reads: Vec<_> = packs
            .into_iter()
            .map(|(pack, entries)| self.read_pack(how, *pack, entries))
            .collect();
        let at_once = match self.reader.store.capabilities().latency {
            Latency::Local => LOCAL_PACKS_AT_ONCE,
            Latency::Remote => PACKS_AT_ONCE,
        };
        let results: Vec<PackCheck> = stream::iter(reads).buffered(at_once).collect().await;
        how.progress.finish();
        for r in results {
            self.report.packs_read += 1;
            self.report.bytes_read += r.bytes;
            self.report.findings.extend(r.problems);
            for (id, bad) in r.damaged {
                self.bad_blobs.entry(id).or_insert(bad);
            }
        }
    }

    /// Downloads one pack and re-hashes its blobs.
    async fn read_pack(&self, how: &Check<'_>, pack: Id, entries: &[BlobEntry]) -> PackCheck {
        let key = keys::pack(&pack);
        let bytes = match self.reader.store.get(&key, None).await {
            Ok(b) => b,
            Err(e) => {
                let detail = format!("pack {}: {e}", pack.short());
                return PackCheck {
                    problems: vec![Finding::new(FindingKind::PackUnreadable, key, detail)],
                    damaged: Vec::new(),
                    bytes: 0,
                };
            }
        };
        how.progress.advance(bytes.len() as u64);
        let zstd = self.reader.zstd();
        let mut check: Option<PackCheck> = None;
        // Blobs in batches, each with the bases its patches decode over:
        // a pack of patches would otherwise hold a base per patch at once.
        // The first batch's job also checks the pack itself, so a pack
        // without patches is one job (and a pack without entries still
        // gets its own).
        let mut batches: Vec<&[BlobEntry]> = patch::batches(entries).collect();
        if batches.is_empty() {
            batches.push(&[]);
        }
        for batch in batches {
            // A base that cannot be read leaves its patches undecodable,
            // and each is reported so ("patch base ... missing"); the base
            // itself is reported where it is stored.
            let bases = self
                .reader
                .bases(&self.index, batch.iter().map(|e| &e.id))
                .await
                .unwrap_or_default();
            let (batch, bytes) = (batch.to_vec(), bytes.clone());
            let sealing = self.reader.sealing().clone();
            let first = check.is_none();
            let (problems, bad) = cpu::run(how.cpu, move || {
                let problems = first.then(|| pack_problems(pack, &bytes, &sealing));
                (
                    problems,
                    rehash_blobs(&bytes, &batch, zstd, &sealing, &bases),
                )
            })
            .await;
            let c = check.get_or_insert_with(|| problems.expect("the first batch checks the pack"));
            c.damaged.extend(bad);
        }
        check.expect("at least one batch")
    }
}

/// Checks a downloaded pack against its name and format; its blobs are
/// left to [`rehash_blobs`].
fn pack_problems(pack: Id, bytes: &Bytes, sealing: &Sealing) -> PackCheck {
    let key = keys::pack(&pack);
    let mut problems = Vec::new();
    if Id::of(bytes) != pack {
        let detail = format!("pack {} does not match its SHA-256", pack.short());
        problems.push(Finding::new(FindingKind::PackHashMismatch, &key, detail));
    }
    if let Err(e) = parse_pack(bytes, sealing.data_key()) {
        let detail = format!("pack {}: {e}", pack.short());
        problems.push(Finding::new(FindingKind::PackUnreadable, &key, detail));
    }
    PackCheck {
        problems,
        damaged: Vec::new(),
        bytes: bytes.len() as u64,
    }
}

/// Decodes every blob of `entries` (patches over `bases`) from its pack's
/// `bytes` and checks it against its id; the blobs that fail, and why.
fn rehash_blobs(
    bytes: &Bytes,
    entries: &[BlobEntry],
    zstd: ZstdDecoder,
    sealing: &Sealing,
    bases: &Bases,
) -> Vec<(Id, BadBlob)> {
    let mut bad = Vec::new();
    for e in entries {
        let stored = bytes.get(e.offset as usize..e.end() as usize);
        match stored.map(|s| decode_rehashed(e, s, zstd, sealing, bases)) {
            Some(Ok(_)) => {}
            Some(Err(err)) => bad.push((e.id, (damaged(e), err.to_string()))),
            None => bad.push((e.id, (damaged(e), "lies outside its pack".into()))),
        }
    }
    bad
}
