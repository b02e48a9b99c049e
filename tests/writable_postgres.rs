//! PostgreSQL started straight from a writable mount (real FUSE, real
//! PostgreSQL from Debian's packages, as root; `scripts/test.sh` installs
//! it): the service answers and writes, only the blocks it touched are
//! copied into the layer, and its writes are there at the next mount.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::mounted::{writable_args, writable_dirs, Mounted};
use common::{ok, s, scene};

fn pg_bin(name: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/test.sh installs it)")
        .map(|d| d.unwrap().path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().expect("a PostgreSQL version with its programs")
}

/// Runs `cmd` as the postgres user; returns its stdout.
fn as_postgres(cmd: &str) -> String {
    let out = Command::new("su")
        .args(["postgres", "-c", cmd])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn chown_postgres(path: &Path) {
    assert!(Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status()
        .unwrap()
        .success());
}

struct Server {
    sock: PathBuf,
}

impl Server {
    fn opts(&self) -> String {
        format!("-c listen_addresses= -k {} -p 54331", self.sock.display())
    }

    fn start(&self, data: &Path) {
        as_postgres(&format!(
            "{} -D {} -o '{}' -l {}/log -w start",
            pg_bin("pg_ctl").display(),
            data.display(),
            self.opts(),
            self.sock.display()
        ));
    }

    fn stop(&self, data: &Path) {
        as_postgres(&format!(
            "{} -D {} -w stop -m fast",
            pg_bin("pg_ctl").display(),
            data.display()
        ));
    }

    fn sql(&self, sql: &str) -> String {
        as_postgres(&format!(
            "{} -h {} -p 54331 -tAc \"{sql}\" postgres",
            pg_bin("psql").display(),
            self.sock.display()
        ))
        .trim()
        .to_string()
    }
}

/// Bytes the files under `dir` take on disk.
fn allocated(dir: &Path) -> u64 {
    let mut total = 0;
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = fs::symlink_metadata(&p).unwrap();
        total += if m.is_dir() {
            allocated(&p)
        } else {
            m.blocks() * 512
        };
    }
    total
}

#[test]
fn postgresql_starts_on_a_writable_mount_and_copies_only_what_it_touches() {
    let (_t, src, repo, _dst) = scene();
    let data = src.join("pgdata");
    let sock = _t.path().join("sock");
    fs::create_dir_all(&sock).unwrap();
    fs::create_dir_all(&src).unwrap();
    chown_postgres(_t.path());
    let pg = Server { sock };
    as_postgres(&format!(
        "{} -D {} -A trust >/dev/null",
        pg_bin("initdb").display(),
        data.display()
    ));
    pg.start(&data);
    pg.sql(
        "create table t(k int primary key, v text); \
         insert into t select i, repeat('x', 200) from generate_series(1, 200000) i",
    );
    pg.stop(&data);
    ok(&["repo", "init", s(&repo)]);
    ok(&["snapshot", "create", s(&repo), "s1", "--source", s(&src)]);

    let (mnt, upper, cache) = writable_dirs(_t.path());
    let args = writable_args(s(&repo), "s1", Some("pgdata"), s(&cache), s(&upper));
    let m = Mounted::start(&[], &args, &mnt);
    pg.start(&mnt);
    assert_eq!(pg.sql("select length(v) from t where k = 4242"), "200");
    pg.sql("insert into t values (200001, 'written on the mount')");
    pg.stop(&mnt);
    m.stop();
    // A point query and one insert: the layer holds a few MiB of a data
    // folder of some 150 MiB, although PostgreSQL opened the 45 MiB table
    // read-write (overlayfs would have copied it whole).
    let whole = allocated(&data);
    let copied = allocated(&upper.join("tree"));
    assert!(
        copied * 10 < whole,
        "{copied} bytes copied of a {whole}-byte folder"
    );

    let m = Mounted::start(&[], &args, &mnt);
    pg.start(&mnt);
    assert_eq!(
        pg.sql("select v from t where k = 200001"),
        "written on the mount"
    );
    assert_eq!(pg.sql("select count(*) from t"), "200001");
    pg.stop(&mnt);
    m.stop();
    ok(&["repo", "check", s(&repo), "--read-data"]);
}
