//! Time limits for requests to remote storage (edge repositories and
//! S3/Azure/GCS), so a server that accepts and never answers, stalls after
//! its headers, or drips bytes fails the command instead of blocking it.
//!
//! Each HTTP request is bounded by:
//! - `connect_timeout`: TCP (and TLS) connection set-up.
//! - `first_byte_timeout`: from sending the request (connecting included)
//!   to its response headers. An upload of `n` bytes gets `n / min_rate`
//!   more, the time its body may take to go up: object_store's client sends
//!   the body out of sight. The edge client watches its upload body (idle
//!   and rate limits below) and starts this clock once the connection has
//!   taken all of it, allowing for what may still sit in send buffers.
//! - `idle_timeout`: the longest pause between two pieces of a body.
//! - `min_rate`: a body must move at least `min_rate × idle_timeout` bytes
//!   in every `idle_timeout` window.
//!
//! A fixed deadline per request would either cut healthy multi-GiB pack
//! transfers on slow links or let a dripping server hold a request for
//! hours. The rate rule fails a drip within two windows whatever the size,
//! and never fails a transfer that keeps above `min_rate`.
//!
//! Transient failures, these timeouts included, are retried (see
//! [`super::retry`]) until `retry_timeout` has passed since an operation's
//! first attempt: no attempt starts after it, so an operation gives up
//! after at most `retry_timeout` plus one attempt's own limits.
//!
//! Every limit is a `--storage-option KEY=VALUE` or a `SNAPKEEP_KEY`
//! environment variable (options win).

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use super::{StorageError, StorageResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub idle: Duration,
    /// Bytes per second; 0 turns the rate rule off.
    pub min_rate: u64,
    pub retry: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(30),
            idle: Duration::from_secs(30),
            min_rate: 16 * 1024,
            retry: Duration::from_secs(120),
        }
    }
}

/// The option keys, each with its environment variable.
pub const KEYS: [(&str, &str); 5] = [
    ("connect_timeout", "SNAPKEEP_CONNECT_TIMEOUT"),
    ("first_byte_timeout", "SNAPKEEP_FIRST_BYTE_TIMEOUT"),
    ("idle_timeout", "SNAPKEEP_IDLE_TIMEOUT"),
    ("min_rate", "SNAPKEEP_MIN_RATE"),
    ("retry_timeout", "SNAPKEEP_RETRY_TIMEOUT"),
];

impl Timeouts {
    /// The limits from the environment, then from `options`; also returns
    /// the options that are not time limits, for the backend.
    pub fn from_options(
        options: &[(String, String)],
    ) -> StorageResult<(Timeouts, Vec<(String, String)>)> {
        let mut t = Timeouts::default();
        for (key, var) in KEYS {
            if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
                t.set(key, &v).map_err(|e| StorageError::Config {
                    detail: format!("{var}={v}: {e}"),
                })?;
            }
        }
        let mut rest = Vec::new();
        for (k, v) in options {
            let key = k.to_ascii_lowercase();
            if KEYS.iter().any(|(name, _)| *name == key) {
                t.set(&key, v).map_err(|e| StorageError::Config {
                    detail: format!("storage option {k}={v}: {e}"),
                })?;
            } else {
                rest.push((k.clone(), v.clone()));
            }
        }
        Ok((t, rest))
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "connect_timeout" => self.connect = parse_duration(value)?,
            "first_byte_timeout" => self.first_byte = parse_duration(value)?,
            "idle_timeout" => self.idle = parse_duration(value)?,
            "retry_timeout" => self.retry = parse_duration(value)?,
            "min_rate" => self.min_rate = parse_rate(value)?,
            _ => return Err("not a time limit".into()),
        }
        Ok(())
    }

    /// How long a request with a body of `body_len` bytes may take to get
    /// its response headers.
    pub fn response_limit(&self, body_len: u64) -> Duration {
        let upload = match (body_len, self.min_rate) {
            (0, _) | (_, 0) => Duration::ZERO,
            (n, rate) => Duration::from_secs_f64(n as f64 / rate as f64),
        };
        self.first_byte.saturating_add(upload)
    }
}

/// `2s`, `500ms`, `5m` (humantime), or a bare number of seconds; positive.
fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let d = match v.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        Ok(_) => return Err("not a duration".into()),
        Err(_) => humantime::parse_duration(v)
            .map_err(|e| format!("not a duration like 30s, 500ms or 2m ({e})"))?,
    };
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}

/// Bytes per second: `16KiB`, `1MiB/s`, `2000`, `0` (off).
fn parse_rate(v: &str) -> Result<u64, String> {
    let v = v.trim();
    let v = v.strip_suffix("/s").unwrap_or(v).trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: f64 = num
        .parse()
        .map_err(|_| "not a rate like 16KiB or 1MiB/s".to_string())?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        u => return Err(format!("unknown unit {u:?} (use B, KiB, MiB, GiB)")),
    };
    Ok((num * mult) as u64)
}

/// A duration as messages show it: `2 s`, `1.5 s`, `500 ms`.
pub fn show(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A rate as messages show it.
pub fn show_rate(rate: u64) -> String {
    if rate >= 1024 * 1024 && rate % (1024 * 1024) == 0 {
        format!("{} MiB/s", rate / (1024 * 1024))
    } else if rate >= 1024 && rate % 1024 == 0 {
        format!("{} KiB/s", rate / 1024)
    } else {
        format!("{rate} B/s")
    }
}

/// A time limit that ran out: what timed out (naming the request) and the
/// option that sets the limit. The HTTP layers return it as the source of
/// their error; backends turn it into [`StorageError::TimedOut`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub what: String,
    pub option: &'static str,
}

impl fmt::Display for Expired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for Expired {}

impl Expired {
    pub fn no_response(request: &str, limit: Duration) -> Expired {
        Expired {
            what: format!("no response to {request} within {}", show(limit)),
            option: "first_byte_timeout",
        }
    }

    pub fn no_connection(request: &str, limit: Duration) -> Expired {
        Expired {
            what: format!("could not connect for {request} within {}", show(limit)),
            option: "connect_timeout",
        }
    }

    pub fn stalled(request: &str, limit: Duration) -> Expired {
        Expired {
            what: format!("{request} stalled: no data for {}", show(limit)),
            option: "idle_timeout",
        }
    }

    /// Finds an `Expired` among the sources of `e`.
    pub fn find<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Expired> {
        let mut next = Some(e);
        while let Some(e) = next {
            if let Some(x) = e.downcast_ref::<Expired>() {
                return Some(x);
            }
            next = e.source();
        }
        None
    }
}

/// Enforces the rate rule on a response body: fed the size of each piece
/// as it arrives (the idle limit is the caller's timer).
#[derive(Debug)]
pub struct Meter {
    window: Duration,
    min_rate: u64,
    started: Instant,
    bytes: u64,
}

impl Meter {
    pub fn new(t: &Timeouts) -> Meter {
        Meter {
            window: t.idle,
            min_rate: t.min_rate,
            started: Instant::now(),
            bytes: 0,
        }
    }

    /// Records `n` bytes received now. Fails once a full window has moved
    /// less than `min_rate` per second on average.
    pub fn advance(&mut self, n: usize, request: &str) -> Result<(), Expired> {
        self.bytes += n as u64;
        let elapsed = self.started.elapsed();
        if elapsed < self.window {
            return Ok(());
        }
        if self.min_rate > 0 && (self.bytes as f64) < self.min_rate as f64 * elapsed.as_secs_f64() {
            return Err(Expired {
                what: format!(
                    "{request} too slow: {} bytes in {}, below the minimum {}",
                    self.bytes,
                    show(elapsed),
                    show_rate(self.min_rate)
                ),
                option: "min_rate",
            });
        }
        self.started = Instant::now();
        self.bytes = 0;
        Ok(())
    }
}

tokio::task_local! {
    /// HTTP attempts made by the current storage operation (set by the
    /// retry wrapper), for the message when it gives up.
    static ATTEMPTS: Cell<u32>;
}

/// Counts one HTTP attempt for the running operation, if one is counted.
pub fn count_attempt() {
    let _ = ATTEMPTS.try_with(|c| c.set(c.get() + 1));
}

/// Runs `f` counting the HTTP attempts made within it.
pub async fn counting_attempts<F: std::future::Future>(f: F) -> (F::Output, u32) {
    ATTEMPTS
        .scope(Cell::new(0), async {
            let out = f.await;
            (out, ATTEMPTS.with(Cell::get))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_set_limits_and_the_rest_pass_through() {
        let (t, rest) = Timeouts::from_options(&opts(&[
            ("connect_timeout", "2s"),
            ("First_Byte_Timeout", "1.5"),
            ("idle_timeout", "500ms"),
            ("min_rate", "1MiB/s"),
            ("retry_timeout", "3m"),
            ("endpoint", "http://127.0.0.1:9"),
        ]))
        .unwrap();
        assert_eq!(t.connect, Duration::from_secs(2));
        assert_eq!(t.first_byte, Duration::from_millis(1500));
        assert_eq!(t.idle, Duration::from_millis(500));
        assert_eq!(t.min_rate, 1 << 20);
        assert_eq!(t.retry, Duration::from_secs(180));
        assert_eq!(rest, opts(&[("endpoint", "http://127.0.0.1:9")]));
        for bad in [
            ("idle_timeout", "0"),
            ("connect_timeout", "soon"),
            ("min_rate", "3 parsecs"),
        ] {
            let err = Timeouts::from_options(&opts(&[bad]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(bad.0), "{err}");
        }
        assert_eq!(parse_rate("0").unwrap(), 0);
        assert_eq!(parse_rate("16KiB").unwrap(), 16384);
    }

    #[test]
    fn uploads_get_time_for_their_body() {
        let t = Timeouts {
            min_rate: 1 << 20,
            ..Timeouts::default()
        };
        assert_eq!(t.response_limit(0), t.first_byte);
        assert_eq!(
            t.response_limit(8 << 20),
            t.first_byte + Duration::from_secs(8)
        );
        let off = Timeouts { min_rate: 0, ..t };
        assert_eq!(off.response_limit(1 << 30), t.first_byte);
    }

    #[test]
    fn a_drip_fails_the_rate_rule_after_a_window() {
        let t = Timeouts {
            idle: Duration::from_millis(50),
            min_rate: 1000,
            ..Timeouts::default()
        };
        let mut m = Meter::new(&t);
        m.advance(1, "GET x").unwrap();
        std::thread::sleep(Duration::from_millis(60));
        let e = m.advance(1, "GET x").unwrap_err();
        assert_eq!(e.option, "min_rate");
        assert!(e.what.starts_with("GET x too slow: 2 bytes in "), "{e}");
        let mut fast = Meter::new(&t);
        std::thread::sleep(Duration::from_millis(60));
        fast.advance(1000, "GET x").unwrap();
    }
}
