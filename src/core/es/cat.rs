//! `_cat` tables (reference 6): columns with aliases and alignment, the
//! `v`, `h`, `s`, `help`, `format=json`, `time` and `bytes` parameters,
//! and text aligned as ES's `RestTable` prints it (one space between
//! columns, each padded to its widest cell, right-aligned ones on the left).

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::errors::EsError;
use super::get_snapshots::Candidate;
use super::params::Params;
use super::patterns::simple_match;
use super::units::{byte_size, bytes_in_unit, hms_utc, time_in_unit, time_value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub align: Align,
    pub default: bool,
    pub desc: &'static str,
}

const fn col(
    name: &'static str,
    aliases: &'static [&'static str],
    align: Align,
    desc: &'static str,
) -> Column {
    Column {
        name,
        aliases,
        align,
        default: true,
        desc,
    }
}

use Align::{Left as L, Right as R};

/// `_cat/snapshots` (`RestSnapshotAction`).
pub const SNAPSHOTS: [Column; 13] = [
    col("id", &["snapshot"], L, "unique snapshot"),
    col("repository", &["re", "repo"], L, "repository name"),
    col("status", &["s"], R, "snapshot name"),
    col(
        "start_epoch",
        &["ste", "startEpoch"],
        L,
        "start time in seconds since 1970-01-01 00:00:00",
    ),
    col(
        "start_time",
        &["sti", "startTime"],
        L,
        "start time in HH:MM:SS",
    ),
    col(
        "end_epoch",
        &["ete", "endEpoch"],
        L,
        "end time in seconds since 1970-01-01 00:00:00",
    ),
    col("end_time", &["eti", "endTime"], L, "end time in HH:MM:SS"),
    col("duration", &["dur"], R, "duration"),
    col("indices", &["i"], R, "number of indices"),
    col(
        "successful_shards",
        &["ss"],
        R,
        "number of successful shards",
    ),
    col("failed_shards", &["fs"], R, "number of failed shards"),
    col("total_shards", &["ts"], R, "number of total shards"),
    Column {
        default: false,
        ..col("reason", &["r"], L, "reason for failures")
    },
];

/// `_cat/repositories` (`RestRepositoriesAction`).
pub const REPOSITORIES: [Column; 2] = [
    col("id", &["repoId"], L, "unique repository id"),
    col("type", &["t"], R, "repository type"),
];

/// `_cat/indices` default columns (8.x).
pub const INDICES: [Column; 10] = [
    col("health", &["h"], L, "current health status"),
    col("status", &["s"], L, "open/close status"),
    col("index", &["i", "idx"], L, "index name"),
    col("uuid", &["id", "uuid"], L, "index uuid"),
    col(
        "pri",
        &["p", "shards.primary", "shardsPrimary"],
        R,
        "number of primary shards",
    ),
    col(
        "rep",
        &["r", "shards.replica", "shardsReplica"],
        R,
        "number of replica shards",
    ),
    col("docs.count", &["dc", "docsCount"], R, "available docs"),
    col("docs.deleted", &["dd", "docsDeleted"], R, "deleted docs"),
    col(
        "store.size",
        &["ss", "storeSize"],
        R,
        "store size of primaries & replicas",
    ),
    col("pri.store.size", &[], R, "store size of primaries"),
];

/// `_cat/recovery` default columns.
pub const RECOVERY: [Column; 22] = [
    col("index", &["i", "idx"], L, "index name"),
    col("shard", &["s", "sh"], R, "shard name"),
    col("time", &["t", "ti"], R, "recovery time"),
    col("type", &["ty"], L, "recovery type"),
    col("stage", &["st"], L, "recovery stage"),
    col("source_host", &["shost"], L, "source host"),
    col("source_node", &["snode"], L, "source node name"),
    col("target_host", &["thost"], L, "target host"),
    col("target_node", &["tnode"], L, "target node name"),
    col("repository", &["rep"], L, "repository"),
    col("snapshot", &["snap"], L, "snapshot"),
    col("files", &["f"], R, "number of files to recover"),
    col("files_recovered", &["fr"], R, "files recovered"),
    col("files_percent", &["fp"], R, "percent of files recovered"),
    col("files_total", &["tf"], R, "total number of files"),
    col("bytes", &["b"], R, "number of bytes to recover"),
    col("bytes_recovered", &["br"], R, "bytes recovered"),
    col("bytes_percent", &["bp"], R, "percent of bytes recovered"),
    col("bytes_total", &["tb"], R, "total number of bytes"),
    col(
        "translog_ops",
        &["to"],
        R,
        "number of translog ops to recover",
    ),
    col(
        "translog_ops_recovered",
        &["tor"],
        R,
        "translog ops recovered",
    ),
    col(
        "translog_ops_percent",
        &["top"],
        R,
        "percent of translog ops recovered",
    ),
];

/// A cell: text, or a time or size the `time`/`bytes` parameters render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Empty,
    Text(String),
    Millis(i64),
    Bytes(u64),
}

impl Cell {
    pub fn text(s: impl ToString) -> Cell {
        Cell::Text(s.to_string())
    }

    fn render(&self, p: &CatParams) -> Option<String> {
        match self {
            Cell::Empty => None,
            Cell::Text(t) => Some(t.clone()),
            Cell::Millis(ms) => Some(match &p.time {
                Some(u) => time_in_unit(*ms, u).unwrap_or_default(),
                None => time_value(*ms),
            }),
            Cell::Bytes(b) => Some(match &p.bytes {
                Some(u) => bytes_in_unit(*b, u).unwrap_or_default(),
                None => byte_size(*b),
            }),
        }
    }

    fn sort_cmp(&self, other: &Cell) -> Ordering {
        match (self, other) {
            (Cell::Millis(a), Cell::Millis(b)) => a.cmp(b),
            (Cell::Bytes(a), Cell::Bytes(b)) => a.cmp(b),
            (Cell::Text(a), Cell::Text(b)) => match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                _ => a.cmp(b),
            },
            (Cell::Empty, Cell::Empty) => Ordering::Equal,
            (Cell::Empty, _) => Ordering::Greater,
            (_, Cell::Empty) => Ordering::Less,
            (a, b) => format!("{a:?}").cmp(&format!("{b:?}")),
        }
    }
}

/// The `_cat` query parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CatParams {
    pub v: bool,
    pub help: bool,
    pub json: bool,
    pub h: Option<Vec<String>>,
    /// Column and descending?
    pub s: Vec<(String, bool)>,
    pub time: Option<String>,
    pub bytes: Option<String>,
}

/// Parameters every `_cat` endpoint accepts.
pub const ALLOWED: [&str; 8] = [
    "v",
    "help",
    "format",
    "h",
    "s",
    "time",
    "bytes",
    "master_timeout",
];

impl CatParams {
    pub fn parse(p: &Params) -> Result<CatParams, EsError> {
        let json = match p.get("format") {
            None | Some("text") | Some("txt") => false,
            Some("json") => true,
            Some(f) => {
                return Err(EsError::illegal_argument(format!(
                    "Unsupported format [{f}]"
                )))
            }
        };
        let list = |k: &str| {
            p.get(k).map(|v| {
                v.split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
        };
        let s = list("s")
            .unwrap_or_default()
            .into_iter()
            .map(|c| match c.rsplit_once(':') {
                Some((name, "desc")) => Ok((name.to_string(), true)),
                Some((name, "asc")) => Ok((name.to_string(), false)),
                Some(_) => Err(EsError::illegal_argument(format!(
                    "Unsupported sort order in [{c}]"
                ))),
                None => Ok((c, false)),
            })
            .collect::<Result<_, _>>()?;
        let time = p.get("time").map(str::to_string);
        if let Some(t) = &time {
            time_in_unit(0, t)
                .ok_or_else(|| EsError::illegal_argument(format!("unknown time unit [{t}]")))?;
        }
        let bytes = p.get("bytes").map(str::to_string);
        if let Some(b) = &bytes {
            bytes_in_unit(0, b)
                .ok_or_else(|| EsError::illegal_argument(format!("unknown byte unit [{b}]")))?;
        }
        Ok(CatParams {
            v: p.bool("v", false)?,
            help: p.bool("help", false)?,
            json,
            h: list("h"),
            s,
            time,
            bytes,
        })
    }
}

fn find(columns: &[Column], name: &str) -> Option<usize> {
    columns
        .iter()
        .position(|c| c.name == name || c.aliases.contains(&name))
}

/// The columns shown: `h` (names, aliases or wildcards over names), or the
/// defaults.
fn shown(columns: &[Column], h: &Option<Vec<String>>) -> Vec<usize> {
    match h {
        None => (0..columns.len()).filter(|&i| columns[i].default).collect(),
        Some(list) => {
            let mut out = Vec::new();
            for name in list {
                let hits: Vec<usize> = match find(columns, name) {
                    Some(i) => vec![i],
                    None => (0..columns.len())
                        .filter(|&i| simple_match(name, columns[i].name))
                        .collect(),
                };
                out.extend(
                    hits.into_iter()
                        .filter(|i| !out.contains(i))
                        .collect::<Vec<_>>(),
                );
            }
            out
        }
    }
}

/// What a `_cat` endpoint answers.
#[derive(Debug, Clone, PartialEq)]
pub enum CatOutput {
    /// `text/plain; charset=UTF-8`.
    Text(String),
    /// An array of objects keyed by full column name, every value a string.
    Json(Value),
}

/// Renders `rows` (cells in `columns` order) as the parameters ask.
pub fn render(columns: &[Column], rows: &[Vec<Cell>], p: &CatParams) -> Result<CatOutput, EsError> {
    if p.help {
        let help: Vec<Vec<String>> = columns
            .iter()
            .map(|c| vec![c.name.to_string(), c.aliases.join(","), c.desc.to_string()])
            .collect();
        let lines = help
            .iter()
            .map(|r| r.iter().map(|s| Some(s.clone())).collect())
            .collect();
        return Ok(CatOutput::Text(align(&[L, L, L], lines, " | ")));
    }
    let mut order: Vec<&Vec<Cell>> = rows.iter().collect();
    let mut keys = Vec::new();
    for (name, desc) in &p.s {
        let i = find(columns, name).ok_or_else(|| {
            EsError::illegal_argument(format!("Unable to sort by unknown sort key `{name}`"))
        })?;
        keys.push((i, *desc));
    }
    order.sort_by(|a, b| {
        keys.iter()
            .map(|&(i, desc)| {
                let o = a[i].sort_cmp(&b[i]);
                if desc {
                    o.reverse()
                } else {
                    o
                }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    let cols = shown(columns, &p.h);
    let cells: Vec<Vec<Option<String>>> = order
        .iter()
        .map(|r| cols.iter().map(|&i| r[i].render(p)).collect())
        .collect();
    if p.json {
        let objects = cells
            .into_iter()
            .map(|r| {
                let m: Map<String, Value> = cols
                    .iter()
                    .zip(r)
                    .map(|(&i, v)| {
                        (
                            columns[i].name.to_string(),
                            v.map_or(Value::Null, Value::from),
                        )
                    })
                    .collect();
                Value::Object(m)
            })
            .collect();
        return Ok(CatOutput::Json(Value::Array(objects)));
    }
    let mut lines = Vec::new();
    if p.v {
        lines.push(
            cols.iter()
                .map(|&i| Some(columns[i].name.to_string()))
                .collect(),
        );
    }
    lines.extend(cells);
    let aligns: Vec<Align> = cols.iter().map(|&i| columns[i].align).collect();
    Ok(CatOutput::Text(align(&aligns, lines, " ")))
}

fn align(aligns: &[Align], lines: Vec<Vec<Option<String>>>, sep: &str) -> String {
    let width = |i: usize| {
        lines
            .iter()
            .map(|l| l[i].as_deref().unwrap_or("").chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..aligns.len()).map(width).collect();
    let mut out = String::new();
    for l in &lines {
        let parts: Vec<String> = l
            .iter()
            .zip(aligns.iter().zip(&widths))
            .map(|(c, (a, &w))| {
                let c = c.as_deref().unwrap_or("");
                match a {
                    Align::Left => format!("{c:<w$}"),
                    Align::Right => format!("{c:>w$}"),
                }
            })
            .collect();
        out.push_str(parts.join(sep).trim_end());
        out.push('\n');
    }
    out
}

/// One `_cat/snapshots` row (all 13 columns) for a listing candidate;
/// `now_ms` gives a running snapshot's duration.
pub fn snapshot_row<T>(
    c: &Candidate<T>,
    state: &str,
    reason: Option<&str>,
    running: bool,
    now_ms: i64,
) -> Vec<Cell> {
    let start = c.start_time_in_millis;
    let (end, duration) = if running {
        (0, now_ms.saturating_sub(start))
    } else {
        (
            start.saturating_add(c.duration_in_millis),
            c.duration_in_millis,
        )
    };
    vec![
        Cell::text(c.snapshot),
        Cell::text(c.repository),
        Cell::text(state),
        Cell::text(start / 1000),
        Cell::text(hms_utc(start)),
        Cell::text(end / 1000),
        Cell::text(hms_utc(end)),
        Cell::Millis(duration),
        Cell::text(c.index_count),
        Cell::text(c.shards.successful),
        Cell::text(c.shards.failed),
        Cell::text(c.shards.total),
        reason.map_or(Cell::Empty, Cell::text),
    ]
}

/// One `_cat/repositories` row.
pub fn repository_row(name: &str, kind: &str) -> Vec<Cell> {
    vec![Cell::text(name), Cell::text(kind)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::format::manifest::{SnapshotState, SnapshotSummary};
    use crate::core::testing::summary;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn params(pairs: &[(&str, &str)]) -> CatParams {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CatParams::parse(&Params(&v)).unwrap()
    }

    fn rows() -> Vec<Vec<Cell>> {
        let snap = |name: &str, start: i64, dur: i64, n: usize, state| {
            let s = SnapshotSummary {
                start_time_in_millis: start,
                end_time_in_millis: start + dur,
                indices: (0..n).map(|i| i.to_string()).collect(),
                state,
                failures: 1,
                ..summary(name)
            };
            let c = Candidate::stored("repo1", &s, ());
            snapshot_row(&c, s.state.as_str(), None, false, 0)
        };
        vec![
            snap(
                "snap2",
                1_445_634_298_000,
                374_000,
                2,
                SnapshotState::Success,
            ),
            snap(
                "snap1",
                1_445_616_705_000,
                273_000,
                5,
                SnapshotState::Partial,
            ),
        ]
    }

    fn text(out: CatOutput) -> String {
        match out {
            CatOutput::Text(t) => t,
            CatOutput::Json(j) => panic!("json {j}"),
        }
    }

    #[test]
    fn snapshots_print_aligned_with_a_header() {
        let out = text(render(&SNAPSHOTS, &rows(), &params(&[("v", ""), ("s", "id")])).unwrap());
        let expected = "\
id    repository  status start_epoch start_time end_epoch  end_time duration indices successful_shards failed_shards total_shards
snap1 repo1      PARTIAL 1445616705  16:11:45   1445616978 16:16:18     4.5m       5                 4             1            5
snap2 repo1      SUCCESS 1445634298  21:04:58   1445634672 21:11:12     6.2m       2                 2             0            2
";
        assert_eq!(out, expected);
    }

    #[test]
    fn h_selects_and_s_sorts_descending() {
        let p = params(&[("h", "id,dur,i"), ("s", "indices:desc")]);
        assert_eq!(
            text(render(&SNAPSHOTS, &rows(), &p).unwrap()),
            "snap1 4.5m 5\nsnap2 6.2m 2\n"
        );
        let p = params(&[("h", "*_shards"), ("s", "ts")]);
        assert_eq!(
            text(render(&SNAPSHOTS, &rows(), &p).unwrap()),
            "2 0 2\n4 1 5\n"
        );
        let p = params(&[("h", "id,duration"), ("time", "s"), ("s", "dur")]);
        assert_eq!(
            text(render(&SNAPSHOTS, &rows(), &p).unwrap()),
            "snap1 273\nsnap2 374\n"
        );
        let bad = params(&[("s", "nope")]);
        assert_eq!(
            render(&SNAPSHOTS, &rows(), &bad).unwrap_err().reason,
            "Unable to sort by unknown sort key `nope`"
        );
    }

    #[test]
    fn json_keys_by_full_name_with_string_values() {
        let p = params(&[("format", "json"), ("h", "id,ste,r")]);
        let CatOutput::Json(j) = render(&SNAPSHOTS, &rows(), &p).unwrap() else {
            panic!()
        };
        assert_eq!(
            j,
            serde_json::json!([{"id":"snap2","start_epoch":"1445634298","reason":null},{"id":"snap1","start_epoch":"1445616705","reason":null}])
        );
    }

    #[test]
    fn repositories_right_align_the_type_and_help_lists_columns() {
        let rows = vec![
            repository_row("repo1", "fs"),
            repository_row("repo-two", "s3"),
        ];
        let out = text(render(&REPOSITORIES, &rows, &params(&[("v", "true")])).unwrap());
        assert_eq!(out, "id       type\nrepo1      fs\nrepo-two   s3\n");
        let help = text(render(&REPOSITORIES, &rows, &params(&[("help", "")])).unwrap());
        assert_eq!(
            help,
            "id   | repoId | unique repository id\ntype | t      | repository type\n"
        );
    }

    #[test]
    fn bad_parameters_are_refused() {
        let parse = |pairs: &[(&str, &str)]| {
            let v: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            CatParams::parse(&Params(&v))
        };
        assert!(parse(&[("format", "xml")]).is_err());
        assert!(parse(&[("time", "weeks")]).is_err());
        assert!(parse(&[("bytes", "bits")]).is_err());
        assert!(parse(&[("s", "id:up")]).is_err());
        let running = snapshot_row(
            &Candidate::stored("r", &summary("s"), ()),
            "IN_PROGRESS",
            None,
            true,
            90_000,
        );
        assert_eq!(running[5], Cell::text(0));
        assert_eq!(running[7], Cell::Millis(90_000));
        let cells = vec![vec![Cell::Bytes(3 << 20)]];
        let cols = [col("size", &[], R, "")];
        assert_eq!(text(render(&cols, &cells, &params(&[])).unwrap()), "3mb\n");
        assert_eq!(
            text(render(&cols, &cells, &params(&[("bytes", "kb")])).unwrap()),
            "3072\n"
        );
    }
}
