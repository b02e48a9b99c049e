//! A real `snapkeep node` for tests: started on a free port of 127.0.0.1
//! with its own temporary state, data and path.repo folders, spoken to
//! over plain HTTP/1.1, stopped by its pid.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::listener::tree_listens_on;
use super::servers::free_port;

/// Folders a node runs over; kept across restarts of the node.
pub struct Dirs {
    pub root: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Dirs {
        let d = Dirs {
            root: tempfile::tempdir().unwrap(),
        };
        for sub in ["state", "data", "backups"] {
            std::fs::create_dir_all(d.root.path().join(sub)).unwrap();
        }
        d
    }
    pub fn state(&self) -> PathBuf {
        self.root.path().join("state")
    }
    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }
    /// The node's `path.repo`.
    pub fn backups(&self) -> PathBuf {
        self.root.path().join("backups")
    }
    /// Writes `node.toml` with `extra` after the folder settings.
    pub fn config(&self, extra: &str) -> PathBuf {
        let path = self.root.path().join("node.toml");
        let text = format!(
            "data = {:?}\nstate = {:?}\npath.repo = [{:?}]\n{extra}\n",
            self.data(),
            self.state(),
            self.backups()
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

pub struct Node {
    pub child: Child,
    pub port: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The node command line for `dirs` on `port`, plus `args`.
pub fn command(dirs: &Dirs, port: u16, args: &[&str]) -> Command {
    let mut c = Command::new(super::bin());
    c.arg("node");
    if !args.contains(&"--listen") {
        c.args(["--listen", &format!("127.0.0.1:{port}")]);
    }
    c.args(args)
        .env_remove("SNAPKEEP_NODE_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if !args.contains(&"--config") {
        c.arg("--state").arg(dirs.state());
        c.arg("--data").arg(dirs.data());
        c.arg("--path-repo").arg(dirs.backups());
    }
    c
}

/// Starts a node (with `--config` in `args`, or the folders as flags) and
/// waits until it answers.
pub fn start(dirs: &Dirs, args: &[&str]) -> Node {
    start_with(dirs, args, &[])
}

pub fn start_with(dirs: &Dirs, args: &[&str], env: &[(&str, &str)]) -> Node {
    // Tests run in parallel, so a free port can be taken by another test's
    // node between `free_port` and the bind: then this node exits with
    // "address in use" while the connect below reached the other one. A
    // node that is gone shortly after answering is started again on a new
    // port.
    for _ in 0..5 {
        match try_start(dirs, args, env) {
            Ok(node) => return node,
            Err(err) if err.contains("in use") => continue,
            Err(err) => panic!("{err}"),
        }
    }
    panic!("the node found no free port in 5 tries");
}

fn try_start(dirs: &Dirs, args: &[&str], env: &[(&str, &str)]) -> Result<Node, String> {
    let port = free_port();
    let mut c = command(dirs, port, args);
    for (k, v) in env {
        c.env(k, v);
    }
    // Held by a `Node` from here, so every path (a panic included) kills
    // and waits for the process.
    let mut node = Node {
        child: c.spawn().expect("snapkeep node starts"),
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let child = &mut node.child;
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return Err(format!("the node exited ({status}): {err}"));
        }
        if tree_listens_on(child.id(), port) {
            return Ok(node);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("the node did not start listening".into())
}

impl Node {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (TERM, KILL) and waits for the exit.
    pub fn signal(&mut self, signal: &str) -> ExitStatus {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the node did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.call("GET", path, &[], None)
    }

    pub fn send(&self, method: &str, path: &str, body: &str) -> Reply {
        self.call(
            method,
            path,
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        )
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        request(self.port, method, path, headers, body)
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    if let Some(b) = body {
        // The node may answer (413) before reading all of an oversize body.
        let _ = s.write_all(b);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse(&raw, method == "HEAD")
}

fn parse(raw: &[u8], head_only: bool) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if head_only {
        Vec::new()
    } else if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&rest[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&rest[end + 2..end + 2 + size]);
        rest = &rest[end + 2 + size + 2..];
    }
    out
}

/// Runs `snapkeep node hash-password` with `password` on stdin.
pub fn hash_password(password: &str) -> String {
    let mut child = Command::new(super::bin())
        .args(["node", "hash-password"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
