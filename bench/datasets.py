"""Deterministic (seeded) data sets for the benchmark.

mixed     many small text and source files plus a few large compressible and
          incompressible files;
versions  successive releases of a real npm package, unpacked;
db        one large file of fixed-size pages, with rounds of random in-place
          page updates between snapshots.

Every generator writes below a folder whose immediate subfolders are the
"indices" snapkeep sees; the other tools back up the same folder.
"""

import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import urllib.request

WORDS = (
    "the quick brown fox jumps over lazy dog snapshot restore index shard "
    "cluster node repository chunk pack blob tree manifest root generation "
    "error warning info debug trace request response latency bytes seconds "
    "fn let mut struct impl pub use mod match return self where async await "
    "for in if else while loop break continue const static enum trait type"
).split()


def _text(rng, size):
    """Compressible, log- or source-like text of about `size` bytes."""
    out = io.StringIO()
    n = 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
        line = f"{rng.randint(0, 99999):05d} {line}\n"
        out.write(line)
        n += len(line)
    return out.getvalue()[:size].encode()


def _random_bytes(rng, size):
    return rng.randbytes(size)


def mixed(root, scale=1.0, seed=1):
    """~50k small files in nested folders plus large files (~1 GiB at scale 1)."""
    rng = random.Random(seed)
    small = int(50_000 * scale)
    for i in range(small):
        # 8 indices, each a tree of folders of about 20 files.
        index = f"idx-{i % 8}"
        j = i // 8
        sub = f"d{j // 400:02d}/e{(j // 20) % 20:02d}"
        path = os.path.join(root, index, sub, f"f{i:06d}.{rng.choice(['rs', 'txt', 'log', 'json'])}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(_text(rng, rng.randint(200, 12_000)))
    big = os.path.join(root, "big")
    os.makedirs(big, exist_ok=True)
    mib = 1 << 20
    for j in range(2):
        with open(os.path.join(big, f"text-{j}.log"), "wb") as f:
            for _ in range(int(200 * scale) or 1):
                f.write(_text(rng, mib))
        with open(os.path.join(big, f"random-{j}.bin"), "wb") as f:
            for _ in range(int(150 * scale) or 1):
                f.write(_random_bytes(rng, mib))


def mixed_change(root, seed=2):
    """Edits ~1% of the small files, appends to a large log, adds 100 files."""
    rng = random.Random(seed)
    files = []
    for d, _, names in os.walk(root):
        if os.path.basename(d) == "big":
            continue
        files.extend(os.path.join(d, n) for n in names)
    files.sort()
    for path in rng.sample(files, max(1, len(files) // 100)):
        with open(path, "ab") as f:
            f.write(_text(rng, 200))
    with open(os.path.join(root, "big", "text-0.log"), "ab") as f:
        f.write(_text(rng, 1 << 20))
    new = os.path.join(root, "idx-0", "new")
    os.makedirs(new, exist_ok=True)
    for i in range(100):
        with open(os.path.join(new, f"n{i:03d}.txt"), "wb") as f:
            f.write(_text(rng, 2000))


# npm releases of one package, oldest first; unpacked into versions/<n>/.
VERSION_PACKAGES = {
    "full": ("typescript", ["5.0.4", "5.1.6", "5.2.2", "5.3.3", "5.4.5"]),
    "quick": ("semver", ["7.5.4", "7.6.0", "7.6.1", "7.6.2", "7.6.3"]),
}


def fetch_versions(cache, quick=False):
    """Downloads (once) the package tarballs from the npm registry."""
    name, versions = VERSION_PACKAGES["quick" if quick else "full"]
    os.makedirs(cache, exist_ok=True)
    tarballs = []
    for v in versions:
        dest = os.path.join(cache, f"{name}-{v}.tgz")
        if not os.path.exists(dest):
            meta = subprocess.run(
                ["npm", "view", f"{name}@{v}", "dist.tarball"],
                check=True, capture_output=True, text=True,
            ).stdout.strip()
            with urllib.request.urlopen(meta) as r, open(dest + ".part", "wb") as f:
                shutil.copyfileobj(r, f)
            os.rename(dest + ".part", dest)
        tarballs.append((v, dest))
    return name, tarballs


def unpack_version(tgz, root):
    """Replaces `root`'s contents with one release (under root/package/)."""
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root)
    with tarfile.open(tgz) as t:
        t.extractall(root, filter="data")


PAGE = 8192


def db(root, scale=1.0, seed=3):
    """One file of 8 KiB pages (512 MiB at scale 1), each page distinct."""
    rng = random.Random(seed)
    path = os.path.join(root, "db", "table.db")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pages = int(512 * 1024 * 1024 * scale) // PAGE
    with open(path, "wb") as f:
        for p in range(pages):
            header = p.to_bytes(8, "little") + bytes(8)
            f.write(header + _text(rng, PAGE - 16))
    return path


def db_update(path, fraction=0.01, seed=4):
    """Rewrites `fraction` of the pages in place, at random positions."""
    rng = random.Random(seed)
    size = os.path.getsize(path)
    pages = size // PAGE
    with open(path, "r+b") as f:
        for p in rng.sample(range(pages), max(1, int(pages * fraction))):
            f.seek(p * PAGE)
            f.write(p.to_bytes(8, "little") + rng.randint(1, 1 << 60).to_bytes(8, "little")
                    + _text(rng, PAGE - 16))


def tree_bytes(root):
    total = 0
    for d, _, names in os.walk(root):
        for n in names:
            total += os.path.getsize(os.path.join(d, n))
    return total


if __name__ == "__main__":
    print(json.dumps(VERSION_PACKAGES))
