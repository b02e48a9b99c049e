//! [`ReadBuffers`]: the buffers a local store reads ranges into, taken
//! back when the last view of a range is dropped and used again.
//!
//! A fresh buffer per ranged read cost the kernel a page fault and a zeroed
//! page for every 4 KiB of it, then an unmap: a restore reads a whole
//! snapshot through such buffers, and a mount its read-ahead windows, so
//! every byte paid for a new page once more. A buffer taken back keeps its
//! pages.

use std::io::{self, Read};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;

/// Reads shorter than this get a buffer of their own (the allocator serves
/// them from memory it already holds).
const SMALLEST: usize = 64 * 1024;
/// Bytes of free buffers kept at most: each is memory the process holds
/// (part of a restore's or a check's peak RSS). A restore or a check hands
/// a buffer back and takes the next at once, so one or two of their 8 MiB
/// reads are kept; a mount hands its 2 MiB read-ahead ranges back in
/// bursts, as the chunks they hold leave its cache's memory, and up to
/// eight are kept.
const KEEP_BYTES: usize = 16 * 1024 * 1024;
/// A kept buffer is used for a read only if the read fills at least this
/// fraction of it (1/`SLACK`): a view of a small range must not hold a
/// large buffer.
const SLACK: usize = 4;

#[derive(Debug, Default)]
pub(crate) struct ReadBuffers {
    free: Mutex<Vec<Vec<u8>>>,
}

impl ReadBuffers {
    /// `len` bytes read from `from`, in a kept buffer where one fits.
    pub fn read(self: &Arc<Self>, from: &mut impl Read, len: usize) -> io::Result<Bytes> {
        if len < SMALLEST {
            let mut buf = vec![0u8; len];
            from.read_exact(&mut buf)?;
            return Ok(Bytes::from(buf));
        }
        let mut buf = self.take(len);
        from.read_exact(&mut buf[..len])?;
        Ok(Bytes::from_owner(Lent {
            buf,
            len,
            home: Arc::downgrade(self),
        }))
    }

    /// A buffer of at least `len` bytes: the smallest kept one that holds
    /// them without wasting more than [`SLACK`] allows; else the largest
    /// kept one that is too short, grown (its pages stay, only the new
    /// ones are fresh), so that reads of many sizes share what is kept
    /// instead of each size keeping buffers of its own; else a new one.
    fn take(&self, len: usize) -> Vec<u8> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let fits = free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() >= len && b.len() <= len.saturating_mul(SLACK))
            .min_by_key(|(_, b)| b.len())
            .map(|(i, _)| i);
        let short = || {
            free.iter()
                .enumerate()
                .filter(|(_, b)| b.len() < len)
                .max_by_key(|(_, b)| b.len())
                .map(|(i, _)| i)
        };
        match fits.or_else(short) {
            Some(i) => {
                let mut buf = free.swap_remove(i);
                drop(free);
                if buf.len() < len {
                    buf.reserve_exact(len - buf.len());
                    buf.resize(len, 0);
                }
                buf
            }
            None => vec![0u8; len],
        }
    }

    /// Keeps `buf` for a later read while the kept ones stay within
    /// [`KEEP_BYTES`].
    fn give_back(&self, buf: Vec<u8>) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let kept: usize = free.iter().map(Vec::len).sum();
        if kept + buf.len() <= KEEP_BYTES {
            free.push(buf);
        }
    }
}

/// A buffer lent to the views of one read; back to its pool when the last
/// view is dropped (or freed, once the store is gone).
struct Lent {
    buf: Vec<u8>,
    len: usize,
    home: Weak<ReadBuffers>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(home) = self.home.upgrade() {
            home.give_back(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    #[test]
    fn a_buffer_is_used_again_once_every_view_of_it_is_gone() {
        let pool = Arc::new(ReadBuffers::default());
        let a = source(1 << 20, 1);
        let first = pool.read(&mut &a[..], a.len()).unwrap();
        assert_eq!(first, a);
        let at = first.as_ptr();
        let view = first.slice(100..200);
        drop(first);
        // A view still holds the buffer: the next read gets another.
        let b = source(1 << 20, 2);
        let second = pool.read(&mut &b[..], b.len()).unwrap();
        assert_ne!(second.as_ptr(), at);
        assert_eq!(view, a[100..200]);
        drop(view);
        // A shorter read (within the slack) takes the buffer back, and
        // sees only its own bytes.
        let c = source(700 * 1024, 3);
        let third = pool.read(&mut &c[..], c.len()).unwrap();
        assert_eq!(third.as_ptr(), at);
        assert_eq!(third, c);
        drop((second, third));
        assert_eq!(pool.free.lock().unwrap().len(), 2);
    }

    #[test]
    fn much_smaller_reads_get_buffers_of_their_own_and_larger_ones_grow_one() {
        let pool = Arc::new(ReadBuffers::default());
        let big = source(4 << 20, 4);
        drop(pool.read(&mut &big[..], big.len()).unwrap());
        // Over `SLACK` times smaller: not the kept 4 MiB.
        let quarter = source((1 << 20) - 1, 5);
        let read = pool.read(&mut &quarter[..], quarter.len()).unwrap();
        assert_eq!(read, quarter);
        assert_eq!(pool.free.lock().unwrap().len(), 1);
        drop(read);
        // Larger than any kept: the largest kept one grows, no new buffer.
        let larger = source(6 << 20, 6);
        let read = pool.read(&mut &larger[..], larger.len()).unwrap();
        assert_eq!(read, larger);
        let kept: Vec<usize> = pool.free.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(kept, [(1 << 20) - 1]);
        drop(read);
        assert_eq!(pool.free.lock().unwrap().len(), 2);
        let tiny = source(100, 7);
        assert_eq!(pool.read(&mut &tiny[..], 100).unwrap(), tiny);
        assert_eq!(pool.free.lock().unwrap().len(), 2, "small reads take none");
    }

    #[test]
    fn a_short_source_is_an_error_and_at_most_keep_bytes_are_kept() {
        let pool = Arc::new(ReadBuffers::default());
        let short = source(SMALLEST, 7);
        let err = pool.read(&mut &short[..], SMALLEST + 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let data = source(6 << 20, 8);
        let held: Vec<Bytes> = (0..4)
            .map(|_| pool.read(&mut &data[..], data.len()).unwrap())
            .collect();
        drop(held);
        let kept: Vec<usize> = pool.free.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(kept, [6 << 20, 6 << 20], "two fit in {KEEP_BYTES} bytes");
    }
}
