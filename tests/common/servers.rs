//! Real storage servers for tests: moto (S3) and Azurite (Azure Blob),
//! started on free ports of 127.0.0.1 and killed when dropped.
//! `scripts/test.sh` installs both (see tests/servers/).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// moto's S3 server. It accepts any credentials.
pub fn moto() -> Server {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new("python3")
        .args([
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
        .expect("python3 with moto[server] is installed (bash scripts/test.sh installs it)");
    wait_for(port, "moto_server");
    Server {
        child,
        port,
        _dir: dir,
    }
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
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let bin = repo_root().join("tests/servers/node_modules/.bin/azurite-blob");
    assert!(
        bin.exists(),
        "azurite is installed in tests/servers (bash scripts/test.sh installs it)"
    );
    let child = Command::new(bin)
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--skipApiVersionCheck",
            "--silent",
            "--location",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(port, "azurite");
    Server {
        child,
        port,
        _dir: dir,
    }
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
