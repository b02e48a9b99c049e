#!/usr/bin/env python3
"""Lag of cross-cluster replication on this machine: two snapkeep nodes on
127.0.0.1, a follower index following a leader index; each round writes one
small file into the leader folder and times until the follower folder shows
it. Prints p50, p90 and max over the rounds.

    python3 scripts/ccr-lag.py [--bin target/debug/snapkeep] [--rounds 30] [--files 2000]

--files fills the leader index first (the leader compares the whole index
on each rescan, so a larger index shows the cost of the periodic rescan).
Stops its nodes by pid and removes its temporary folder at the end.
"""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, root, port):
    for sub in ("state", "data", "backups"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    p = subprocess.Popen(
        [binary, "node", "--listen", f"127.0.0.1:{port}",
         "--state", os.path.join(root, "state"), "--data", os.path.join(root, "data"),
         "--path-repo", os.path.join(root, "backups")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    sys.exit("the node did not start")


def call(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                               headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(r, timeout=30) as a:
        return json.loads(a.read() or b"null")


def report(what, lags):
    lags.sort()
    q = lambda p: lags[min(len(lags) - 1, int(p * len(lags)))]
    print(f"{what}: p50 {q(0.5)*1000:.0f} ms, p90 {q(0.9)*1000:.0f} ms, "
          f"max {lags[-1]*1000:.0f} ms")


def leader_only(port, logs, rounds):
    """A read that holds the head waits; a write wakes it."""
    import threading
    path = "/logs/_ccr/changes?follower=lag&timeout=30s"
    head = call(port, "GET", path)["head"]["point"]
    after = f"{head['lineage']}:{head['seq']}"
    lags = []
    for r in range(rounds):
        answered = {}
        def poll():
            answered["v"] = call(port, "GET", f"{path}&after={after}")
            answered["t"] = time.monotonic()
        t = threading.Thread(target=poll)
        t.start()
        time.sleep(0.5)  # the read is waiting
        t0 = time.monotonic()
        with open(os.path.join(logs, f"tick-{r}"), "wb") as f:
            f.write(b"tick")
        t.join()
        lags.append(answered["t"] - t0)
        head = answered["v"]["head"]["point"]
        after = f"{head['lineage']}:{head['seq']}"
    report(f"{rounds} rounds, write to the leader's answer", lags)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/debug/snapkeep")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--leader-only", action="store_true",
                    help="time only the leader: from the write to the answer of a waiting read")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ccr-lag-")
    lroot, froot = os.path.join(tmp, "leader"), os.path.join(tmp, "follower")
    logs = os.path.join(lroot, "data", "logs")
    for i in range(a.files):
        d = os.path.join(logs, f"d{i % 50}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            f.write(os.urandom(1024))
    try:
        measure(a, tmp, lroot, froot, logs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(a, tmp, lroot, froot, logs):
    lport, fport = free_port(), free_port()
    if a.leader_only:
        node = start(a.bin, lroot, lport)
        try:
            leader_only(lport, logs, a.rounds)
        finally:
            node.terminate()
            node.wait(10)
        return
    nodes = [start(a.bin, lroot, lport), start(a.bin, froot, fport)]
    try:
        call(fport, "PUT", "/_cluster/settings", {"persistent": {"cluster": {"remote": {
            "leader": {"mode": "proxy", "proxy_address": f"127.0.0.1:{lport}"}}}}})
        call(fport, "PUT", "/copy/_ccr/follow",
             {"remote_cluster": "leader", "leader_index": "logs", "read_poll_timeout": "30s"})
        copy = os.path.join(froot, "data", "copy")
        deadline = time.time() + 120
        while not os.path.exists(os.path.join(copy, "d0", "f0")):
            if time.time() > deadline:
                sys.exit("the first checkpoint never arrived")
            time.sleep(0.05)
        lags = []
        for r in range(a.rounds):
            time.sleep(0.3)
            name = f"tick-{r}"
            t0 = time.monotonic()
            with open(os.path.join(logs, name), "wb") as f:
                f.write(b"tick")
            target = os.path.join(copy, name)
            while not os.path.exists(target):
                if time.monotonic() - t0 > 30:
                    sys.exit(f"round {r}: no change after 30 s")
                time.sleep(0.002)
            lags.append(time.monotonic() - t0)
        report(f"{a.files} files, {a.rounds} rounds, write to follower", lags)
    finally:
        for n in nodes:
            n.terminate()
            n.wait(10)


if __name__ == "__main__":
    main()
