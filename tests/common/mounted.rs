//! A running `snapkeep mount` process for tests that mount (real FUSE, as
//! root): started with `--json`, ended by SIGTERM or kill -9.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use super::{bin, is_mounted};

/// Under `t`: a writable mount's mount point, upper folder and cache.
pub fn writable_dirs(t: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (t.join("mnt"), t.join("upper"), t.join("cache"))
}

/// `mount`'s arguments for a writable mount of `snapshot` (of one index,
/// or of every index), through `cache`, its changes in `upper`.
pub fn writable_args<'a>(
    repo: &'a str,
    snapshot: &'a str,
    index: Option<&'a str>,
    cache: &'a str,
    upper: &'a str,
) -> Vec<&'a str> {
    let mut args = vec![repo, snapshot];
    if let Some(index) = index {
        args.extend(["--index", index]);
    }
    args.extend(["--cache", cache, "--writable", "--upper", upper]);
    args
}

/// A running `snapkeep mount`; unmounts (and kills) when dropped.
pub struct Mounted {
    pub child: Child,
    stdout: BufReader<ChildStdout>,
    at: PathBuf,
}

impl Mounted {
    /// Mounts and waits for the `mounted` line.
    pub fn start(env: &[(String, String)], args: &[&str], at: &Path) -> Mounted {
        fs::create_dir_all(at).unwrap();
        let mut child = Command::new(bin())
            .arg("mount")
            .args(args)
            .arg(at)
            .arg("--json")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.contains("\"mounted\""), "no mount: {line:?}");
        Mounted {
            child,
            stdout,
            at: at.to_path_buf(),
        }
    }

    /// SIGTERM, then the summary the mount printed as it ended.
    pub fn stop(mut self) -> serde_json::Value {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "mount ended with {status}");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        assert!(!is_mounted(&self.at), "still mounted after SIGTERM");
        serde_json::from_str::<serde_json::Value>(&rest).unwrap()["unmounted"].clone()
    }

    /// kill -9: the mount is left to the kernel, the pin to go stale.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if is_mounted(&self.at) {
            let _ = Command::new("umount").arg("-l").arg(&self.at).status();
        }
    }
}
