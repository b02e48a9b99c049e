"""How each backup tool is driven: init, backup, restore, check, stored size.

Every command runs with the data folder as its working directory where the
tool records paths, so all tools restore the same relative layout. Peak RSS
is measured per process with wait4.
"""

import os
import shutil
import subprocess
import time

PASSWORD = "bench-password"


def run(cmd, cwd=None, env=None):
    """Runs `cmd`; returns (seconds, peak RSS in bytes). Fails loudly."""
    elapsed, usage = _wait(cmd, cwd, env)
    return elapsed, usage.ru_maxrss * 1024


def run_cpu(cmd):
    """Runs `cmd`; returns (seconds, CPU seconds, user and system)."""
    elapsed, usage = _wait(cmd, None, None)
    return elapsed, usage.ru_utime + usage.ru_stime


def _wait(cmd, cwd, env):
    """Runs `cmd` to its end; (seconds, its rusage). Fails loudly."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    start = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.monotonic() - start
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {code}: {err.strip()[-2000:]}")
    return elapsed, usage


def dir_bytes(path):
    total = 0
    for d, _, names in os.walk(path):
        for n in names:
            p = os.path.join(d, n)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


class Tool:
    name = "?"
    version = "?"
    notes = ""

    def available(self):
        return shutil.which(self.binary) is not None

    def init(self, repo):
        raise NotImplementedError

    def backup(self, repo, src, name):
        raise NotImplementedError

    def restore(self, repo, name, target):
        raise NotImplementedError

    def check(self, repo):
        raise NotImplementedError

    def stored(self, repo):
        return dir_bytes(repo)


class Snapkeep(Tool):
    name = "snapkeep"
    notes = "zstd level 3 per blob; no encryption (v1)"
    env = None
    init_args = []

    def stored(self, repo):
        # The `reserve` file is allocated free space kept for deletes on a
        # full disk, not stored data.
        reserve = os.path.join(repo, "reserve")
        kept = os.path.getsize(reserve) if os.path.isfile(reserve) else 0
        return dir_bytes(repo) - kept

    def __init__(self, binary, name="snapkeep"):
        self.binary = binary
        self.name = name
        self.version = subprocess.run([binary, "--version"], capture_output=True,
                                      text=True).stdout.strip()

    def available(self):
        return os.path.exists(self.binary)

    def init(self, repo):
        return run([self.binary, "repo", "init", repo, "-q"] + self.init_args, env=self.env)

    def backup(self, repo, src, name):
        return run([self.binary, "snapshot", "create", repo, name, "--source", src, "-q"],
                   env=self.env)

    def restore(self, repo, name, target, over=False):
        cmd = [self.binary, "restore", repo, name, "--target", target, "-q",
               "--include-global-state"]
        if over:
            cmd.append("--overwrite")
        return run(cmd, env=self.env)

    def check(self, repo):
        return run([self.binary, "repo", "check", repo, "--read-data", "-q"], env=self.env)


class SnapkeepEncrypted(Snapkeep):
    """The same binary on an encrypted repository (`repo init --encryption`)."""
    name = "snapkeep-enc"
    notes = "zstd level 3 per blob; XChaCha20-Poly1305 and keyed ids (encrypted)"
    env = {"SNAPKEEP_PASSWORD": PASSWORD}
    init_args = ["--encryption"]

    def __init__(self, binary):
        super().__init__(binary, name=self.name)


class Restic(Tool):
    name = "restic"
    binary = "restic"
    notes = "compression auto (zstd); AES-256 encryption always on"

    def __init__(self):
        if self.available():
            self.version = subprocess.run(["restic", "version"], capture_output=True,
                                          text=True).stdout.split()[1]
        self.env = {"RESTIC_PASSWORD": PASSWORD, "RESTIC_CACHE_DIR": ""}

    def _env(self, repo):
        return {"RESTIC_PASSWORD": PASSWORD, "RESTIC_CACHE_DIR": repo + ".cache"}

    def init(self, repo):
        return run(["restic", "init", "--repo", repo, "--repository-version", "2"],
                   env=self._env(repo))

    def backup(self, repo, src, name):
        return run(["restic", "--repo", repo, "backup", ".", "--tag", name,
                    "--compression", "auto", "--host", "bench"], cwd=src, env=self._env(repo))

    def restore(self, repo, name, target, over=False):
        return run(["restic", "--repo", repo, "restore", "latest", "--tag", name,
                    "--target", target], env=self._env(repo))

    def check(self, repo):
        return run(["restic", "--repo", repo, "check", "--read-data"], env=self._env(repo))


class Borg(Tool):
    name = "borg"
    binary = "borg"
    notes = "zstd level 3; encryption none"

    def __init__(self):
        if self.available():
            self.version = subprocess.run(["borg", "--version"], capture_output=True,
                                          text=True).stdout.split()[-1]

    def _env(self, repo):
        return {"BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
                "BORG_CACHE_DIR": repo + ".cache", "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes"}

    def init(self, repo):
        return run(["borg", "init", "--encryption", "none", repo], env=self._env(repo))

    def backup(self, repo, src, name):
        return run(["borg", "create", "--compression", "zstd,3", f"{repo}::{name}", "."],
                   cwd=src, env=self._env(repo))

    def restore(self, repo, name, target, over=False):
        os.makedirs(target, exist_ok=True)
        return run(["borg", "extract", f"{repo}::{name}"], cwd=target, env=self._env(repo))

    def check(self, repo):
        return run(["borg", "check", "--verify-data", repo], env=self._env(repo))


class Rustic(Tool):
    name = "rustic"
    binary = "rustic"
    notes = "zstd level 3; encryption always on"

    def __init__(self):
        if self.available():
            self.version = subprocess.run(["rustic", "--version"], capture_output=True,
                                          text=True).stdout.split()[-1]

    def _args(self, repo):
        return ["rustic", "--repository", repo, "--password", PASSWORD,
                "--cache-dir", repo + ".cache", "--no-progress"]

    def init(self, repo):
        return run(self._args(repo) + ["init"])

    def backup(self, repo, src, name):
        return run(self._args(repo) + ["backup", ".", "--tag", name, "--host", "bench"], cwd=src)

    def restore(self, repo, name, target, over=False):
        return run(self._args(repo) + ["restore", "latest", target, "--filter-tags", name])

    def check(self, repo):
        return run(self._args(repo) + ["check", "--read-data"])
