//! Deterministic sample data: a data directory with three indices and a
//! global state, mixing compressible text and incompressible binary files.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::core::seeded::Rng;
use crate::native::error::{Error, Result};

const WORDS: &[&str] = &[
    "GET",
    "POST",
    "/api/orders",
    "/api/users",
    "/health",
    "200",
    "201",
    "404",
    "500",
    "ms",
    "user",
    "order",
    "shipped",
    "pending",
    "cache",
    "hit",
    "miss",
    "region=eu-west",
    "region=us-east",
    "trace",
];

pub fn log_lines(rng: &mut Rng, lines: usize, start_second: u64) -> String {
    let mut s = String::new();
    for i in 0..lines {
        let t = start_second + i as u64;
        s.push_str(&format!(
            "2026-11-{:02}T{:02}:{:02}:{:02}Z",
            1 + (t / 86400) % 28,
            (t / 3600) % 24,
            (t / 60) % 60,
            t % 60
        ));
        for _ in 0..(4 + rng.below(6)) {
            s.push(' ');
            s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        }
        s.push_str(&format!(" id={}\n", rng.next_u64() % 1_000_000));
    }
    s
}

fn write(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    fs::File::create(path)
        .and_then(|mut f| f.write_all(data))
        .map_err(|e| Error::io(path, e))
}

/// Writes the sample data directory (about 12 MiB) into `dir`.
pub fn generate(dir: &Path, seed: u64) -> Result<()> {
    let mut rng = Rng::new(seed);
    for day in 1..=3u64 {
        let text = log_lines(&mut rng, 20_000, day * 86_400);
        write(
            &dir.join(format!("logs/app-2026.11.0{day}.log")),
            text.as_bytes(),
        )?;
    }
    write(&dir.join("logs/empty.log"), b"")?;
    for shard in 0..2 {
        write(
            &dir.join(format!("metrics/shard-{shard}/series.bin")),
            &rng.bytes(3 << 20),
        )?;
        write(
            &dir.join(format!("metrics/shard-{shard}/meta.json")),
            format!("{{\"shard\":{shard},\"codec\":\"raw\"}}").as_bytes(),
        )?;
    }
    for u in 0..50 {
        let doc = format!(
            "{{\"id\":{u},\"name\":\"user-{u}\",\"email\":\"user{u}@example.com\",\"tags\":[\"t{}\",\"t{}\"]}}\n",
            rng.below(10),
            rng.below(10)
        );
        write(&dir.join(format!("users/docs/{u:03}.json")), doc.as_bytes())?;
    }
    write(
        &dir.join("cluster_state.json"),
        b"{\"cluster\":\"demo\",\"version\":7}\n",
    )?;
    write(
        &dir.join("_meta/settings.yml"),
        b"replicas: 1\nrefresh_interval: 1s\n",
    )?;
    Ok(())
}

/// Changes the sample data the way a running service would: appends to a
/// log, rewrites a small region of a binary file, adds and removes documents.
pub fn mutate(dir: &Path, seed: u64) -> Result<()> {
    let mut rng = Rng::new(seed ^ 0xD1FF);
    let log = dir.join("logs/app-2026.11.03.log");
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .map_err(|e| Error::io(&log, e))?;
    f.write_all(log_lines(&mut rng, 2_000, 4 * 86_400).as_bytes())
        .map_err(|e| Error::io(&log, e))?;
    let series = dir.join("metrics/shard-1/series.bin");
    let mut data = fs::read(&series).map_err(|e| Error::io(&series, e))?;
    let at = data.len() / 2;
    data[at..at + 4096].copy_from_slice(&rng.bytes(4096));
    write(&series, &data)?;
    write(
        &dir.join("users/docs/050.json"),
        b"{\"id\":50,\"name\":\"user-50\"}\n",
    )?;
    let gone = dir.join("users/docs/007.json");
    fs::remove_file(&gone).map_err(|e| Error::io(&gone, e))?;
    Ok(())
}
