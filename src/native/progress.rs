//! Progress for long work: a bar on a terminal, JSON events for programs
//! (one object per line on stderr, at most twice a second), or nothing.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

use crate::core::elapsed::clock_text;

/// How a command reports progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgressMode {
    #[default]
    Quiet,
    /// A bar, when stderr is a terminal.
    Bar,
    /// JSON lines on stderr.
    Json,
}

/// A one-off line beside the progress, such as a restore saying it
/// resumes: `text` on stderr for a bar (also when stderr is not a terminal:
/// cron logs keep it), `event` as one JSON line in JSON mode, nothing when
/// quiet.
pub fn note(mode: ProgressMode, text: &str, event: serde_json::Value) {
    match mode {
        ProgressMode::Quiet => {}
        ProgressMode::Bar => eprintln!("{text}"),
        ProgressMode::Json => eprintln!("{event}"),
    }
}

/// Files of a run that reads files (a snapshot): counted as they go, read
/// only when a line is drawn or an event written.
#[derive(Debug, Default)]
struct Files {
    total: u64,
    done: AtomicU64,
    errors: AtomicU64,
    /// The file read last started, relative to the source.
    current: Mutex<String>,
}

impl Files {
    fn line(&self) -> String {
        format!(
            "{}/{} files, {} error(s)",
            self.done.load(Ordering::Relaxed),
            self.total,
            self.errors.load(Ordering::Relaxed)
        )
    }
}

#[derive(Debug)]
struct JsonState {
    label: String,
    total: u64,
    done: AtomicU64,
    started: Instant,
    last: Mutex<Instant>,
}

impl JsonState {
    fn emit(&self, event: &str, files: Option<&Files>) {
        let done = self.done.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed();
        let secs = elapsed.as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 {
            (self.total.saturating_sub(done)) as f64 / rate
        } else {
            0.0
        };
        let mut event = serde_json::json!({
            "event": event,
            "operation": self.label,
            "bytes_done": done,
            "bytes_total": self.total,
            "bytes_per_sec": rate as u64,
            "eta_secs": (eta * 10.0).round() / 10.0,
            "elapsed_secs": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
            "percent": percent(done, self.total),
        });
        if let Some(f) = files {
            event["files_done"] = f.done.load(Ordering::Relaxed).into();
            event["files_total"] = f.total.into();
            event["errors"] = f.errors.load(Ordering::Relaxed).into();
            event["current"] = f.current.lock().unwrap().clone().into();
        }
        eprintln!("{event}");
    }
}

/// `done` of `total` in percent, one decimal (100 when there is nothing to do).
fn percent(done: u64, total: u64) -> f64 {
    if total == 0 {
        return 100.0;
    }
    ((done as f64 / total as f64) * 1000.0).round() / 10.0
}

/// At most this many characters of the current file are shown, its end
/// (the name) kept.
const CURRENT_MAX_CHARS: usize = 40;

/// `path` cut to its last [`CURRENT_MAX_CHARS`] characters.
fn shorten(path: &str) -> String {
    let count = path.chars().count();
    if count <= CURRENT_MAX_CHARS {
        return path.to_string();
    }
    let tail: String = path.chars().skip(count - CURRENT_MAX_CHARS + 1).collect();
    format!("…{tail}")
}

#[derive(Debug, Clone, Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
    json: Option<Arc<JsonState>>,
    files: Option<Arc<Files>>,
}

impl Progress {
    pub fn hidden() -> Progress {
        Progress::default()
    }

    /// A byte-counting bar when stderr is a terminal and `enabled`.
    pub fn bytes(enabled: bool, total: u64, message: &str) -> Progress {
        Self::with_mode(
            if enabled {
                ProgressMode::Bar
            } else {
                ProgressMode::Quiet
            },
            total,
            message,
        )
    }

    pub fn with_mode(mode: ProgressMode, total: u64, message: &str) -> Progress {
        Self::build(mode, total, message, None)
    }

    /// A line like restic's for a run that reads `files` files of `total`
    /// bytes, `errors` of which already failed: elapsed time, percent, bar,
    /// bytes, rate and eta, files done of total, errors so far, and the
    /// file being read.
    pub fn files(
        mode: ProgressMode,
        total: u64,
        files: u64,
        errors: u64,
        message: &str,
    ) -> Progress {
        let files = Files {
            total: files,
            errors: AtomicU64::new(errors),
            ..Files::default()
        };
        Self::build(mode, total, message, Some(Arc::new(files)))
    }

    fn build(mode: ProgressMode, total: u64, message: &str, files: Option<Arc<Files>>) -> Progress {
        match mode {
            ProgressMode::Quiet => Progress::default(),
            ProgressMode::Bar if !std::io::stderr().is_terminal() => Progress::default(),
            ProgressMode::Bar => {
                let bar = ProgressBar::new(total);
                bar.set_style(bar_style(files.clone()));
                bar.set_message(message.to_string());
                Progress {
                    bar: Some(bar),
                    json: None,
                    files,
                }
            }
            ProgressMode::Json => {
                let now = Instant::now();
                let state = JsonState {
                    label: message.to_string(),
                    total,
                    done: AtomicU64::new(0),
                    started: now,
                    last: Mutex::new(now),
                };
                state.emit("progress", files.as_deref());
                Progress {
                    bar: None,
                    json: Some(Arc::new(state)),
                    files,
                }
            }
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
        if let Some(j) = &self.json {
            j.done.fetch_add(n, Ordering::Relaxed);
            let mut last = j.last.lock().unwrap();
            if last.elapsed() >= Duration::from_millis(500) {
                *last = Instant::now();
                drop(last);
                j.emit("progress", self.files.as_deref());
            }
        }
    }

    /// A file starts to be read.
    pub fn file_started(&self, path: &std::path::Path) {
        if let Some(f) = &self.files {
            let shown = shorten(&path.to_string_lossy());
            *f.current.lock().unwrap() = shown;
        }
    }

    /// A file was read.
    pub fn file_done(&self) {
        if let Some(f) = &self.files {
            f.done.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A file could not be read.
    pub fn file_failed(&self) {
        if let Some(f) = &self.files {
            f.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Draws the bar once more at its final count and leaves it on screen
    /// (the total and average rate stay readable above the summary; the
    /// bar's draws are rate-limited, so a fast run's last one may be far
    /// from the end).
    pub fn finish(&self) {
        if let Some(f) = &self.files {
            f.current.lock().unwrap().clear();
        }
        if let Some(b) = &self.bar {
            b.finish();
        }
        if let Some(j) = &self.json {
            j.emit("done", self.files.as_deref());
        }
    }
}

/// `0:21 snapshot [=====>    ] 45% 12 MiB/40 MiB 8 MiB/s eta 3s`, and for
/// a run with files `1203/3000 files, 0 error(s) …/logs-1/current.log`
/// after it.
fn bar_style(files: Option<Arc<Files>>) -> ProgressStyle {
    let template = if files.is_some() {
        "{clock} {msg} [{bar:20}] {percent:>3}% {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {files} {current}"
    } else {
        "{clock} {msg} [{bar:30}] {percent:>3}% {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    };
    let (line, current) = (files.clone(), files);
    ProgressStyle::with_template(template)
        .expect("valid template")
        .with_key("clock", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&clock_text(s.elapsed().as_millis() as u64));
        })
        .with_key(
            "files",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                if let Some(f) = &line {
                    let _ = w.write_str(&f.line());
                }
            },
        )
        .with_key(
            "current",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                if let Some(f) = &current {
                    let _ = w.write_str(&f.current.lock().unwrap());
                }
            },
        )
        .progress_chars("=> ")
}

/// The repository layer's progress of one step, drawn as a byte bar (or
/// nothing, when not `enabled`); the bar appears when the step starts and
/// names its total.
#[derive(Debug)]
pub struct StepBar {
    enabled: bool,
    label: &'static str,
    bar: OnceLock<Progress>,
}

impl StepBar {
    pub fn new(enabled: bool, label: &'static str) -> StepBar {
        StepBar {
            enabled,
            label,
            bar: OnceLock::new(),
        }
    }
}

impl crate::repo::progress::Progress for StepBar {
    fn start(&self, total: u64) {
        let _ = self
            .bar
            .set(Progress::bytes(self.enabled, total, self.label));
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.bar.get() {
            bar.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_path_keeps_its_end_and_short_ones_stay_whole() {
        assert_eq!(shorten("logs-1/a.log"), "logs-1/a.log");
        let long = format!("/srv/data/{}/current.log", "x".repeat(80));
        let shown = shorten(&long);
        assert_eq!(shown.chars().count(), CURRENT_MAX_CHARS);
        assert!(shown.starts_with('…') && shown.ends_with("x/current.log"));
    }

    #[test]
    fn percent_has_one_decimal_and_nothing_to_do_is_done() {
        assert_eq!(percent(1, 3), 33.3);
        assert_eq!(percent(3, 3), 100.0);
        assert_eq!(percent(0, 0), 100.0);
    }
}
