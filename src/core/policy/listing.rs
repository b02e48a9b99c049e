//! Snapshot listing with Elasticsearch-style sorting and cursor paging,
//! answered from a root generation alone.
//!
//! The cursor (`after`) is `VALUE,NAME`: the sort value and name of the last
//! snapshot of the previous page. Names cannot contain `,`, so the last comma
//! splits it.

use std::cmp::Ordering;
use std::str::FromStr;

use serde::Serialize;

use crate::core::format::manifest::SnapshotSummary;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    StartTime,
    Name,
    Duration,
    IndexCount,
    Size,
}

impl FromStr for SortBy {
    type Err = ListingError;
    fn from_str(s: &str) -> Result<SortBy, ListingError> {
        Ok(match s {
            "start_time" => SortBy::StartTime,
            "name" => SortBy::Name,
            "duration" => SortBy::Duration,
            "index_count" => SortBy::IndexCount,
            "size" => SortBy::Size,
            _ => return Err(ListingError::BadSort(s.to_string())),
        })
    }
}

/// A listing query that cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    /// `sort` names no sort key.
    #[error("unknown sort [{0}]: use name, start_time, duration, index_count or size")]
    BadSort(String),
    /// `order` is neither `asc` nor `desc`.
    #[error("unknown order [{0}]: use asc or desc")]
    BadOrder(String),
    /// `size` is not a whole number of snapshots.
    #[error("size [{0}] is not a number")]
    BadSize(String),
    /// `after` is not a `VALUE,NAME` cursor for the sort key.
    #[error("malformed cursor [{0}]")]
    BadCursor(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Num(i128),
    Text(String),
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::Num(a), Key::Num(b)) => a.cmp(b),
            (Key::Text(a), Key::Text(b)) => a.cmp(b),
            (Key::Num(_), Key::Text(_)) => Ordering::Less,
            (Key::Text(_), Key::Num(_)) => Ordering::Greater,
        }
    }
}

fn key(s: &SnapshotSummary, by: SortBy) -> Key {
    match by {
        SortBy::StartTime => Key::Num(s.start_time_in_millis as i128),
        SortBy::Name => Key::Text(s.snapshot.clone()),
        SortBy::Duration => Key::Num(s.duration_in_millis() as i128),
        SortBy::IndexCount => Key::Num(s.indices.len() as i128),
        SortBy::Size => Key::Num(s.size_in_bytes as i128),
    }
}

fn key_string(k: &Key) -> String {
    match k {
        Key::Num(n) => n.to_string(),
        Key::Text(t) => t.clone(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    pub sort: SortBy,
    pub descending: bool,
    pub size: Option<usize>,
    pub after: Option<String>,
}

/// A listing's parameters as text, the way a query string, a command line
/// or the inspector's page hands them over; `None` for one not given.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListParams<'a> {
    /// Sort key; `start_time` when not given.
    pub sort: Option<&'a str>,
    /// `asc` (the default) or `desc`.
    pub order: Option<&'a str>,
    /// Page size; all snapshots when not given.
    pub size: Option<&'a str>,
    /// Cursor from a previous page's `next`; empty means the first page.
    pub after: Option<&'a str>,
}

impl ListParams<'_> {
    /// The query these parameters ask for. Like Elasticsearch's snapshot
    /// listing, an unknown sort or order is refused rather than read as a
    /// default.
    pub fn parse(&self) -> Result<ListQuery, ListingError> {
        let sort = self.sort.map_or(Ok(SortBy::default()), str::parse)?;
        let descending = match self.order.unwrap_or("asc") {
            "asc" => false,
            "desc" => true,
            other => return Err(ListingError::BadOrder(other.to_string())),
        };
        let size = self
            .size
            .map(|s| {
                s.parse::<usize>()
                    .map_err(|_| ListingError::BadSize(s.to_string()))
            })
            .transpose()?;
        let after = self.after.filter(|a| !a.is_empty()).map(str::to_string);
        Ok(ListQuery {
            sort,
            descending,
            size,
            after,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    pub snapshots: Vec<SnapshotSummary>,
    pub total: usize,
    pub remaining: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Sorts (ties broken by name) and pages the snapshots.
pub fn list(snapshots: &[SnapshotSummary], q: &ListQuery) -> Result<Page, ListingError> {
    let mut all: Vec<(Key, &SnapshotSummary)> =
        snapshots.iter().map(|s| (key(s, q.sort), s)).collect();
    let order = |a: (&Key, &str), b: (&Key, &str)| {
        let o = a.0.cmp(b.0).then_with(|| a.1.cmp(b.1));
        if q.descending {
            o.reverse()
        } else {
            o
        }
    };
    all.sort_by(|a, b| order((&a.0, &a.1.snapshot), (&b.0, &b.1.snapshot)));
    let total = all.len();
    let start = match &q.after {
        None => 0,
        Some(c) => {
            let (value, name) = c
                .rsplit_once(',')
                .ok_or_else(|| ListingError::BadCursor(c.clone()))?;
            let k = match q.sort {
                SortBy::Name => Key::Text(value.to_string()),
                _ => Key::Num(
                    value
                        .parse()
                        .map_err(|_| ListingError::BadCursor(c.clone()))?,
                ),
            };
            all.iter()
                .position(|e| order((&e.0, &e.1.snapshot), (&k, name)) == Ordering::Greater)
                .unwrap_or(total)
        }
    };
    let end = q.size.map_or(total, |n| start.saturating_add(n).min(total));
    let page: Vec<SnapshotSummary> = all[start..end].iter().map(|(_, s)| (*s).clone()).collect();
    let next = (end < total && end > start).then(|| {
        let (k, s) = &all[end - 1];
        format!("{},{}", key_string(k), s.snapshot)
    });
    Ok(Page {
        snapshots: page,
        total,
        remaining: total - end,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::summary;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn s(name: &str, start: i64, size: u64) -> SnapshotSummary {
        SnapshotSummary {
            start_time_in_millis: start,
            end_time_in_millis: start + 10,
            size_in_bytes: size,
            ..summary(name)
        }
    }

    fn names(p: &Page) -> Vec<&str> {
        p.snapshots.iter().map(|s| s.snapshot.as_str()).collect()
    }

    #[test]
    fn sorts_and_pages_with_cursors_until_the_end() {
        let all = vec![s("c", 3, 10), s("a", 1, 30), s("b", 2, 20), s("d", 2, 5)];
        let mut q = ListQuery {
            size: Some(2),
            ..Default::default()
        };
        let p1 = list(&all, &q).unwrap();
        assert_eq!(names(&p1), ["a", "b"]);
        assert_eq!((p1.total, p1.remaining), (4, 2));
        q.after = p1.next.clone();
        let p2 = list(&all, &q).unwrap();
        assert_eq!(names(&p2), ["d", "c"]);
        assert_eq!(p2.next, None);
        let by_size = list(
            &all,
            &ListQuery {
                sort: SortBy::Size,
                descending: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(names(&by_size), ["a", "b", "c", "d"]);
        let by_name = ListQuery {
            sort: SortBy::Name,
            size: Some(3),
            ..Default::default()
        };
        let n1 = list(&all, &by_name).unwrap();
        assert_eq!(n1.next.as_deref(), Some("c,c"));
        let n2 = list(
            &all,
            &ListQuery {
                after: n1.next,
                ..by_name
            },
        )
        .unwrap();
        assert_eq!(names(&n2), ["d"]);
    }

    #[test]
    fn parses_parameters_with_defaults_for_the_missing_ones() {
        assert_eq!(ListParams::default().parse(), Ok(ListQuery::default()));
        let q = ListParams {
            sort: Some("index_count"),
            order: Some("desc"),
            size: Some("25"),
            after: Some("3,snap-1"),
        }
        .parse()
        .unwrap();
        assert_eq!(
            q,
            ListQuery {
                sort: SortBy::IndexCount,
                descending: true,
                size: Some(25),
                after: Some("3,snap-1".into()),
            }
        );
        let asc = ListParams {
            order: Some("asc"),
            after: Some(""),
            ..Default::default()
        };
        assert_eq!(asc.parse(), Ok(ListQuery::default()), "empty cursor");
    }

    #[test]
    fn unknown_orders_sorts_and_sizes_are_refused() {
        let order = |o| {
            ListParams {
                order: Some(o),
                ..Default::default()
            }
            .parse()
        };
        for bad in ["ascending", "DESC", "", "up"] {
            assert_eq!(order(bad), Err(ListingError::BadOrder(bad.into())));
        }
        assert_eq!(
            order("sideways").unwrap_err().to_string(),
            "unknown order [sideways]: use asc or desc"
        );
        let sort = ListParams {
            sort: Some("age"),
            ..Default::default()
        };
        assert_eq!(sort.parse(), Err(ListingError::BadSort("age".into())));
        for bad in ["-1", "ten", "1.5", ""] {
            let size = ListParams {
                size: Some(bad),
                ..Default::default()
            };
            assert_eq!(size.parse(), Err(ListingError::BadSize(bad.into())));
        }
    }

    #[test]
    fn bad_sorts_and_cursors_are_errors() {
        assert!("bogus".parse::<SortBy>().is_err());
        let q = ListQuery {
            after: Some("nocomma".into()),
            ..Default::default()
        };
        assert!(list(&[s("a", 1, 1)], &q).is_err());
        let q = ListQuery {
            after: Some("x,a".into()),
            ..Default::default()
        };
        assert!(list(&[s("a", 1, 1)], &q).is_err());
    }
}
