//! HTTP `Range: bytes=...` headers (a single range; anything else is
//! ignored and the whole object served, as RFC 9110 allows). Pure, so the
//! edge Worker's parsing is tested natively.

use std::ops::Range;

/// A requested range before the object's size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// `bytes=a-b` (inclusive b) or `bytes=a-` (b = None).
    From { start: u64, last: Option<u64> },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

pub fn parse(header: &str) -> Option<Wanted> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return Some(Wanted::Suffix(b.parse().ok()?));
    }
    let start = a.parse().ok()?;
    let last = if b.is_empty() {
        None
    } else {
        Some(b.parse().ok()?)
    };
    if last.is_some_and(|l| l < start) {
        return None;
    }
    Some(Wanted::From { start, last })
}

impl Wanted {
    /// The byte range in an object of `size` bytes; `None` when nothing of
    /// it lies inside (answered with 416).
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            Wanted::From { start, .. } if start >= size => None,
            Wanted::From { start, last } => {
                Some(start..last.map_or(size, |l| l.saturating_add(1).min(size)))
            }
            Wanted::Suffix(n) if n == 0 || size == 0 => None,
            Wanted::Suffix(n) => Some(size.saturating_sub(n)..size),
        }
    }

    /// The range when the size is not known: suffixes cannot be answered,
    /// nor can a range that starts at `u64::MAX` (no object has a byte
    /// there: sizes are `u64`), and a returned range is never empty.
    pub fn without_size(self) -> Option<Range<u64>> {
        match self {
            Wanted::From { start, last } => {
                let end = last.map_or(u64::MAX, |l| l.saturating_add(1));
                (start < end).then_some(start..end)
            }
            Wanted::Suffix(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse("bytes=0-99").unwrap().resolve(1000), Some(0..100));
        assert_eq!(parse("bytes=990-").unwrap().resolve(1000), Some(990..1000));
        assert_eq!(
            parse("bytes=990-5000").unwrap().resolve(1000),
            Some(990..1000)
        );
        assert_eq!(parse("bytes=-10").unwrap().resolve(1000), Some(990..1000));
        assert_eq!(parse("bytes=1000-").unwrap().resolve(1000), None);
        assert_eq!(parse("bytes=5-3"), None);
        assert_eq!(parse("bytes=0-1,4-5"), None);
        assert_eq!(parse("items=0-1"), None);
        // The largest last byte position does not wrap around.
        let huge = parse("bytes=5-18446744073709551615").unwrap();
        assert_eq!(huge.resolve(1000), Some(5..1000));
        assert_eq!(huge.without_size(), Some(5..u64::MAX));
        // Nothing of an empty object can be served.
        assert_eq!(parse("bytes=-10").unwrap().resolve(0), None);
        assert_eq!(parse("bytes=0-").unwrap().resolve(0), None);
    }

    #[test]
    fn a_range_starting_past_every_byte_is_not_answered_as_empty() {
        // Found by the http_range fuzz target (fuzz/findings/http_range):
        // without_size gave the empty range u64::MAX..u64::MAX.
        for header in [
            " bytes=18446744073709551615-",
            "bytes=18446744073709551615-18446744073709551615",
        ] {
            let w = parse(header).unwrap();
            assert_eq!(w.without_size(), None, "{header}");
            assert_eq!(w.resolve(u64::MAX), None, "{header}");
        }
        assert_eq!(
            parse("bytes=18446744073709551614-").unwrap().without_size(),
            Some(u64::MAX - 1..u64::MAX)
        );
    }
}
