"""Mounted snapshots against issue 18's targets, side by side with
`restic mount` on the same data (rustic's mount too when it is installed).

For each tool, on a repository holding one large file (1 GiB at scale 1):

- `restore` of the snapshot (page cache dropped first): the throughput a
  mount is judged against;
- a cold mount (empty chunk cache, page cache dropped): time to the
  file's first byte, then a sequential read of the whole file (target:
  at least 80% of the same tool's restore throughput; restic mount reaches
  about 12% of restic restore);
- a warm mount (a new mount over snapkeep's chunk cache, which the read
  before filled and the page cache still holds; restic has no data cache):
  2,000 random 4 KiB reads (target: p99 under 1 ms);
- with PostgreSQL installed (Debian's postgresql) and not --quick: a
  pgbench data directory started straight from `mount --writable` against
  restore-then-start, each until its first query (a primary-key lookup)
  answers.
"""

import glob
import os
import random
import shutil
import signal
import statistics
import subprocess
import time

from tools import PASSWORD, Rustic, run

RATIO_TARGET = 0.8
RANDOM_P99_TARGET_MS = 1.0
RANDOM_READS = 2000
CHUNK = 1 << 20


def drop_caches():
    try:
        subprocess.run(["sync"], check=False)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass  # not root: figures then include the page cache


def unmount(path):
    subprocess.run(["umount", "-l", path], capture_output=True, check=False)


def read_all(path):
    """Seconds to read `path` sequentially in 1 MiB reads, and its size."""
    start = time.perf_counter()
    size = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(CHUNK)
            if not b:
                break
            size += len(b)
    return time.perf_counter() - start, size


def first_byte_ms(path):
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        f.read(1)
    return (time.perf_counter() - start) * 1000


def random_reads_ms(path, count, seed=7):
    rng = random.Random(seed)
    size = os.path.getsize(path)
    times = []
    fd = os.open(path, os.O_RDONLY)
    try:
        for _ in range(count):
            at = rng.randrange(0, max(1, size - 4096)) // 4096 * 4096
            start = time.perf_counter()
            os.pread(fd, 4096, at)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        os.close(fd)
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]


class SnapkeepMount:
    name = "snapkeep"

    def __init__(self, binary):
        self.binary = binary

    def prepare(self, repo, src):
        run([self.binary, "repo", "init", repo])
        run([self.binary, "snapshot", "create", repo, "s1", "--source", src])

    def restore(self, repo, target):
        run([self.binary, "restore", repo, "s1", "--target", target, "-q"])
        return os.path.join(target, "data", "big.bin")

    def mount(self, repo, at, cache):
        proc = subprocess.Popen([self.binary, "mount", repo, "s1", at, "--index", "data",
                                 "--cache", cache, "--json"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        proc.stdout.readline()  # "mounted"
        return proc, os.path.join(at, "big.bin")


class ResticMount:
    name = "restic"

    def _env(self, repo):
        return {"RESTIC_PASSWORD": PASSWORD, "RESTIC_CACHE_DIR": repo + ".cache"}

    def prepare(self, repo, src):
        env = self._env(repo)
        run(["restic", "init", "--repo", repo, "--repository-version", "2"], env=env)
        run(["restic", "--repo", repo, "backup", ".", "--compression", "auto", "--host", "b"],
            cwd=src, env=env)

    def restore(self, repo, target):
        run(["restic", "--repo", repo, "restore", "latest", "--target", target],
            env=self._env(repo))
        return find(target, "big.bin")

    def mount(self, repo, at, cache):
        env = dict(os.environ, **self._env(repo))
        proc = subprocess.Popen(["restic", "--repo", repo, "mount", at], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while not os.path.isdir(os.path.join(at, "snapshots", "latest")):
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("restic mount did not come up")
            time.sleep(0.05)
        return proc, find(os.path.join(at, "snapshots", "latest"), "big.bin")


class RusticMount:
    """rustic's mount (built with its `mount` feature: bench/run.sh
    --with-rustic), over the snapshot's root; like restic's, it has no data
    cache of its own."""
    name = "rustic"

    def __init__(self):
        self._args = Rustic()._args

    @staticmethod
    def available():
        if not shutil.which("rustic"):
            return False
        out = subprocess.run(["rustic", "mount", "--help"], capture_output=True, text=True)
        return out.returncode == 0

    def prepare(self, repo, src):
        run(self._args(repo) + ["init"])
        run(self._args(repo) + ["backup", ".", "--host", "b"], cwd=src)

    def restore(self, repo, target):
        run(self._args(repo) + ["restore", "latest", target])
        return find(target, "big.bin")

    def mount(self, repo, at, cache):
        proc = subprocess.Popen(self._args(repo) + ["mount", at, "latest"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while not os.path.isdir(os.path.join(at, "data")):
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("rustic mount did not come up")
            time.sleep(0.05)
        return proc, find(at, "big.bin")


def find(root, name):
    for d, _, files in os.walk(root):
        if name in files:
            return os.path.join(d, name)
    raise RuntimeError(f"{name} not found under {root}")


def stop(proc, at):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    unmount(at)


def measure(tool, work, src, runs):
    repo = os.path.join(work, tool.name, "repo")
    shutil.rmtree(os.path.join(work, tool.name), ignore_errors=True)
    os.makedirs(os.path.dirname(repo))
    tool.prepare(repo, src)
    out = {"restore_s": [], "cold_s": [], "first_byte_ms": [], "p50_ms": [], "p99_ms": []}
    size = 0
    for _ in range(runs):
        target = os.path.join(work, tool.name, "restored")
        shutil.rmtree(target, ignore_errors=True)
        drop_caches()
        start = time.perf_counter()
        tool.restore(repo, target)
        out["restore_s"].append(time.perf_counter() - start)
        shutil.rmtree(target, ignore_errors=True)

        at = os.path.join(work, tool.name, "mnt")
        cache = os.path.join(work, tool.name, "cache")
        shutil.rmtree(cache, ignore_errors=True)
        os.makedirs(at, exist_ok=True)
        proc, path = tool.mount(repo, at, cache)
        try:
            drop_caches()
            out["first_byte_ms"].append(first_byte_ms(path))
            drop_caches()
            seconds, size = read_all(path)
            out["cold_s"].append(seconds)
        finally:
            stop(proc, at)
        # Warm: a new mount (the kernel's cache of the old one is gone)
        # over the chunk cache the read before filled, which stays in the
        # page cache as it would on a machine that just read it.
        proc, path = tool.mount(repo, at, cache)
        try:
            p50, p99 = random_reads_ms(path, RANDOM_READS)
            out["p50_ms"].append(p50)
            out["p99_ms"].append(p99)
        finally:
            stop(proc, at)
    figures = {k: statistics.median(v) for k, v in out.items()}
    figures["bytes"] = size
    figures["restore_mb_s"] = size / figures["restore_s"] / 1e6
    figures["cold_mb_s"] = size / figures["cold_s"] / 1e6
    figures["ratio"] = figures["cold_mb_s"] / figures["restore_mb_s"]
    return figures


def bench_mount(binary, work, scale, runs, quick):
    """The mount section: (figures, table lines)."""
    shutil.rmtree(work, ignore_errors=True)
    src = os.path.join(work, "src")
    os.makedirs(os.path.join(src, "data"))
    size = max(8 << 20, int((1 << 30) * scale))
    # Half random, half compressible text: chunks of both kinds.
    rng = random.Random(1)
    with open(os.path.join(src, "data", "big.bin"), "wb") as f:
        left = size
        while left > 0:
            n = min(CHUNK, left)
            if (left // CHUNK) % 2:
                f.write(rng.randbytes(n))
            else:
                f.write((b"line of a log that compresses well %08d\n" % (left % 99991)) * (n // 44)
                        + b"\n" * (n % 44))
            left -= n
    tools = [SnapkeepMount(binary)]
    if shutil.which("restic"):
        tools.append(ResticMount())
    if RusticMount.available():
        tools.append(RusticMount())
    results = {}
    for tool in tools:
        try:
            results[tool.name] = measure(tool, work, src, runs)
        except (RuntimeError, subprocess.CalledProcessError) as e:
            print(f"mount: {tool.name} skipped: {e}", flush=True)
    lines = ["", "### Mounted snapshots (issue 18)", "",
             f"One {size / 2**20:.0f} MiB file, page cache dropped before each step; "
             f"median of {runs}.", "",
             "| tool | restore MB/s | cold mount read MB/s | mount / restore | first byte ms "
             "| warm random 4 KiB p50 ms | p99 ms |", "|---|---|---|---|---|---|---|"]
    for name, f in results.items():
        lines.append(f"| {name} | {f['restore_mb_s']:.0f} | {f['cold_mb_s']:.0f} | "
                     f"{f['ratio']:.2f} | {f['first_byte_ms']:.1f} | {f['p50_ms']:.3f} | "
                     f"{f['p99_ms']:.3f} |")
    if "snapkeep" in results:
        f = results["snapkeep"]
        lines.append("")
        lines.append(f"Targets: mount / restore >= {RATIO_TARGET}: "
                     f"{'met' if f['ratio'] >= RATIO_TARGET else 'NOT met'}; warm random p99 < "
                     f"{RANDOM_P99_TARGET_MS} ms: "
                     f"{'met' if f['p99_ms'] < RANDOM_P99_TARGET_MS else 'NOT met'}.")
    pg = None
    if not quick and glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        pg = bench_postgres(binary, os.path.join(work, "pg"), scale)
        results["postgres"] = pg
        lines.append("")
        lines.append(f"PostgreSQL ({pg['mib']:.0f} MiB data directory): first query after "
                     f"`mount --writable` {pg['mount_s']:.2f} s, after restore then start "
                     f"{pg['restore_s']:.2f} s ({pg['restore_s'] / pg['mount_s']:.1f}x).")
    shutil.rmtree(work, ignore_errors=True)
    return results, lines


def pg_bin(name):
    return sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1]


def as_postgres(cmd):
    return subprocess.run(["su", "postgres", "-c", cmd], check=True, capture_output=True)


def bench_postgres(binary, work, scale):
    """Seconds to a first query: mount --writable and start, against
    restore and start, on a pgbench data directory."""
    src = os.path.join(work, "src")
    pgdata = os.path.join(src, "pgdata")
    sock = os.path.join(work, "sock")
    os.makedirs(src)
    os.makedirs(sock)
    shutil.chown(src, "postgres")
    shutil.chown(sock, "postgres")
    shutil.chown(work, "postgres")
    as_postgres(f"{pg_bin('initdb')} -D {pgdata} -A trust >/dev/null")
    opts = f"-c listen_addresses= -k {sock} -p 54329"
    as_postgres(f"{pg_bin('pg_ctl')} -D {pgdata} -o '{opts}' -w start >/dev/null")
    as_postgres(f"{pg_bin('pgbench')} -h {sock} -p 54329 -i -s {max(1, int(50 * scale))} "
                f"postgres >/dev/null 2>&1")
    as_postgres(f"{pg_bin('pg_ctl')} -D {pgdata} -w stop >/dev/null")
    repo = os.path.join(work, "repo")
    run([binary, "repo", "init", repo])
    run([binary, "snapshot", "create", repo, "s1", "--source", src])
    mib = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(pgdata)
              for f in fs) / 2**20
    # A point lookup through the primary key: the service answering, not
    # a scan of the whole table.
    query = (f"{pg_bin('psql')} -h {sock} -p 54329 -tAc "
             f"'select abalance from pgbench_accounts where aid = 4242' postgres")

    def start_and_query(folder):
        as_postgres(f"{pg_bin('pg_ctl')} -D {folder} -o '{opts}' -w start >/dev/null")
        as_postgres(query)
        as_postgres(f"{pg_bin('pg_ctl')} -D {folder} -w stop -m fast >/dev/null")

    drop_caches()
    start = time.perf_counter()
    target = os.path.join(work, "restored")
    run([binary, "restore", repo, "s1", "--target", target, "--indices", "pgdata", "-q"])
    start_and_query(os.path.join(target, "pgdata"))
    restore_s = time.perf_counter() - start

    at = os.path.join(work, "mnt")
    upper = os.path.join(work, "upper")
    os.makedirs(at)
    drop_caches()
    start = time.perf_counter()
    proc = subprocess.Popen([binary, "mount", repo, "s1", at, "--index", "pgdata", "--cache",
                             os.path.join(work, "cache"), "--writable", "--upper", upper,
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdout.readline()
    try:
        start_and_query(at)
        mount_s = time.perf_counter() - start
    finally:
        stop(proc, at)
    return {"mib": mib, "restore_s": restore_s, "mount_s": mount_s}
