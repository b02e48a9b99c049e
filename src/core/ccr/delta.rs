//! Chunk deltas for a follower's catch-up over HTTP.
//!
//! A chunk the follower lacks often replaces one it holds at about the
//! same place of the same file, with an edit in between (a 64 KiB write
//! in the middle of a file is one new chunk of up to a megabyte). The
//! leader has both in its checkpoint repository, so it can send the new
//! chunk as the part that differs: the follower takes the common prefix
//! and suffix from its own copy of the old chunk (the *base*).
//!
//! Values only: the leader's shell reads both chunks and calls [`encode`],
//! the follower's reads the base from its folder and calls [`apply`], then
//! checks the result against the chunk's id. A delta is a way to get
//! bytes, never a reason to trust them: a base that differs from the
//! leader's (a local write, a pruned checkpoint) gives bytes with another
//! id, and the chunk is then fetched as usual.
//!
//! The answer to a batch of asks, in their order (little-endian):
//!
//! ```text
//! batch = "SKD1" · count u32 · entry × count
//! entry = 0x00                                            no delta: fetch the chunk
//!       | 0x01 · base_len u32 · prefix u32 · suffix u32 · middle_len u32 · middle
//!       | 0x02 · stored_len u32 · stored                   the chunk as stored
//! ```
//!
//! The middle is sent raw: what a catch-up edits is mostly incompressible,
//! and the core has no zstd encoder; a later tag may carry a codec.
//!
//! A follower that asks with `whole` (`?whole=true`) takes the chunk
//! itself when no delta saves enough: the blob as the checkpoint
//! repository stores it (compressed, and sealed when it is encrypted),
//! which the follower opens and checks as it would a fetched one. The
//! leader has read it to compare anyway, and the follower then needs no
//! second request for it. Followers before that tag never ask for it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::core::format::id::Id;

/// The most asks one request may carry.
pub const MAX_ASKS: usize = 256;
/// The most middle and stored bytes one answer carries: asks past it are
/// answered "no delta" (the follower fetches those chunks as usual).
pub const MAX_ANSWER_PAYLOAD: usize = 16 << 20;

const MAGIC: &[u8; 4] = b"SKD1";
const TAG_NONE: u8 = 0;
const TAG_RAW: u8 = 1;
const TAG_STORED: u8 = 2;

/// One ask: chunk `id` as a delta from chunk `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    pub id: Id,
    pub base: Id,
}

/// A chunk as `base[..prefix] ++ middle ++ base[base_len - suffix..]`.
/// Prefix and suffix never overlap in the base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// The base's length, checked before the base is used.
    pub base_len: u32,
    pub prefix: u32,
    pub suffix: u32,
    pub middle: Vec<u8>,
}

/// The leader's answer to one ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Nothing: the follower fetches the chunk as usual.
    None,
    Delta(Delta),
    /// The chunk as its repository stores it (only to a `whole` ask).
    /// Shared, not copied, with the bytes it was read from or into.
    Stored(Bytes),
}

impl Answer {
    /// The bytes it puts on the wire besides its header.
    pub fn payload_len(&self) -> usize {
        match self {
            Answer::None => 0,
            Answer::Delta(d) => d.middle.len(),
            Answer::Stored(s) => s.len(),
        }
    }
}

/// Why a delta or a batch cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    #[error("the base is {got} bytes, the delta was made from one of {expected}")]
    BaseLength { expected: u32, got: usize },
    #[error("prefix {prefix} and suffix {suffix} do not fit in a base of {base_len} bytes")]
    Overlap {
        prefix: u32,
        suffix: u32,
        base_len: u32,
    },
    #[error("not a delta batch: it starts with {0:02x?}")]
    BadMagic(Vec<u8>),
    #[error("the delta batch ends inside its entry {entry}")]
    Truncated { entry: usize },
    #[error("the delta batch answers {got} chunks, {expected} were asked")]
    Count { expected: usize, got: usize },
    #[error("entry {entry} of the delta batch has unknown tag {tag}")]
    UnknownTag { entry: usize, tag: u8 },
    #[error("the delta batch has {0} bytes after its last entry")]
    Trailing(usize),
}

/// Chunk lengths on the wire: blobs are under 4 GiB (`BlobEntry::raw_len`).
fn len32(n: usize) -> u32 {
    u32::try_from(n).expect("chunks are under 4 GiB")
}

/// `new` as a delta from `base`: their longest common prefix, then the
/// longest common suffix of what is left of both.
pub fn encode(base: &[u8], new: &[u8]) -> Delta {
    let prefix = base.iter().zip(new).take_while(|(a, b)| a == b).count();
    let room = base.len().min(new.len()) - prefix;
    let suffix = base
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take(room)
        .take_while(|(a, b)| a == b)
        .count();
    Delta {
        base_len: len32(base.len()),
        prefix: len32(prefix),
        suffix: len32(suffix),
        middle: new[prefix..new.len() - suffix].to_vec(),
    }
}

/// The chunk `d` describes, from `base`.
pub fn apply(base: &[u8], d: &Delta) -> Result<Vec<u8>, DeltaError> {
    if base.len() as u64 != u64::from(d.base_len) {
        return Err(DeltaError::BaseLength {
            expected: d.base_len,
            got: base.len(),
        });
    }
    if u64::from(d.prefix) + u64::from(d.suffix) > u64::from(d.base_len) {
        return Err(DeltaError::Overlap {
            prefix: d.prefix,
            suffix: d.suffix,
            base_len: d.base_len,
        });
    }
    let (p, s) = (d.prefix as usize, d.suffix as usize);
    let mut out = Vec::with_capacity(p + d.middle.len() + s);
    out.extend_from_slice(&base[..p]);
    out.extend_from_slice(&d.middle);
    out.extend_from_slice(&base[base.len() - s..]);
    Ok(out)
}

/// Whether sending `d` instead of the chunk (`new_len` bytes) is worth an
/// answer: its middle is at most three quarters of the chunk (less saved
/// than that is not worth the follower's read of the base).
pub fn saves_enough(d: &Delta, new_len: usize) -> bool {
    d.middle.len() as u64 * 4 <= new_len as u64 * 3
}

/// The most bytes of each end of a base that [`ends_rule_out`] compares.
const END_PROBE: usize = 4 << 10;

/// How many bytes of each end of the base [`ends_rule_out`] takes for a
/// new chunk of `new_len` bytes: at most an eighth of it, so that ends
/// differing within them leave a middle over three quarters of it.
pub fn end_len(new_len: usize) -> usize {
    (new_len / 8).min(END_PROBE)
}

/// Whether no delta of `new` from a base whose first and last
/// [`end_len`] bytes are `head` and `tail` can be worth sending, as
/// [`saves_enough`] judges it: `new` differs from both within them, so
/// its common prefix and suffix with the base are each under
/// [`end_len`], together under a quarter of `new`. The leader then need
/// not read the whole base (a rewritten file's chunk, say). `false` when
/// it cannot tell.
pub fn ends_rule_out(new: &[u8], head: &[u8], tail: &[u8]) -> bool {
    let n = end_len(new.len());
    n > 0
        && head.len() == n
        && tail.len() == n
        && head != &new[..n]
        && tail != &new[new.len() - n..]
}

/// Of the `held` spans (offset, length) of the file the follower holds,
/// the one that overlaps `start..start + len` (a new chunk's place in the
/// new version of the file) the most; `None` when none overlaps. The
/// first of equal overlaps wins.
pub fn best_base(start: u64, len: u64, held: &[(u64, u64)]) -> Option<usize> {
    let end = start.saturating_add(len);
    let mut best: Option<(usize, u64)> = None;
    for (i, &(o, l)) in held.iter().enumerate() {
        let overlap = end.min(o.saturating_add(l)).saturating_sub(start.max(o));
        if overlap > 0 && best.is_none_or(|(_, b)| overlap > b) {
            best = Some((i, overlap));
        }
    }
    best.map(|(i, _)| i)
}

/// A batch answer's bytes as pieces to send one after another: each
/// stored chunk is its own piece, shared with the bytes it was read into
/// rather than copied (the batch is [`encode_batch`]'s, piece by piece).
pub fn encode_batch_parts(entries: &[Answer]) -> Vec<Bytes> {
    let mut parts = Vec::new();
    let mut head = Vec::with_capacity(8 + entries.len() * 17);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&len32(entries.len()).to_le_bytes());
    for e in entries {
        match e {
            Answer::None => head.push(TAG_NONE),
            Answer::Delta(d) => {
                head.push(TAG_RAW);
                for n in [d.base_len, d.prefix, d.suffix, len32(d.middle.len())] {
                    head.extend_from_slice(&n.to_le_bytes());
                }
                head.extend_from_slice(&d.middle);
            }
            Answer::Stored(stored) => {
                head.push(TAG_STORED);
                head.extend_from_slice(&len32(stored.len()).to_le_bytes());
                parts.push(Bytes::from(std::mem::take(&mut head)));
                parts.push(stored.clone());
            }
        }
    }
    if !head.is_empty() {
        parts.push(Bytes::from(head));
    }
    parts
}

/// A batch answer's bytes.
pub fn encode_batch(entries: &[Answer]) -> Vec<u8> {
    encode_batch_parts(entries).concat()
}

/// Reads a batch answer to `expected` asks; stored chunks are slices of
/// `batch`, not copies.
pub fn decode_batch(batch: &Bytes, expected: usize) -> Result<Vec<Answer>, DeltaError> {
    let bytes = batch.as_ref();
    if bytes.get(..4) != Some(MAGIC.as_slice()) {
        return Err(DeltaError::BadMagic(
            bytes.iter().take(4).copied().collect(),
        ));
    }
    let mut r = Reader { bytes, at: 4 };
    let count = r.u32().ok_or(DeltaError::Truncated { entry: 0 })? as usize;
    if count != expected {
        return Err(DeltaError::Count {
            expected,
            got: count,
        });
    }
    let mut out = Vec::with_capacity(count);
    for entry in 0..count {
        let cut = || DeltaError::Truncated { entry };
        let tag = r.take(1).ok_or_else(cut)?[0];
        match tag {
            TAG_NONE => out.push(Answer::None),
            TAG_RAW => {
                let mut n = [0u32; 4];
                for v in &mut n {
                    *v = r.u32().ok_or_else(cut)?;
                }
                let middle = r.take(n[3] as usize).ok_or_else(cut)?.to_vec();
                out.push(Answer::Delta(Delta {
                    base_len: n[0],
                    prefix: n[1],
                    suffix: n[2],
                    middle,
                }));
            }
            TAG_STORED => {
                let len = r.u32().ok_or_else(cut)?;
                let stored = r.take(len as usize).ok_or_else(cut)?;
                out.push(Answer::Stored(batch.slice_ref(stored)));
            }
            tag => return Err(DeltaError::UnknownTag { entry, tag }),
        }
    }
    match bytes.len() - r.at {
        0 => Ok(out),
        extra => Err(DeltaError::Trailing(extra)),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::seeded::noise;
    #[cfg(not(target_arch = "wasm32"))]
    use proptest::prelude::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn round_trip(base: &[u8], new: &[u8]) -> Delta {
        let d = encode(base, new);
        assert_eq!(apply(base, &d).unwrap(), new);
        assert!(d.prefix as usize + d.suffix as usize <= base.len().min(new.len()));
        d
    }

    #[test]
    fn an_edit_in_the_middle_sends_only_the_edit() {
        let base = noise(1 << 20, 1);
        let mut new = base.clone();
        // Every byte of the edit differs from the one it replaces.
        new[300_000..365_536].iter_mut().for_each(|b| *b ^= 0x5a);
        let d = round_trip(&base, &new);
        assert_eq!((d.prefix, d.suffix), (300_000, (1 << 20) - 365_536));
        assert_eq!(d.middle, new[300_000..365_536]);
        assert!(saves_enough(&d, new.len()));
    }

    #[test]
    fn identical_chunks_are_all_prefix() {
        let base = noise(5000, 3);
        let d = round_trip(&base, &base);
        assert_eq!((d.prefix, d.suffix, d.middle.len()), (5000, 0, 0));
    }

    #[test]
    fn disjoint_chunks_are_all_middle_and_not_worth_it() {
        let (base, new) = (vec![1u8; 4000], vec![2u8; 3000]);
        let d = round_trip(&base, &new);
        assert_eq!((d.prefix, d.suffix), (0, 0));
        assert_eq!(d.middle, new);
        assert!(!saves_enough(&d, new.len()));
    }

    #[test]
    fn empty_sides() {
        let some = noise(100, 4);
        assert_eq!(round_trip(&[], &some).middle, some);
        let d = round_trip(&some, &[]);
        assert_eq!((d.prefix, d.suffix, d.middle.len()), (0, 0, 0));
        round_trip(&[], &[]);
    }

    #[test]
    fn prefix_and_suffix_never_overlap() {
        // "aaa" -> "aaaa": all of the base is a common prefix, and the
        // suffix may only use what is left of the shorter side.
        let d = round_trip(b"aaa", b"aaaa");
        assert_eq!((d.prefix, d.suffix), (3, 0));
        let d = round_trip(b"abcabc", b"abc");
        assert_eq!((d.prefix, d.suffix, d.middle.len()), (3, 0, 0));
        let d = round_trip(b"abab", b"ab");
        assert_eq!(d.prefix + d.suffix, 2);
    }

    #[test]
    fn insertions_and_removals_keep_both_ends() {
        let base = noise(10_000, 5);
        // The inserted bytes differ from their neighbours at both ends.
        let mut inserted = noise(700, 6);
        inserted[0] = !base[4000];
        inserted[699] = !base[3999];
        let new = [&base[..4000], &inserted[..], &base[4000..]].concat();
        let d = round_trip(&base, &new);
        assert_eq!((d.prefix, d.suffix, d.middle.len()), (4000, 6000, 700));
        // A removal leaves nothing to send, wherever the greedy prefix ends.
        let removed = [&base[..3000], &base[5000..]].concat();
        let d = round_trip(&base, &removed);
        assert_eq!((d.prefix + d.suffix, d.middle.len()), (8000, 0));
        assert!(d.prefix >= 3000);
    }

    #[test]
    fn a_base_of_another_length_or_a_bad_delta_is_refused() {
        let d = encode(b"hello world", b"hello there world");
        assert_eq!(
            apply(b"hello world!", &d),
            Err(DeltaError::BaseLength {
                expected: 11,
                got: 12
            })
        );
        let bad = Delta {
            base_len: 4,
            prefix: 3,
            suffix: 2,
            middle: vec![],
        };
        assert!(matches!(
            apply(b"abcd", &bad),
            Err(DeltaError::Overlap { .. })
        ));
        let huge = Delta {
            base_len: 4,
            prefix: u32::MAX,
            suffix: u32::MAX,
            middle: vec![],
        };
        assert!(matches!(
            apply(b"abcd", &huge),
            Err(DeltaError::Overlap { .. })
        ));
    }

    #[test]
    fn the_base_is_the_held_chunk_that_overlaps_most() {
        let held = [(0, 100), (100, 50), (150, 200)];
        assert_eq!(best_base(90, 40, &held), Some(1));
        assert_eq!(best_base(120, 100, &held), Some(2));
        assert_eq!(best_base(0, 10, &held), Some(0));
        assert_eq!(best_base(350, 10, &held), None);
        assert_eq!(best_base(0, 0, &held), None);
        assert_eq!(best_base(10, 10, &[]), None);
        // Equal overlaps: the first.
        assert_eq!(best_base(90, 20, &[(0, 100), (100, 100)]), Some(0));
    }

    #[test]
    fn batches_round_trip_in_order() {
        let entries = vec![
            Answer::None,
            Answer::Delta(encode(b"0123456789", b"0123xx6789")),
            Answer::Stored(Bytes::from_static(b"stored bytes")),
            Answer::Delta(encode(&[], &[])),
            Answer::Stored(Bytes::new()),
            Answer::None,
        ];
        let bytes = Bytes::from(encode_batch(&entries));
        assert_eq!(decode_batch(&bytes, 6).unwrap(), entries);
        let empty = Bytes::from(encode_batch(&[]));
        assert_eq!(decode_batch(&empty, 0).unwrap(), vec![]);
    }

    #[test]
    fn malformed_batches_are_refused() {
        let bytes = Bytes::from(encode_batch(&[
            Answer::Delta(encode(b"abcdef", b"abXXef")),
            Answer::None,
        ]));
        assert_eq!(
            decode_batch(&bytes, 3),
            Err(DeltaError::Count {
                expected: 3,
                got: 2
            })
        );
        for cut in [5, 9, 20, bytes.len() - 1] {
            assert!(
                matches!(
                    decode_batch(&bytes.slice(..cut), 2),
                    Err(DeltaError::Truncated { .. })
                ),
                "cut at {cut}"
            );
        }
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert_eq!(
            decode_batch(&trailing.into(), 2),
            Err(DeltaError::Trailing(1))
        );
        let mut tagged = bytes.to_vec();
        tagged[8] = 7;
        assert_eq!(
            decode_batch(&tagged.into(), 2),
            Err(DeltaError::UnknownTag { entry: 0, tag: 7 })
        );
        assert!(matches!(
            decode_batch(&Bytes::from_static(b"HTTP/1.1"), 0),
            Err(DeltaError::BadMagic(_))
        ));
        // A middle length past the end is a truncation, not a huge read.
        let mut long = encode_batch(&[Answer::Delta(encode(b"ab", b"aXb"))]);
        long[21..25].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_batch(&long.into(), 1),
            Err(DeltaError::Truncated { entry: 0 })
        ));
        let mut stored = encode_batch(&[Answer::Stored(Bytes::from_static(b"abc"))]);
        stored[9..13].copy_from_slice(&4u32.to_le_bytes());
        assert!(matches!(
            decode_batch(&stored.into(), 1),
            Err(DeltaError::Truncated { entry: 0 })
        ));
    }

    #[test]
    fn ends_that_differ_rule_out_any_delta_worth_sending() {
        let len = 200_000;
        let new = noise(len, 7);
        let n = end_len(len);
        assert_eq!(n, 4096);
        let ends = |base: &[u8]| (base[..n].to_vec(), base[base.len() - n..].to_vec());
        // A rewrite: nothing in common.
        let rewrite = noise(len, 8);
        let (head, tail) = ends(&rewrite);
        assert!(ends_rule_out(&new, &head, &tail));
        assert!(!saves_enough(&encode(&rewrite, &new), len));
        // Common ends just short of the probe on both sides: still ruled
        // out, and rightly.
        let mut near = noise(len, 9);
        near[..n - 1].copy_from_slice(&new[..n - 1]);
        near[len - n + 1..].copy_from_slice(&new[len - n + 1..]);
        near[n - 1] = new[n - 1] ^ 1;
        near[len - n] = new[len - n] ^ 1;
        let (head, tail) = ends(&near);
        assert!(ends_rule_out(&new, &head, &tail));
        assert!(!saves_enough(&encode(&near, &new), len));
        // An edit in the middle, or one end in common: the whole base is
        // needed to tell.
        let mut edit = new.clone();
        edit[90_000..110_000].iter_mut().for_each(|b| *b ^= 1);
        let (head, tail) = ends(&edit);
        assert!(!ends_rule_out(&new, &head, &tail));
        let mut front = noise(len, 10);
        front[..n].copy_from_slice(&new[..n]);
        let (head, tail) = ends(&front);
        assert!(!ends_rule_out(&new, &head, &tail));
        // Ends of the wrong length, or a chunk too small to probe.
        assert!(!ends_rule_out(&new, &head[1..], &tail));
        assert!(!ends_rule_out(&new[..7], &[], &[]));
    }

    #[test]
    fn batch_parts_share_stored_chunks_and_make_the_batch() {
        let stored = Bytes::from(noise(10_000, 4));
        let d = encode(&noise(3000, 5), &noise(3000, 6));
        let answers = vec![
            Answer::None,
            Answer::Stored(stored.clone()),
            Answer::Delta(d),
            Answer::Stored(stored.slice(5..9)),
        ];
        let parts = encode_batch_parts(&answers);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[1].as_ptr(), stored.as_ptr());
        assert_eq!(parts[3].as_ptr(), stored[5..].as_ptr());
        let batch = Bytes::from(parts.concat());
        assert_eq!(decode_batch(&batch, 4).unwrap(), answers);
        assert_eq!(encode_batch(&[]), encode_batch_parts(&[]).concat());
    }

    // proptest is a native dev-dependency: these run natively only.
    #[cfg(not(target_arch = "wasm32"))]
    proptest! {
        #[test]
        fn any_edit_round_trips_and_sends_at_most_the_new_chunk(
            len in 0usize..3000,
            at in 0usize..3000,
            cut in 0usize..500,
            insert in 0usize..500,
            seed: u64,
        ) {
            let base = noise(len, seed);
            let at = at.min(len);
            let cut = cut.min(len - at);
            let new = [&base[..at], &noise(insert, seed ^ 1)[..], &base[at + cut..]].concat();
            let d = encode(&base, &new);
            prop_assert_eq!(apply(&base, &d).unwrap(), new.clone());
            prop_assert!(d.middle.len() <= insert);
            let answers = vec![Answer::Delta(d), Answer::None, Answer::Stored(new.into())];
            let batch = Bytes::from(encode_batch(&answers));
            prop_assert_eq!(decode_batch(&batch, 3).unwrap(), answers);
        }
    }
}
