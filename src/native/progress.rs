//! Progress for long work: a bar on a terminal, JSON events for programs
//! (one object per line on stderr, at most twice a second), or nothing.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

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

#[derive(Debug)]
struct JsonState {
    label: String,
    total: u64,
    done: AtomicU64,
    started: Instant,
    last: Mutex<Instant>,
}

impl JsonState {
    fn emit(&self, event: &str) {
        let done = self.done.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 {
            (self.total.saturating_sub(done)) as f64 / rate
        } else {
            0.0
        };
        eprintln!(
            "{}",
            serde_json::json!({
                "event": event,
                "operation": self.label,
                "bytes_done": done,
                "bytes_total": self.total,
                "bytes_per_sec": rate as u64,
                "eta_secs": (eta * 10.0).round() / 10.0,
            })
        );
    }
}

#[derive(Debug, Clone, Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
    json: Option<Arc<JsonState>>,
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
        match mode {
            ProgressMode::Quiet => Progress::default(),
            ProgressMode::Bar if !std::io::stderr().is_terminal() => Progress::default(),
            ProgressMode::Bar => {
                let bar = ProgressBar::new(total);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_message(message.to_string());
                Progress {
                    bar: Some(bar),
                    json: None,
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
                state.emit("progress");
                Progress {
                    bar: None,
                    json: Some(Arc::new(state)),
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
                j.emit("progress");
            }
        }
    }

    /// Draws the bar once more at its final count and leaves it on screen
    /// (the total and average rate stay readable above the summary; the
    /// bar's draws are rate-limited, so a fast run's last one may be far
    /// from the end).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
        if let Some(j) = &self.json {
            j.emit("done");
        }
    }
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
