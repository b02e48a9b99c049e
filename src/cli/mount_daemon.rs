//! `snapkeep mount --daemon`: the mount runs in a process of its own in the
//! background. The command starts itself again (a fork would copy a
//! process whose runtime threads are gone in the child), with stdin from
//! /dev/null, stderr to the log file, in a process group of its own (a
//! terminal's Ctrl-C or hangup does not reach it), and
//! `SNAPKEEP_MOUNT_DAEMON` set. That child mounts and says so with one
//! JSON line on its stdout, a pipe the parent reads; from then on it
//! writes only to the log (SIGPIPE's default action is kept, so a write to
//! the closed pipe would end it). The parent exits 0 once the line came,
//! printing the child's pid; if the child ends first, the parent passes on
//! what it said and exits with its status.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use super::context::Ctx;
use super::render::print_json;
use crate::native::error::{Error, Result};

/// Set in the background process: it reports readiness on stdout, then
/// writes only to its log.
pub const CHILD_ENV: &str = "SNAPKEEP_MOUNT_DAEMON";

/// Whether this process is a `--daemon` mount's background process.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// The background process's one line on stdout, once the mount is live.
pub fn say_ready(mountpoint: &Path, snapshot: &str, entries: usize) {
    use std::io::Write;
    let line = json!({"mounted": mountpoint, "snapshot": snapshot, "entries": entries});
    let mut out = std::io::stdout().lock();
    // The parent may be gone (killed): its stdout is then closed, and the
    // mount goes on regardless.
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// The log's default place: `~/.cache/snapkeep/logs/mount-<mount point>.log`.
fn default_log(mountpoint: &Path) -> PathBuf {
    let abs = std::path::absolute(mountpoint).unwrap_or_else(|_| mountpoint.to_path_buf());
    let name: String = abs
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("snapkeep")
        .join("logs")
        .join(format!("mount{name}.log"))
}

/// Starts the background mount and waits until it is live (exit 0, its
/// pid printed) or has failed (its message and exit status passed on).
pub fn start(ctx: &Ctx, mountpoint: &Path, log: Option<&Path>, as_json: bool) -> Result<()> {
    let log = log.map_or_else(|| default_log(mountpoint), Path::to_path_buf);
    if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| Error::io(&log, e))?;
    let from = file
        .seek(SeekFrom::End(0))
        .map_err(|e| Error::io(&log, e))?;
    let exe = std::env::current_exe().map_err(|e| Error::io(Path::new("/proc/self/exe"), e))?;
    let mut child = Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(file.try_clone().map_err(|e| Error::io(&log, e))?)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io(&exe, e))?;
    drop(file);
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let _ = out.read_line(&mut line);
    let ready: Option<Value> = serde_json::from_str::<Value>(&line)
        .ok()
        .filter(|v| v.get("mounted").is_some());
    let pid = child.id();
    if let Some(v) = ready {
        if as_json {
            print_json(&json!({"mounted": v["mounted"], "snapshot": v["snapshot"],
                "entries": v["entries"], "pid": pid, "log": log}));
        } else {
            ctx.say(format!(
                "mounted snapshot [{}] at {} in the background (pid {pid}, log {}); \
                 unmount with `umount {}` or `kill {pid}`",
                v["snapshot"].as_str().unwrap_or_default(),
                mountpoint.display(),
                log.display(),
                mountpoint.display()
            ));
        }
        return Ok(());
    }
    // It ended before the mount was live: what it printed (its JSON error
    // object under --json) and logged is the command's answer.
    let _ = out.read_to_string(&mut line);
    let status = child.wait().map_err(|e| Error::io(&exe, e))?;
    print!("{line}");
    let mut said = String::new();
    if let Ok(mut f) = File::open(&log) {
        let _ = f.seek(SeekFrom::Start(from));
        let _ = f.read_to_string(&mut said);
    }
    eprint!("{said}");
    std::process::exit(status.code().unwrap_or(1));
}
