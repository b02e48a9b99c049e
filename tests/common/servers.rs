//! Real storage servers for tests: moto (S3) and Azurite (Azure Blob),
//! started on free ports of 127.0.0.1 and killed when dropped.
//! `scripts/test.sh` installs both (see tests/servers/).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Servers may run in their own process group (wrangler starts
        // workerd children): stop the whole group. Bash's builtin `kill`,
        // because procps-ng 4.0's misreads a negative process-group id.
        let group = self.child.id();
        for signal in ["TERM", "KILL"] {
            let _ = Command::new("bash")
                .args(["-c", &format!("kill -{signal} -- -{group} 2>/dev/null")])
                .status();
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on, never handed out twice in this process (tests
/// in one binary run in parallel).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Starts a server with `start(port, dir)` on a fresh port, retrying if the
/// child exits (e.g. another process took the port first).
fn start_server(what: &str, start: &dyn Fn(u16, &Path) -> Child) -> Server {
    start_server_within(what, Duration::from_secs(60), start)
}

fn start_server_within(
    what: &str,
    patience: Duration,
    start: &dyn Fn(u16, &Path) -> Child,
) -> Server {
    for _ in 0..5 {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut child = start(port, dir.path());
        if wait_for(port, &mut child, patience) {
            return Server {
                child,
                port,
                _dir: dir,
            };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("{what} did not start");
}

/// Waits until `child` listens on `port`; false if it exits or times out.
fn wait_for(port: u16, child: &mut Child, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if super::listener::tree_listens_on(child.id(), port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// moto's S3 server. It accepts any credentials.
pub fn moto() -> Server {
    start_moto(None)
}

/// moto's S3 server checking credentials like AWS does: its first four
/// requests, unauthenticated, create an IAM user allowed everything on S3,
/// its access key, and `bucket`. Returns the server and the key pair.
pub fn moto_with_auth(bucket: &str) -> (Server, String, String) {
    let server = start_moto(Some(4));
    let script = format!(
        r#"
import boto3, json
kw = dict(endpoint_url="http://127.0.0.1:{port}", region_name="us-east-1",
          aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="snapkeep")
iam.put_user_policy(UserName="snapkeep", PolicyName="s3", PolicyDocument=json.dumps(
    {{"Version": "2012-10-17",
      "Statement": [{{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}]}}))
key = iam.create_access_key(UserName="snapkeep")["AccessKey"]
boto3.client("s3", **kw).create_bucket(Bucket="{bucket}")
print(key["AccessKeyId"], key["SecretAccessKey"])
"#,
        port = server.port
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "moto IAM setup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut words = text.split_whitespace().map(str::to_string);
    let (id, secret) = (words.next().unwrap(), words.next().unwrap());
    (server, id, secret)
}

fn start_moto(auth_after: Option<u32>) -> Server {
    start_server("moto (S3)", &|port, _dir| {
        let mut cmd = Command::new("python3");
        if let Some(n) = auth_after {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
        }
        cmd.args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 with moto[server] is installed (bash scripts/test.sh installs it)")
    })
}

/// Creates an S3 bucket on moto (it accepts unsigned requests).
pub fn create_bucket(port: u16, bucket: &str) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "bucket creation failed: {reply}"
    );
}

/// Environment for S3 clients talking to moto.
pub fn s3_env(port: u16) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT", format!("http://127.0.0.1:{port}")),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The same settings as `--storage-option` pairs.
pub fn s3_options(port: u16) -> Vec<(String, String)> {
    s3_env(port)
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Azurite's blob service.
pub fn azurite() -> Server {
    let bin = repo_root().join("tests/servers/node_modules/.bin/azurite-blob");
    assert!(
        bin.exists(),
        "azurite is installed in tests/servers (bash scripts/test.sh installs it)"
    );
    start_server("azurite", &|port, dir| {
        Command::new(&bin)
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &port.to_string(),
                "--skipApiVersionCheck",
                "--silent",
                "--location",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    })
}

/// Creates a blob container on Azurite (through the Azure SDK for Python,
/// which signs the request).
pub fn create_container(port: u16, name: &str) {
    let cs = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    );
    let script = format!(
        "from azure.storage.blob import BlobServiceClient\nBlobServiceClient.from_connection_string({cs:?}).create_container({name:?})\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "container creation failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Environment for Azure clients talking to Azurite.
pub fn azure_env(port: u16) -> Vec<(String, String)> {
    vec![
        ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
        (
            "AZURITE_BLOB_STORAGE_URL".into(),
            format!("http://127.0.0.1:{port}"),
        ),
    ]
}

pub const EDGE_WRITE_TOKEN: &str = "edge-write-secret";
pub const EDGE_READ_TOKEN: &str = "edge-read-secret";

/// Who may read from a test Worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeReads {
    /// `SNAPKEEP_PUBLIC_READS=true`: anonymous reads.
    Public,
    /// `SNAPKEEP_READ_TOKEN` set: reads need it (or the write token).
    ReadToken,
    /// Neither: the default, reads need the write token.
    Private,
}

/// [`edge_with`]: reads need [`EDGE_READ_TOKEN`] with `read_token`, and
/// are public without it.
pub fn edge(read_token: bool) -> Server {
    edge_with(if read_token {
        EdgeReads::ReadToken
    } else {
        EdgeReads::Public
    })
}

/// snapkeep's Worker under `wrangler dev --local` (scripts/edge-dev.sh), with
/// a fresh local R2 bucket. Writes need [`EDGE_WRITE_TOKEN`]; reads as
/// `reads` says. The first start may build the Worker, hence the patience.
pub fn edge_with(reads: EdgeReads) -> Server {
    edge_keyed(reads, None)
}

/// [`edge_with`], and with `read_key` as the secret `SNAPKEEP_READ_KEY`
/// (an encrypted repository's master key in hex: its JSON views).
pub fn edge_keyed(reads: EdgeReads, read_key: Option<&str>) -> Server {
    use std::os::unix::process::CommandExt;
    let script = repo_root().join("scripts/edge-dev.sh");
    let log_dir = std::env::temp_dir();
    start_server_within("wrangler dev", Duration::from_secs(900), &|port, dir| {
        let log = std::fs::File::create(log_dir.join(format!("snapkeep-edge-{port}.log"))).unwrap();
        let mut cmd = Command::new("bash");
        cmd.arg(&script)
            .arg(port.to_string())
            .env("SNAPKEEP_EDGE_TOKEN", EDGE_WRITE_TOKEN)
            .env("SNAPKEEP_EDGE_STATE", dir)
            .env_remove("SNAPKEEP_EDGE_READ_TOKEN")
            .env_remove("SNAPKEEP_EDGE_PUBLIC_READS")
            .env_remove("SNAPKEEP_EDGE_READ_KEY")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        match reads {
            EdgeReads::Public => {
                cmd.env("SNAPKEEP_EDGE_PUBLIC_READS", "true");
            }
            EdgeReads::ReadToken => {
                cmd.env("SNAPKEEP_EDGE_READ_TOKEN", EDGE_READ_TOKEN);
            }
            EdgeReads::Private => {}
        }
        if let Some(key) = read_key {
            cmd.env("SNAPKEEP_EDGE_READ_KEY", key);
        }
        // Each instance gets its own devtools port: on the default one, a
        // wrangler that rebuilds mid-test (its file watch) dies binding a
        // port another test's wrangler holds.
        let inspector = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port for the devtools inspector")
            .port();
        cmd.env("SNAPKEEP_EDGE_INSPECTOR_PORT", inspector.to_string());
        cmd.spawn().expect("bash runs scripts/edge-dev.sh")
    })
}

/// One HTTP request to the Worker; returns status, headers and body.
pub fn http(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut r = reqwest::Client::new().request(method, url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.body(b);
        }
        let resp = r.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        (status, headers, resp.bytes().await.unwrap().to_vec())
    })
}
