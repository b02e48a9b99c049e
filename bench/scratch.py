"""The work folder's file system.

ext4 without a journal (this VM's root file system) skips, when it
allocates an inode, every inode freed in the last 60 seconds, or the last
six minutes while their inode table block is dirty (`recently_deleted` in
fs/ext4/ialloc.c). A benchmark that removes one tool's 50,000-file restore
and then times the next tool's restore measures those scans: on this VM
they took 70% of a restore's samples, and the same restic restore of the
mixed data took 6 s in one run and 22 s in the next. Such file systems are
rare outside VMs built for throwaway work (`mkfs.ext4`'s default has a
journal), so on one the work folder becomes a journaled ext4 image mounted
in its place (as root; otherwise the report says the figures are exposed to
it). The image is kept beside the work folder, so generated data sets
survive between runs. It is sparse and mounted with `discard`, so what the
benchmark deletes inside it goes back to the machine's disk: without that
the image grew with every restore written and deleted until it filled the
disk (47 GiB after two runs).
"""

import os
import shutil
import subprocess


def _mount_of(path):
    if not shutil.which("findmnt"):
        return None
    out = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE,TARGET", "-T", path],
                         capture_output=True, text=True)
    parts = out.stdout.split()
    return parts if len(parts) == 3 else None


def has_no_journal(path):
    """Whether `path` is on an ext4 file system without a journal."""
    mount = _mount_of(path)
    if not mount or mount[1] != "ext4":
        return False
    # A mounted ext4's journal has its jbd2 entry, `<device>-<journal inode>`.
    device = os.path.basename(os.path.realpath(mount[0]))
    if not os.path.isdir(os.path.join("/proc/fs/ext4", device)):
        return False
    journals = os.listdir("/proc/fs/jbd2") if os.path.isdir("/proc/fs/jbd2") else []
    return not any(j.startswith(device + "-") for j in journals)


def _is_mounted_at(path):
    mount = _mount_of(path)
    return bool(mount) and os.path.realpath(mount[2]) == os.path.realpath(path)


def prepare(work, quick):
    """Makes `work` ready; returns a line for the report on its file system,
    and a function that unmounts what this mounted."""
    os.makedirs(work, exist_ok=True)
    if _is_mounted_at(work):
        return f"work folder: {_describe(work)} (mounted before the run)", lambda: None
    if quick or not has_no_journal(work):
        return f"work folder: {_describe(work)}", lambda: None
    exposed = "ext4 without a journal ({}): restores of many files vary widely after deletions"
    if os.geteuid() != 0 or not shutil.which("mkfs.ext4"):
        return "work folder: " + exposed.format("not root, so kept"), lambda: None
    if os.listdir(work):
        # Never mounted over: what the folder holds is not ours to hide.
        why = "not empty, so kept: empty it or pass another --work to run on a journaled image"
        return "work folder: " + exposed.format(why), lambda: None
    image = os.path.realpath(work).rstrip("/") + ".ext4"
    if not os.path.exists(image):
        free = shutil.disk_usage(os.path.dirname(image)).free
        # Sparse: only what the run writes is allocated. Formatted under
        # another name, so an interrupted run leaves no unformatted image.
        with open(image + ".new", "wb") as f:
            f.truncate(min(int(free * 0.8), 200 << 30))
        subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "has_journal", image + ".new"],
                       check=True)
        os.rename(image + ".new", image)
    device = subprocess.run(["losetup", "--direct-io=on", "-f", "--show", image], check=True,
                            capture_output=True, text=True).stdout.strip()
    try:
        subprocess.run(["mount", "-o", "discard", device, work], check=True)
    except subprocess.CalledProcessError:
        subprocess.run(["losetup", "-d", device], check=False)
        raise
    # Space freed inside before it was mounted with `discard` goes back too.
    if shutil.which("fstrim"):
        subprocess.run(["fstrim", work], check=False)

    def unmount():
        # A folder still in use (a tool's process left behind) is
        # unmounted once it is free.
        if subprocess.run(["umount", work], check=False).returncode != 0:
            subprocess.run(["umount", "-l", work], check=False)
        subprocess.run(["losetup", "-d", device], check=False)

    line = (f"work folder: a journaled ext4 image ({image}, loop with direct I/O), since "
            "the machine's own ext4 has no journal (see bench/scratch.py)")
    return line, unmount


def _describe(path):
    mount = _mount_of(path)
    if not mount:
        return "file system unknown"
    journal = " without a journal" if has_no_journal(path) else ""
    return f"{mount[1]}{journal} ({mount[0]})"
