"""The node's figures against issue 15's performance targets.

A real `snapkeep node` (the benchmark's binary) on 127.0.0.1:

- a snapshot through `PUT _snapshot/<repo>/<snap>?wait_for_completion=true`
  against `snapkeep snapshot create` of the same data into a fresh
  repository, and a restore through `_restore?wait_for_completion=true`
  against `snapkeep restore` of the same snapshot into an empty folder,
  alternating which goes first (target: the API within 5% of the CLI,
  judged on each one's fastest run; medians are shown beside). CPU seconds (the node process's own, against
  the CLI process's) are reported beside: they show the API's own cost,
  while wall-clock ratios move with whatever else the machine runs;
- `GET _snapshot/<repo>/_all?size=100` on a repository of 10,000
  snapshots from 16 concurrent keep-alive clients (target: p99 < 50 ms);
- an idle node's RSS after start-up and one request (target: < 30 MiB).
"""

import http.client
import json
import os
import shutil
import statistics
import subprocess
import threading
import time

from tools import dir_bytes, run, run_cpu

SNAPSHOT_RATIO_TARGET = 1.05
LIST_P99_TARGET_MS = 50.0
IDLE_RSS_TARGET_MIB = 30.0
CLIENTS = 16


class Node:
    """One `snapkeep node` process on a free port, stopped by `stop`."""

    def __init__(self, binary, data, state, path_repo, log, token=None):
        """With `token`, the node accepts only requests that bear it (its
        SNAPKEEP_NODE_TOKEN), and this client sends it."""
        os.makedirs(data, exist_ok=True)
        self.log = open(log, "ab")
        env = dict(os.environ)
        env.pop("SNAPKEEP_NODE_TOKEN", None)
        self.auth = {}
        if token:
            env["SNAPKEEP_NODE_TOKEN"] = token
            self.auth = {"Authorization": f"Bearer {token}"}
        self.proc = subprocess.Popen(
            [binary, "node", "--data", data, "--state", state, "--path-repo", path_repo,
             "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        line = self.proc.stdout.readline()
        if "listening on http://" not in line:
            self.stop()
            raise RuntimeError(f"snapkeep node did not start: {line!r} (log: {log})")
        self.port = int(line.rsplit(":", 1)[1])

    def call(self, method, path, body=None, conn=None):
        """(status, body bytes); `conn` reuses a keep-alive connection."""
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=3600)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        headers.update(self.auth)
        c.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return r.status, data

    def ok(self, method, path, body=None):
        status, data = self.call(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {data[:2000]!r}")
        return json.loads(data)

    def timed(self, method, path, body=None):
        """(seconds, CPU seconds the node spent meanwhile)."""
        cpu = self.cpu_seconds()
        start = time.monotonic()
        self.ok(method, path, body)
        return time.monotonic() - start, self.cpu_seconds() - cpu

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def register(self, name, location):
        self.ok("PUT", f"/_snapshot/{name}", {"type": "fs", "settings": {"location": location}})

    def rss_bytes(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def threads(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/task"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


def empty(path):
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path)


def alternating(runs, measure):
    """Runs `measure(kind, run)` for "api" and "cli" `runs` times each,
    alternating which goes first; returns {kind: [(seconds, CPU seconds)]}."""
    times = {"api": [], "cli": []}
    for r in range(runs):
        for kind in (("api", "cli") if r % 2 == 0 else ("cli", "api")):
            times[kind].append(measure(kind, r))
    return times


def snapshot_and_restore(binary, src, work, runs):
    """API against CLI: a snapshot of `src` into a fresh repository, then a
    restore of the last API snapshot into an empty folder."""
    repos = os.path.join(work, "repos")
    empty(repos)
    node = Node(binary, src, os.path.join(work, "state-snap"), repos, os.path.join(work, "node.log"))
    last = {}
    try:
        def snapshot(kind, r):
            repo = os.path.join(repos, f"{kind}-{r}")
            if kind == "cli":
                run([binary, "repo", "init", repo, "-q"])
                return run_cpu([binary, "snapshot", "create", repo, "s", "--source", src, "-q"])
            node.register(f"r{r}", repo)
            seconds = node.timed("PUT", f"/_snapshot/r{r}/s?wait_for_completion=true", {})
            last["repo"] = repo
            return seconds
        snap = alternating(runs, snapshot)
    finally:
        node.stop()
    repo = last["repo"]
    data = os.path.join(work, "restore-data")
    empty(data)
    node = Node(binary, data, os.path.join(work, "state-restore"), repos,
                os.path.join(work, "node.log"))
    restored = {}
    try:
        node.register("r", repo)

        def restore(kind, r):
            target = data if kind == "api" else os.path.join(work, "restore-cli")
            empty(target)
            if kind == "api":
                seconds = node.timed("POST", "/_snapshot/r/s/_restore?wait_for_completion=true",
                                     {"include_global_state": True})
            else:
                seconds = run_cpu([binary, "restore", repo, "s", "--target", target, "-q",
                                   "--include-global-state"])
            restored[kind] = dir_bytes(target)
            return seconds
        rest = alternating(runs, restore)
    finally:
        node.stop()
    if restored["api"] != restored["cli"] or restored["cli"] != dir_bytes(src):
        raise RuntimeError(f"restores differ: {restored}, source {dir_bytes(src)} bytes")
    return snap, rest


def many_snapshots_repo(binary, grower, work, count):
    """A repository of `count` snapshots: one real snapshot of a small tree
    (8 indices), grown by the many_snapshots example. Returns (path,
    seconds to build)."""
    src = os.path.join(work, "small-src")
    empty(src)
    for i in range(8):
        os.makedirs(os.path.join(src, f"idx-{i}"))
        with open(os.path.join(src, f"idx-{i}", "doc.json"), "w") as f:
            f.write(json.dumps({"index": i}) * 50)
    repo = os.path.join(work, "many", "r")
    empty(os.path.dirname(repo))
    start = time.monotonic()
    run([binary, "repo", "init", repo, "-q"])
    run([binary, "snapshot", "create", repo, "s00000", "--source", src, "-q"])
    subprocess.run([grower, repo, str(count)], check=True, capture_output=True)
    return repo, time.monotonic() - start


def load(node, path, requests, clients=CLIENTS):
    """`requests` GETs of `path` from `clients` threads, each on its own
    keep-alive connection; returns per-request latencies in ms and the
    wall time."""
    latencies = []
    lock = threading.Lock()
    left = [requests]
    failures = []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
        mine = []
        try:
            while True:
                with lock:
                    if left[0] == 0:
                        break
                    left[0] -= 1
                start = time.perf_counter()
                status, _ = node.call("GET", path, conn=conn)
                mine.append((time.perf_counter() - start) * 1000)
                if status != 200:
                    failures.append(status)
                    break
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    if failures:
        raise RuntimeError(f"GET {path} failed: {failures[:5]}")
    return latencies, wall


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def listing_and_idle_rss(binary, grower, work, count, requests):
    repo, build_s = many_snapshots_repo(binary, grower, work, count)
    node = Node(binary, os.path.join(work, "idle-data"), os.path.join(work, "state-list"),
                os.path.dirname(repo), os.path.join(work, "node.log"))
    try:
        node.ok("GET", "/")
        idle_rss, threads = node.rss_bytes(), node.threads()
        node.register("many", repo)
        path = "/_snapshot/many/_all?size=100"
        first = node.ok("GET", path)
        if first["total"] != count or len(first["snapshots"]) != min(100, count):
            raise RuntimeError(f"listing shows {first['total']} snapshots, not {count}")
        load(node, path, min(requests, 4 * CLIENTS))  # warm-up, not counted
        latencies, wall = load(node, path, requests)
        busy_rss = node.rss_bytes()
    finally:
        node.stop()
    return {
        "snapshots": count, "build_seconds": build_s, "requests": requests, "clients": CLIENTS,
        "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies), "requests_per_second": requests / wall,
        "idle_rss_bytes": idle_rss, "idle_threads": threads, "rss_after_load_bytes": busy_rss,
    }


def bench_node(binary, grower, src, work, runs, count, requests):
    """Every node figure; returns (json-able dict, markdown lines)."""
    empty(work)
    snap, rest = snapshot_and_restore(binary, src, work, runs)
    listing = listing_and_idle_rss(binary, grower, work, count, requests)
    out = {"snapshot": snap, "restore": rest, "listing": listing}
    lines = ["", f"Node (`snapkeep node`, issue 15): API against CLI on the mixed data set "
             f"({dir_bytes(src) / 2**20:.0f} MiB), {runs} alternating runs each; "
             f"`GET _snapshot/r/_all?size=100` on {count} snapshots from {CLIENTS} keep-alive "
             f"clients, {requests} requests:", "",
             "| measure | API / node | CLI | API / CLI | target | met |",
             "|---|---:|---:|---:|---|---|"]
    for name, times in (("snapshot", snap), ("restore", rest)):
        # The verdict compares the fastest run of each (as timeit advises):
        # both do the same work, and on a shared machine a run is only ever
        # slowed by others (page-cache reclaim made single restores of both
        # kinds 5x slower here), so the minimum is each one's own cost.
        # Medians and CPU seconds are shown beside it.
        api, cli = (min(t for t, _ in times[k]) for k in ("api", "cli"))
        api_med, cli_med = (statistics.median(t for t, _ in times[k]) for k in ("api", "cli"))
        api_cpu, cli_cpu = (statistics.median(c for _, c in times[k]) for k in ("api", "cli"))
        ratio = api / cli
        out[f"{name}_ratio"] = ratio
        out[f"{name}_median_ratio"] = api_med / cli_med
        out[f"{name}_cpu_ratio"] = api_cpu / cli_cpu
        lines.append(f"| {name}, fastest run (s) | {api:.2f} | {cli:.2f} | {ratio:.3f} | "
                     f"<= {SNAPSHOT_RATIO_TARGET} | {verdict(ratio <= SNAPSHOT_RATIO_TARGET)} |")
        lines.append(f"| {name}, median (s) | {api_med:.2f} | {cli_med:.2f} | "
                     f"{api_med / cli_med:.3f} | | |")
        lines.append(f"| {name}, CPU median (s) | {api_cpu:.2f} | {cli_cpu:.2f} | "
                     f"{api_cpu / cli_cpu:.3f} | | |")
    lines.append(f"| listing p50 / p99 (ms) | {listing['p50_ms']:.1f} / {listing['p99_ms']:.1f} "
                 f"| | | p99 < {LIST_P99_TARGET_MS:.0f} ms | "
                 f"{verdict(listing['p99_ms'] < LIST_P99_TARGET_MS)} |")
    idle = listing["idle_rss_bytes"] / 2**20
    lines.append(f"| idle RSS (MiB) | {idle:.1f} | | | < {IDLE_RSS_TARGET_MIB:.0f} MiB | "
                 f"{verdict(idle < IDLE_RSS_TARGET_MIB)} |")
    lines += ["", f"Listing: {listing['requests_per_second']:.0f} requests/s, max "
              f"{listing['max_ms']:.1f} ms; the {count}-snapshot repository took "
              f"{listing['build_seconds']:.1f} s to build; idle node {listing['idle_threads']} "
              f"threads, RSS after the load {listing['rss_after_load_bytes'] / 2**20:.1f} MiB."]
    return out, lines


def verdict(met):
    return "PASS" if met else "MISS"
