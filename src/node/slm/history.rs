//! The lifecycle's history: every run, skipped slot and retention
//! deletion, with its outcome and reason, one JSON line each appended to
//! `slm-history.jsonl` in the state folder (Elasticsearch keeps the same
//! facts in its `.slm-history` data stream). The file is bounded: past
//! twice [`HISTORY_LIMIT`] lines it is rewritten, atomically, with the
//! newest [`HISTORY_LIMIT`]. A line torn by a crash is skipped on load.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const HISTORY_FILE: &str = "slm-history.jsonl";
/// Entries kept (for all policies together).
pub const HISTORY_LIMIT: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// A run of the policy (scheduled or `_execute`).
    #[serde(rename = "CREATE")]
    Create,
    /// A retention deletion.
    #[serde(rename = "DELETE")]
    Delete,
    /// Slots handled without a run (missed, or overlapping a run).
    #[serde(rename = "SKIP")]
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(rename = "@timestamp")]
    pub timestamp: i64,
    pub policy: String,
    pub repository: String,
    pub operation: Operation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_name: Option<String>,
    /// The scheduled slot (fire time) a run or skip was for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<i64>,
    pub success: bool,
    /// Why: a retention decision's reason, or why slots were skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_details: Option<String>,
}

#[derive(Debug)]
pub struct History {
    path: PathBuf,
    /// The newest entries, oldest first.
    entries: VecDeque<Entry>,
    lines_in_file: usize,
    /// The file ends in a torn line: the next append starts a new line.
    torn: bool,
}

impl History {
    pub fn load(folder: &Path) -> History {
        let path = folder.join(HISTORY_FILE);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines_in_file = text.lines().count();
        let mut entries: VecDeque<Entry> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        while entries.len() > HISTORY_LIMIT {
            entries.pop_front();
        }
        History {
            path,
            entries,
            lines_in_file,
            torn: !text.is_empty() && !text.ends_with('\n'),
        }
    }

    /// Appends `entry`; a failed write is reported and the entry kept in
    /// memory (history never stops a run).
    pub fn append(&mut self, entry: Entry) {
        let line = serde_json::to_string(&entry).expect("entries serialize");
        self.entries.push_back(entry);
        if self.entries.len() > HISTORY_LIMIT {
            self.entries.pop_front();
        }
        let written = if self.lines_in_file + 1 > 2 * HISTORY_LIMIT {
            self.rewrite()
        } else {
            self.append_line(&line)
        };
        if let Err(e) = written {
            eprintln!(
                "snapkeep node: cannot write the lifecycle history {}: {e}",
                self.path.display()
            );
        }
    }

    fn append_line(&mut self, line: &str) -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let start = if self.torn { "\n" } else { "" };
        f.write_all(format!("{start}{line}\n").as_bytes())?;
        self.torn = false;
        self.lines_in_file += 1;
        Ok(())
    }

    /// Replaces the file with the kept entries (temporary file, sync,
    /// rename), so a crash leaves the old file or the new one.
    fn rewrite(&mut self) -> std::io::Result<()> {
        let mut text = String::new();
        for e in &self.entries {
            text.push_str(&serde_json::to_string(e).expect("entries serialize"));
            text.push('\n');
        }
        let temp = self
            .path
            .with_file_name(format!(".{HISTORY_FILE}.tmp-{}", std::process::id()));
        let mut f = File::create(&temp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&temp, &self.path)?;
        self.lines_in_file = self.entries.len();
        Ok(())
    }

    /// Policy `id`'s entries, newest first.
    pub fn of(&self, id: &str) -> Vec<Entry> {
        self.entries
            .iter()
            .rev()
            .filter(|e| e.policy == id)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(policy: &str, t: i64) -> Entry {
        Entry {
            timestamp: t,
            policy: policy.into(),
            repository: "r".into(),
            operation: Operation::Create,
            snapshot_name: Some(format!("s{t}")),
            slot: None,
            success: true,
            reason: None,
            error_details: None,
        }
    }

    #[test]
    fn entries_survive_a_reload_newest_first_and_the_file_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::load(dir.path());
        for t in 0..(2 * HISTORY_LIMIT as i64 + 10) {
            h.append(entry(if t % 2 == 0 { "a" } else { "b" }, t));
        }
        let lines = std::fs::read_to_string(dir.path().join(HISTORY_FILE))
            .unwrap()
            .lines()
            .count();
        assert!(lines <= 2 * HISTORY_LIMIT, "{lines}");
        // A torn last line (a crash mid-append) is skipped.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(HISTORY_FILE))
            .unwrap();
        f.write_all(b"{\"@timestamp\":").unwrap();
        let mut back = History::load(dir.path());
        back.append(entry("c", 1));
        let back = History::load(dir.path());
        assert_eq!(
            back.of("c").len(),
            1,
            "an append after a torn line reads back"
        );
        let a = back.of("a");
        assert_eq!(a[0].timestamp, 2 * HISTORY_LIMIT as i64 + 8);
        assert!(a.windows(2).all(|w| w[0].timestamp > w[1].timestamp));
        assert_eq!(a.len() + back.of("b").len(), HISTORY_LIMIT - 1);
    }
}
