//! Storage servers that misbehave: accept and never answer, send headers
//! then stall, drip a byte every half second, never accept. The real binary
//! must give up within its limits, with one line naming the endpoint, the
//! request and the limit.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// No server thread outlives this, whatever happens to the test.
const SERVER_LIFETIME: Duration = Duration::from_secs(60);

#[derive(Clone, Copy)]
enum Behaviour {
    /// Reads the request and never answers.
    Silent,
    /// Sends response headers announcing a body, then nothing.
    HeadersThenStall,
    /// Sends response headers, then one body byte every 0.5 s.
    Drip,
}

/// A misbehaving HTTP server on 127.0.0.1; stops when dropped.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn alive(stop: &AtomicBool, started: Instant) -> bool {
    !stop.load(Ordering::Relaxed) && started.elapsed() < SERVER_LIFETIME
}

impl Server {
    fn start(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        thread::spawn(move || {
            let started = Instant::now();
            while alive(&flag, started) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let flag = flag.clone();
                        thread::spawn(move || serve(conn, behaviour, &flag, started));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Server { port, stop }
    }
}

fn serve(mut conn: TcpStream, behaviour: Behaviour, stop: &AtomicBool, started: Instant) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // The request's headers (a body, if any, is never read).
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while alive(stop, started) && !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let headers = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
        Content-Length: 100000\r\nETag: \"e\"\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n";
    match behaviour {
        Behaviour::Silent => {}
        Behaviour::HeadersThenStall | Behaviour::Drip => {
            if conn.write_all(headers.as_bytes()).is_err() {
                return;
            }
        }
    }
    // Holds the connection open (dripping, if asked) until told to stop.
    while alive(stop, started) {
        thread::sleep(Duration::from_millis(500));
        if let Behaviour::Drip = behaviour {
            if conn.write_all(b"x").is_err() {
                return;
            }
        }
    }
}

/// Small limits, so each case ends in seconds: 3 attempts of 2 s fit in
/// the 5 s retry deadline, then it passes.
const LIMITS: [&str; 4] = [
    "connect_timeout=1s",
    "first_byte_timeout=2s",
    "idle_timeout=2s",
    "retry_timeout=5s",
];

/// Runs snapkeep with `args`; requires it to fail within 20 s with a
/// one-line error, which it returns.
fn fails_within_20s(args: &[String]) -> String {
    let started = Instant::now();
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("snapkeep {args:?} still running after 60 s");
        }
        thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    eprintln!("{args:?} failed after {took:?}: {err}");
    assert!(!status.success(), "snapkeep {args:?} should have failed");
    assert!(took < Duration::from_secs(20), "took {took:?}: {err}");
    assert!(err.starts_with("error: "), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

fn list_args(repo: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec!["snapshot".into(), "list".into(), repo.into()];
    for o in LIMITS.iter().chain(extra) {
        args.push("--storage-option".into());
        args.push(o.to_string());
    }
    args
}

fn edge_list(port: u16) -> (String, String) {
    let repo = format!("http://127.0.0.1:{port}/api/repos/x");
    let err = fails_within_20s(&list_args(&repo, &[]));
    assert!(
        err.contains(&format!("edge repository {repo}: ")),
        "names the endpoint: {err}"
    );
    (repo, err)
}

#[test]
fn an_edge_server_that_never_answers() {
    let server = Server::start(Behaviour::Silent);
    let (_, err) = edge_list(server.port);
    assert!(
        err.contains("no response to GET objects/config within 2 s (3 attempts over "),
        "{err}"
    );
    assert!(
        err.trim_end()
            .ends_with("; raise with --storage-option first_byte_timeout=..."),
        "{err}"
    );
}

#[test]
fn an_edge_server_that_stalls_after_its_headers() {
    let server = Server::start(Behaviour::HeadersThenStall);
    let (_, err) = edge_list(server.port);
    assert!(
        err.contains("GET objects/config stalled: no data for 2 s (3 attempts over "),
        "{err}"
    );
    assert!(
        err.contains("raise with --storage-option idle_timeout="),
        "{err}"
    );
}

#[test]
fn an_edge_server_that_drips_a_byte_every_half_second() {
    let server = Server::start(Behaviour::Drip);
    let (_, err) = edge_list(server.port);
    assert!(err.contains("GET objects/config too slow: "), "{err}");
    assert!(err.contains("below the minimum 16 KiB/s"), "{err}");
    assert!(
        err.contains("lower with --storage-option min_rate="),
        "{err}"
    );
}

/// A listening socket whose accept queue is full: the kernel drops new
/// connection requests, so connecting times out. Returns None where the
/// queue cannot be filled that way.
fn never_accepting() -> Option<(TcpListener, Vec<TcpStream>)> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // Listening again only changes the backlog: 0 leaves room for one
    // connection that nobody accepts.
    // SAFETY: a plain syscall on a socket this function owns.
    if unsafe { libc::listen(listener.as_raw_fd(), 0) } != 0 {
        return None;
    }
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(c) => held.push(c),
            Err(_) => return Some((listener, held)),
        }
    }
    None
}

#[test]
fn an_edge_server_that_never_accepts() {
    let Some((listener, _held)) = never_accepting() else {
        eprintln!("skipped: the accept queue could not be filled here");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let (_, err) = edge_list(port);
    assert!(
        err.contains("could not connect for GET objects/config within 1 s"),
        "{err}"
    );
    assert!(
        err.contains("raise with --storage-option connect_timeout="),
        "{err}"
    );
}

fn s3_list(port: u16) -> String {
    let endpoint = format!("endpoint=http://127.0.0.1:{port}");
    let args = list_args(
        "s3://bucket/x",
        &[
            &endpoint,
            "allow_http=true",
            "region=us-east-1",
            "aws_access_key_id=snapkeep",
            "aws_secret_access_key=snapkeep",
        ],
    );
    let err = fails_within_20s(&args);
    assert!(err.contains("error: s3://bucket/x: "), "{err}");
    err
}

#[test]
fn an_s3_endpoint_that_never_answers() {
    let server = Server::start(Behaviour::Silent);
    let err = s3_list(server.port);
    let url = format!("http://127.0.0.1:{}/bucket/x/config", server.port);
    assert!(
        err.contains(&format!("no response to GET {url} within 2 s (")),
        "{err}"
    );
    assert!(
        err.contains("raise with --storage-option first_byte_timeout="),
        "{err}"
    );
}

#[test]
fn an_s3_endpoint_that_stalls_after_its_headers() {
    let server = Server::start(Behaviour::HeadersThenStall);
    let err = s3_list(server.port);
    assert!(err.contains("stalled: no data for 2 s"), "{err}");
}

#[test]
fn bad_time_limits_are_named() {
    let err = fails_within_20s(&[
        "snapshot".into(),
        "list".into(),
        "http://127.0.0.1:9/api/repos/x".into(),
        "--storage-option".into(),
        "idle_timeout=soon".into(),
    ]);
    assert!(err.contains("storage option idle_timeout=soon"), "{err}");
    let err = fails_within_20s(&[
        "snapshot".into(),
        "list".into(),
        "http://127.0.0.1:9/api/repos/x".into(),
        "--storage-option".into(),
        "region=eu".into(),
    ]);
    assert!(
        err.contains("storage option region does not apply to edge repositories"),
        "{err}"
    );
}

/// Uploads to a server that reads nothing past the request headers: once
/// the send buffers are full the connection takes no more of the body, and
/// the idle limit ends the request (not size / min_rate, over an hour for
/// this body). A small body is all handed over at once; then the
/// response-header limit applies.
#[tokio::test]
async fn an_edge_upload_the_server_never_reads() {
    use snapkeep::storage::edge::EdgeStore;
    use snapkeep::storage::timeouts::Timeouts;
    use snapkeep::storage::{PutMode, Storage, StorageError};

    let server = Server::start(Behaviour::Silent);
    let base = format!("http://127.0.0.1:{}/api/repos/x", server.port);
    let limits = Timeouts {
        connect: Duration::from_secs(1),
        first_byte: Duration::from_secs(2),
        idle: Duration::from_secs(2),
        ..Timeouts::default()
    };
    let store = EdgeStore::with_timeouts(base.clone(), None, limits).unwrap();

    let started = Instant::now();
    let big = bytes::Bytes::from(vec![7u8; 64 << 20]);
    let err = store
        .put("packs/big", big, PutMode::Overwrite)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20), "{err}");
    assert!(matches!(err, StorageError::TimedOut { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "edge repository {base}: PUT objects/packs/big stalled: the server took no data for 2 s"
        )),
        "{err}"
    );

    let started = Instant::now();
    let small = bytes::Bytes::from(vec![7u8; 1000]);
    let err = store
        .put("config", small, PutMode::Create)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    assert!(
        err.to_string()
            .contains(": no response to PUT objects/config within 2.1 s"),
        "{err}"
    );
}
