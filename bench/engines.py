"""Real database engines' data folders for the benchmark (issue 21).

- `pg` and `pg_long`: a PostgreSQL cluster (Debian's postgresql) after
  `pgbench -i`, then a short (600 transactions) or a longer (6,000)
  pgbench workload between snapshots;
- `sqlite`: a SQLite database (Python's sqlite3) of a few million rows,
  then random updates, deletes and inserts.

Each engine is stopped cleanly before every snapshot. After each restore,
`smoke` starts the engine on the restored folder and runs a query, so a
chunking bug can never pass as a speed-up.
"""

import glob
import os
import random
import shutil
import sqlite3
import subprocess

PORT = 54331


def pg_available():
    return bool(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")) and os.geteuid() == 0


def _pg(name):
    return sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1]


def _as_postgres(cmd):
    done = subprocess.run(["su", "postgres", "-c", cmd], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd}: {done.stderr.strip() or done.stdout.strip()}")


def _own(path):
    subprocess.run(["chown", "-R", "postgres:postgres", path], check=True)


def _traversable(path):
    """Lets the postgres user pass through every folder above `path` (a
    `mktemp -d` work folder is root's and 0700)."""
    up = os.path.dirname(os.path.abspath(path))
    while up != os.path.dirname(up):
        mode = os.stat(up).st_mode
        if mode & 0o001 == 0:
            os.chmod(up, mode | 0o011)
        up = os.path.dirname(up)


def _sock(root):
    sock = os.path.join(os.path.dirname(os.path.abspath(root)), "pg-sock")
    os.makedirs(sock, exist_ok=True)
    shutil.chown(sock, "postgres")
    return sock


def _start(pgdata, sock):
    opts = f"-c listen_addresses= -k {sock} -p {PORT}"
    _as_postgres(f"{_pg('pg_ctl')} -D {pgdata} -o '{opts}' -w start >/dev/null")


def _stop(pgdata):
    _as_postgres(f"{_pg('pg_ctl')} -D {pgdata} -w stop -m fast >/dev/null")


def pg(root, scale=1.0):
    """`root/pgdata`: initdb, then pgbench initialisation at scale 35 x
    `scale` (about 550 MiB at 1), stopped cleanly."""
    pgdata = os.path.join(root, "pgdata")
    os.makedirs(root, exist_ok=True)
    _traversable(root)
    _own(root)
    _as_postgres(f"{_pg('initdb')} -D {pgdata} -A trust >/dev/null")
    sock = _sock(root)
    _start(pgdata, sock)
    try:
        _as_postgres(f"{_pg('pgbench')} -h {sock} -p {PORT} -i -s {max(1, round(35 * scale))} "
                     f"postgres >/dev/null 2>&1")
        _as_postgres(f"{_pg('psql')} -h {sock} -p {PORT} -c checkpoint postgres >/dev/null")
    finally:
        _stop(pgdata)


def pg_change(root, transactions=600):
    """A short pgbench workload (TPC-B-like updates), then a clean stop."""
    pgdata = os.path.join(root, "pgdata")
    _traversable(root)
    _own(root)
    sock = _sock(root)
    _start(pgdata, sock)
    try:
        _as_postgres(f"{_pg('pgbench')} -h {sock} -p {PORT} -t {transactions} postgres "
                     f">/dev/null 2>&1")
    finally:
        _stop(pgdata)


def pg_smoke(target):
    """Starts PostgreSQL on a restored copy and counts the accounts."""
    found = [d for d, _, files in os.walk(target) if "PG_VERSION" in files
             and os.path.basename(d) == "pgdata"]
    if not found:
        raise RuntimeError(f"no pgdata restored under {target}")
    pgdata = found[0]
    # A tool may restore its target folder 0700 and root's: the postgres
    # user must pass through the folders above the data folder.
    _traversable(pgdata)
    _own(pgdata)
    os.chmod(pgdata, 0o700)
    sock = _sock(target)
    _start(pgdata, sock)
    try:
        out = subprocess.run(["su", "postgres", "-c",
                              f"{_pg('psql')} -h {sock} -p {PORT} -tAc "
                              f"'select count(*) from pgbench_accounts' postgres"],
                             check=True, capture_output=True, text=True).stdout.strip()
        if int(out) <= 0:
            raise RuntimeError(f"restored PostgreSQL answered {out!r}")
    finally:
        _stop(pgdata)


def sqlite(root, scale=1.0, seed=5):
    """`root/sqlite/app.db`: 3 million rows x `scale` of blank-padded
    text columns, as business tables hold."""
    os.makedirs(os.path.join(root, "sqlite"), exist_ok=True)
    rng = random.Random(seed)
    db = sqlite3.connect(os.path.join(root, "sqlite", "app.db"))
    db.execute("create table orders(id integer primary key, customer text, item text, "
               "qty integer, note text)")
    rows = max(10_000, int(3_000_000 * scale))
    batch = []
    for i in range(rows):
        batch.append((f"customer-{rng.randrange(100000):06d}".ljust(32),
                      f"item-{rng.randrange(5000):05d}".ljust(24), rng.randrange(1, 50),
                      "" if rng.random() < 0.7 else f"note {rng.random():.6f}".ljust(40)))
        if len(batch) == 50_000:
            db.executemany("insert into orders(customer, item, qty, note) values (?,?,?,?)", batch)
            batch = []
    if batch:
        db.executemany("insert into orders(customer, item, qty, note) values (?,?,?,?)", batch)
    db.execute("create index orders_customer on orders(customer)")
    db.commit()
    db.close()


def sqlite_change(root, fraction=0.01, seed=6):
    """Random updates, deletes and inserts of about `fraction` of the rows."""
    rng = random.Random(seed)
    db = sqlite3.connect(os.path.join(root, "sqlite", "app.db"))
    (rows,) = db.execute("select max(id) from orders").fetchone()
    n = max(100, int(rows * fraction))
    db.executemany("update orders set qty = qty + 1, note = ? where id = ?",
                   [(f"changed {i}".ljust(40), rng.randrange(1, rows)) for i in range(n)])
    db.executemany("delete from orders where id = ?",
                   [(rng.randrange(1, rows),) for _ in range(n // 4)])
    db.executemany("insert into orders(customer, item, qty, note) values (?,?,?,?)",
                   [(f"customer-new-{i}".ljust(32), "item-new".ljust(24), 1, "")
                    for i in range(n // 4)])
    db.commit()
    db.close()


def sqlite_smoke(target):
    """Opens a restored copy: integrity check and a count."""
    found = [os.path.join(d, "app.db") for d, _, files in os.walk(target) if "app.db" in files]
    if not found:
        raise RuntimeError(f"no app.db restored under {target}")
    db = sqlite3.connect(found[0])
    (check,) = db.execute("pragma integrity_check").fetchone()
    (count,) = db.execute("select count(*) from orders").fetchone()
    db.close()
    if check != "ok" or count <= 0:
        raise RuntimeError(f"restored SQLite: integrity {check!r}, {count} rows")
