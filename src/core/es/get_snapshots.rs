//! `GET /_snapshot/<repos>/<snapshots>` (reference 3.3): its parameters,
//! their validation, and sorting, filtering and paging the matches.
//!
//! ES's rules differ from snapkeep's own listing
//! ([`crate::core::policy::listing`], used by the CLI and the Worker) in
//! ways that change results, so this is a separate implementation: matches
//! span several repositories, ties break by name, uuid and then repository,
//! the sort keys count shards rather than bytes, `offset` and
//! `from_sort_value` exist, and the `next` cursor is URL-safe base64 (with
//! padding) of `"<sortValue>,<repository>,<snapshot>"`.

use std::borrow::Cow;
use std::cmp::Ordering;

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use serde::Serialize;

use super::errors::EsError;
use super::params::Params;
use super::patterns::NamePatterns;
use super::snapshot_info::{InfoOptions, Running, Shards, SnapshotInfo};
use crate::core::format::manifest::SnapshotSummary;

/// Parameters the get-snapshots endpoint accepts (besides the common ones).
pub const ALLOWED: [&str; 14] = [
    "master_timeout",
    "ignore_unavailable",
    "verbose",
    "index_details",
    "index_names",
    "include_repository",
    "sort",
    "order",
    "size",
    "offset",
    "after",
    "from_sort_value",
    "slm_policy_filter",
    "human",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    StartTime,
    Name,
    Duration,
    IndexCount,
    ShardCount,
    FailedShardCount,
    Repository,
}

impl SortKey {
    pub fn parse(s: &str) -> Result<SortKey, EsError> {
        Ok(match s {
            "start_time" => SortKey::StartTime,
            "name" => SortKey::Name,
            "duration" => SortKey::Duration,
            "index_count" => SortKey::IndexCount,
            "shard_count" => SortKey::ShardCount,
            "failed_shard_count" => SortKey::FailedShardCount,
            "repository" => SortKey::Repository,
            _ => return Err(EsError::illegal_argument(format!("unknown sort key [{s}]"))),
        })
    }

    fn is_text(self) -> bool {
        matches!(self, SortKey::Name | SortKey::Repository)
    }
}

/// A parsed, validated get-snapshots query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetSnapshotsQuery {
    pub ignore_unavailable: bool,
    pub info: InfoOptions,
    pub sort: SortKey,
    pub descending: bool,
    /// `None`: no limit (`size` absent or `-1`).
    pub size: Option<usize>,
    pub offset: usize,
    pub after: Option<After>,
    pub from_sort_value: Option<String>,
}

/// A decoded `after` cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    pub value: String,
    pub repository: String,
    pub snapshot: String,
}

impl After {
    pub fn encode(&self) -> String {
        URL_SAFE.encode(format!(
            "{},{},{}",
            self.value, self.repository, self.snapshot
        ))
    }

    /// 400 `invalid ?after parameter [p]` unless `p` is a cursor.
    pub fn decode(p: &str) -> Result<After, EsError> {
        let bad = || EsError::illegal_argument(format!("invalid ?after parameter [{p}]"));
        let bytes = URL_SAFE.decode(p).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let mut parts = text.splitn(3, ',');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(v), Some(r), Some(s)) => Ok(After {
                value: v.into(),
                repository: r.into(),
                snapshot: s.into(),
            }),
            _ => Err(bad()),
        }
    }
}

fn parse_int(p: &Params, name: &str) -> Result<Option<i64>, EsError> {
    p.get(name)
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                EsError::illegal_argument(format!(
                    "Failed to parse int parameter [{name}] with value [{v}]"
                ))
            })
        })
        .transpose()
}

impl GetSnapshotsQuery {
    /// Reads and validates the query, as `GetSnapshotsRequest.validate()`
    /// does; the node checks unknown names against [`ALLOWED`] first.
    pub fn parse(p: &Params) -> Result<GetSnapshotsQuery, EsError> {
        let info = InfoOptions {
            verbose: p.bool("verbose", true)?,
            include_repository: p.bool("include_repository", true)?,
            index_names: p.bool("index_names", true)?,
            human: p.bool("human", false)?,
        };
        p.bool("index_details", false)?;
        let sort = p
            .get("sort")
            .map_or(Ok(SortKey::default()), SortKey::parse)?;
        let descending = match p.get("order").unwrap_or("asc") {
            "asc" | "ASC" => false,
            "desc" | "DESC" => true,
            o => return Err(EsError::illegal_argument(format!("unknown order [{o}]"))),
        };
        let size = parse_int(p, "size")?;
        let offset = parse_int(p, "offset")?;
        let after = p.get("after").map(After::decode).transpose()?;
        let from_sort_value = p.get("from_sort_value").map(str::to_string);
        let mut problems = Vec::new();
        if matches!(size, Some(n) if n == 0 || n < -1) {
            problems.push("size must be -1 or greater than 0");
        }
        if offset.is_some_and(|o| o < 0) {
            problems.push("offset must be >= 0");
        }
        if !info.verbose {
            let checks = [
                (
                    sort != SortKey::StartTime,
                    "can't use non-default sort with verbose=false",
                ),
                (
                    size.is_some_and(|n| n > 0),
                    "can't use size limit with verbose=false",
                ),
                (
                    offset.is_some_and(|o| o > 0),
                    "can't use offset with verbose=false",
                ),
                (after.is_some(), "can't use after with verbose=false"),
                (
                    descending,
                    "can't use non-default sort order with verbose=false",
                ),
                (
                    p.get("slm_policy_filter").is_some(),
                    "can't use slm policy filter with verbose=false",
                ),
                (
                    from_sort_value.is_some(),
                    "can't use from_sort_value with verbose=false",
                ),
            ];
            problems.extend(checks.iter().filter(|c| c.0).map(|c| c.1));
        } else {
            if after.is_some() && offset.is_some_and(|o| o > 0) {
                problems.push("can't use after and offset simultaneously");
            }
            if after.is_some() && from_sort_value.is_some() {
                problems.push("can't use after and from_sort_value simultaneously");
            }
        }
        if !problems.is_empty() {
            return Err(EsError::action_request_validation(&problems));
        }
        Ok(GetSnapshotsQuery {
            ignore_unavailable: p.bool("ignore_unavailable", false)?,
            info,
            sort,
            descending,
            size: size.filter(|&n| n > 0).map(|n| n as usize),
            offset: offset.unwrap_or(0) as usize,
            after,
            from_sort_value,
        })
    }
}

/// What sorting and paging need of one match, and the caller's `item`
/// (whatever it renders the match from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a, T> {
    pub repository: &'a str,
    pub snapshot: &'a str,
    pub uuid: &'a str,
    pub start_time_in_millis: i64,
    pub duration_in_millis: i64,
    pub index_count: usize,
    pub shards: Shards,
    pub item: T,
}

impl<'a, T> Candidate<'a, T> {
    /// A stored snapshot (shards estimated from the summary; see
    /// [`Shards::estimate`]).
    pub fn stored(repo: &'a str, s: &'a SnapshotSummary, item: T) -> Candidate<'a, T> {
        Candidate {
            repository: repo,
            snapshot: &s.snapshot,
            uuid: &s.uuid,
            start_time_in_millis: s.start_time_in_millis,
            duration_in_millis: s.duration_in_millis(),
            index_count: s.indices.len(),
            shards: Shards::estimate(s),
            item,
        }
    }

    /// A running snapshot (duration 0, as ES reports it).
    pub fn running(repo: &'a str, r: &'a Running, item: T) -> Candidate<'a, T> {
        Candidate {
            repository: repo,
            snapshot: &r.snapshot,
            uuid: &r.uuid,
            start_time_in_millis: r.start_time_in_millis,
            duration_in_millis: 0,
            index_count: r.indices.len(),
            shards: Shards::of(r.indices.len(), 0),
            item,
        }
    }

    fn key(&self, by: SortKey) -> Key<'a> {
        match by {
            SortKey::StartTime => Key::Num(self.start_time_in_millis),
            SortKey::Name => Key::Text(Cow::Borrowed(self.snapshot)),
            SortKey::Duration => Key::Num(self.duration_in_millis),
            SortKey::IndexCount => Key::Num(self.index_count as i64),
            SortKey::ShardCount => Key::Num(self.shards.total as i64),
            SortKey::FailedShardCount => Key::Num(self.shards.failed as i64),
            SortKey::Repository => Key::Text(Cow::Borrowed(self.repository)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key<'a> {
    Num(i64),
    /// Borrowed from the candidates: a listing of 10,000 snapshots copies
    /// no names.
    Text(Cow<'a, str>),
}

impl Key<'_> {
    fn parse(by: SortKey, v: &str) -> Option<Key<'static>> {
        if by.is_text() {
            Some(Key::Text(Cow::Owned(v.to_string())))
        } else {
            v.parse().ok().map(Key::Num)
        }
    }

    fn text(&self) -> String {
        match self {
            Key::Num(n) => n.to_string(),
            Key::Text(t) => t.to_string(),
        }
    }
}

/// One page of matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected<T> {
    pub items: Vec<T>,
    pub total: usize,
    pub remaining: usize,
    pub next: Option<String>,
}

/// Sorts, filters (`from_sort_value`, `after`) and pages the matches.
pub fn select<T>(
    q: &GetSnapshotsQuery,
    matches: Vec<Candidate<'_, T>>,
) -> Result<Selected<T>, EsError> {
    let by = q.sort;
    // Keys are computed where compared (numbers, or names borrowed from
    // the candidates): a second vector of 10,000 keyed copies cost more
    // than the comparisons.
    let mut keyed = matches;
    let directed = |o: Ordering| if q.descending { o.reverse() } else { o };
    if let Some(from) = &q.from_sort_value {
        let from = Key::parse(by, from).ok_or_else(|| {
            EsError::illegal_argument(format!("invalid from_sort_value [{from}]"))
        })?;
        keyed.retain(|c| directed(c.key(by).cmp(&from)) != Ordering::Less);
    }
    keyed.sort_by(|a, b| {
        directed(
            a.key(by)
                .cmp(&b.key(by))
                .then_with(|| a.snapshot.cmp(b.snapshot))
                .then_with(|| a.uuid.cmp(b.uuid))
                .then_with(|| a.repository.cmp(b.repository)),
        )
    });
    let total = keyed.len();
    let start = match &q.after {
        None => 0,
        Some(a) => {
            let bad =
                || EsError::illegal_argument(format!("invalid ?after parameter [{}]", a.encode()));
            let ak = Key::parse(by, &a.value).ok_or_else(bad)?;
            let past = |c: &Candidate<T>| {
                directed(
                    c.key(by)
                        .cmp(&ak)
                        .then_with(|| c.snapshot.cmp(&a.snapshot))
                        .then_with(|| c.repository.cmp(&a.repository)),
                ) == Ordering::Greater
            };
            keyed.iter().position(past).unwrap_or(total)
        }
    };
    let start = start.saturating_add(q.offset).min(total);
    let end = q.size.map_or(total, |n| start.saturating_add(n).min(total));
    let next = (end < total && end > start).then(|| {
        let c = &keyed[end - 1];
        After {
            value: c.key(by).text(),
            repository: c.repository.to_string(),
            snapshot: c.snapshot.to_string(),
        }
        .encode()
    });
    let items = keyed
        .into_iter()
        .skip(start)
        .take(end - start)
        .map(|c| c.item)
        .collect();
    Ok(Selected {
        items,
        total,
        remaining: total - end,
        next,
    })
}

/// 404 `snapshot_missing_exception` for the first name `patterns` gives
/// literally that is not among `present` (unless `ignore_unavailable`).
pub fn check_named_exist<'a>(
    repo: &str,
    patterns: &NamePatterns,
    present: impl IntoIterator<Item = &'a str> + Clone,
    ignore_unavailable: bool,
) -> Result<(), EsError> {
    if ignore_unavailable {
        return Ok(());
    }
    for name in patterns.literal_names() {
        if !present.clone().into_iter().any(|p| p == name) {
            return Err(EsError::snapshot_missing(repo, name));
        }
    }
    Ok(())
}

/// The response body: `{"snapshots":[..],"next"?,"total","remaining"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GetSnapshotsResponse {
    pub snapshots: Vec<SnapshotInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    pub total: usize,
    pub remaining: usize,
}

impl GetSnapshotsResponse {
    pub fn new(page: Selected<SnapshotInfo>) -> GetSnapshotsResponse {
        GetSnapshotsResponse {
            snapshots: page.items,
            next: page.next,
            total: page.total,
            remaining: page.remaining,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::summary;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn query(pairs: &[(&str, &str)]) -> Result<GetSnapshotsQuery, EsError> {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        GetSnapshotsQuery::parse(&Params(&v))
    }

    fn cand(
        repo: &'static str,
        name: &'static str,
        start: i64,
        indices: usize,
    ) -> Candidate<'static, String> {
        let s = SnapshotSummary {
            start_time_in_millis: start,
            end_time_in_millis: start + 100 * indices as i64,
            indices: (0..indices).map(|i| format!("i{i}")).collect(),
            ..summary(name)
        };
        let c = Candidate::stored(repo, &s, format!("{repo}/{name}"));
        Candidate {
            repository: repo,
            snapshot: name,
            uuid: name,
            start_time_in_millis: c.start_time_in_millis,
            duration_in_millis: c.duration_in_millis,
            index_count: c.index_count,
            shards: c.shards,
            item: c.item,
        }
    }

    fn all() -> Vec<Candidate<'static, String>> {
        vec![
            cand("r1", "c", 3, 1),
            cand("r1", "a", 1, 3),
            cand("r2", "b", 2, 2),
            cand("r2", "a", 2, 1),
        ]
    }

    #[test]
    fn sorts_by_start_time_then_name_then_repository() {
        let page = select(&query(&[]).unwrap(), all()).unwrap();
        assert_eq!(page.items, ["r1/a", "r2/a", "r2/b", "r1/c"]);
        assert_eq!((page.total, page.remaining, page.next), (4, 0, None));
        let q = query(&[("sort", "repository"), ("order", "desc")]).unwrap();
        assert_eq!(
            select(&q, all()).unwrap().items,
            ["r2/b", "r2/a", "r1/c", "r1/a"]
        );
        let q = query(&[("sort", "index_count")]).unwrap();
        assert_eq!(
            select(&q, all()).unwrap().items,
            ["r2/a", "r1/c", "r2/b", "r1/a"]
        );
        let q = query(&[("sort", "duration"), ("order", "desc")]).unwrap();
        assert_eq!(select(&q, all()).unwrap().items[0], "r1/a");
    }

    #[test]
    fn pages_with_es_cursors_until_the_end() {
        let q = query(&[("size", "2")]).unwrap();
        let p1 = select(&q, all()).unwrap();
        assert_eq!(p1.items, ["r1/a", "r2/a"]);
        assert_eq!((p1.total, p1.remaining), (4, 2));
        let next = p1.next.clone().unwrap();
        assert_eq!(URL_SAFE.decode(&next).unwrap(), b"2,r2,a");
        let q2 = query(&[("size", "2"), ("after", &next)]).unwrap();
        let p2 = select(&q2, all()).unwrap();
        assert_eq!(p2.items, ["r2/b", "r1/c"]);
        assert_eq!((p2.total, p2.remaining, p2.next), (4, 0, None));
        let by_name = query(&[("sort", "name"), ("size", "1"), ("offset", "1")]).unwrap();
        let p = select(&by_name, all()).unwrap();
        assert_eq!(p.items, ["r2/a"]);
        assert_eq!(p.remaining, 2);
        assert_eq!(URL_SAFE.decode(p.next.unwrap()).unwrap(), b"a,r2,a");
    }

    #[test]
    fn from_sort_value_starts_at_a_value_inclusively() {
        let q = query(&[("from_sort_value", "2")]).unwrap();
        let p = select(&q, all()).unwrap();
        assert_eq!(p.items, ["r2/a", "r2/b", "r1/c"]);
        assert_eq!(p.total, 3);
        let q = query(&[("from_sort_value", "2"), ("order", "desc")]).unwrap();
        assert_eq!(select(&q, all()).unwrap().items, ["r2/b", "r2/a", "r1/a"]);
        let q = query(&[("sort", "name"), ("from_sort_value", "b")]).unwrap();
        assert_eq!(select(&q, all()).unwrap().items, ["r2/b", "r1/c"]);
        let q = query(&[("from_sort_value", "x")]).unwrap();
        assert_eq!(
            select(&q, all()).unwrap_err().kind,
            "illegal_argument_exception"
        );
    }

    #[test]
    fn validation_failures_use_es_messages() {
        let reason = |pairs: &[(&str, &str)]| query(pairs).unwrap_err().reason;
        assert_eq!(
            reason(&[("size", "0")]),
            "Validation Failed: 1: size must be -1 or greater than 0;"
        );
        assert_eq!(
            reason(&[("verbose", "false"), ("sort", "name"), ("size", "3")]),
            "Validation Failed: 1: can't use non-default sort with verbose=false;2: can't use size limit with verbose=false;"
        );
        let cursor = After {
            value: "1".into(),
            repository: "r".into(),
            snapshot: "s".into(),
        }
        .encode();
        assert_eq!(
            reason(&[("after", &cursor), ("offset", "2"), ("from_sort_value", "1")]),
            "Validation Failed: 1: can't use after and offset simultaneously;2: can't use after and from_sort_value simultaneously;"
        );
        assert_eq!(reason(&[("sort", "size")]), "unknown sort key [size]");
        assert_eq!(reason(&[("after", "!!")]), "invalid ?after parameter [!!]");
        assert_eq!(
            reason(&[("after", &URL_SAFE.encode("nocommas"))]),
            format!("invalid ?after parameter [{}]", URL_SAFE.encode("nocommas"))
        );
        assert_eq!(query(&[("size", "-1")]).unwrap().size, None);
        assert_eq!(
            query(&[("size", "x")]).unwrap_err().kind,
            "illegal_argument_exception"
        );
        let q = query(&[("verbose", "false"), ("ignore_unavailable", "")]).unwrap();
        assert!(!q.info.verbose && q.ignore_unavailable);
    }

    #[test]
    fn literal_names_must_exist_unless_ignored() {
        let present = ["a", "b"];
        let p = NamePatterns::parse("a,c*,d");
        let e = check_named_exist("r", &p, present, false).unwrap_err();
        assert_eq!((e.status, e.reason.as_str()), (404, "[r:d] is missing"));
        assert_eq!(check_named_exist("r", &p, present, true), Ok(()));
        assert_eq!(
            check_named_exist("r", &NamePatterns::parse("a,b*"), present, false),
            Ok(())
        );
    }

    #[test]
    fn the_response_serializes_in_es_order() {
        let page = Selected {
            items: vec![],
            total: 3,
            remaining: 1,
            next: Some("eA==".into()),
        };
        let body = serde_json::to_string(&GetSnapshotsResponse::new(page)).unwrap();
        assert_eq!(
            body,
            r#"{"snapshots":[],"next":"eA==","total":3,"remaining":1}"#
        );
    }
}
