//! What a restore sets besides contents, modes and times (tree encoding
//! 2): owners, extended attributes, hard links and special files.
//!
//! Owners are set only when the restore runs as root: by name first (the
//! name is looked up on this host), by the recorded id when the name is
//! unknown here or was not recorded. Without root they are left as the
//! restoring user's, silently (the usual rule of `tar` and `cp -a`).
//! Order on each entry: owner, then extended attributes (a `chown` clears
//! `security.capability`), then mode (a `chown` clears set-id bits), then
//! times. Attributes the target cannot take, sockets, and devices without
//! the right to create them become notes: the restore goes on.

use std::io;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Mutex;

use crate::core::format::tree::NodeType;
use crate::core::plan::restore::{EntryAttrs, RestorePlan};
use crate::native::dirfd::{set_meta, set_mtime, split_parent, DirFd, Special};
use crate::native::error::{Error, Result};
use crate::native::owners::{can_chown, umask, Names};
use crate::native::xattrs;

/// Sets owners and attributes, and gathers notes, for one restore.
pub struct Finisher {
    /// Present when running as root.
    names: Option<Mutex<Names>>,
    notes: Mutex<Vec<String>>,
    /// What a file created in the staging folder starts with; `None` when
    /// that is not known for sure.
    created: Option<Created>,
}

/// The owner, group and umask a regular file this process creates in the
/// staging folder starts with.
#[derive(Debug, Clone, Copy)]
struct Created {
    uid: u32,
    gid: u32,
    umask: u32,
}

impl Created {
    /// A new file's owner is the effective uid. Its group is the effective
    /// gid, or the folder's own (set-group-id folders, `grpid` mounts):
    /// known only where the two agree. Its mode is the one asked less the
    /// umask, unless the folder has a default ACL (inherited from the
    /// target), which then masks it instead: not known.
    fn in_folder(folder: &DirFd) -> Option<Created> {
        let gid = rustix::process::getegid().as_raw();
        (folder.group().ok()? == gid).then_some(())?;
        match rustix::fs::fgetxattr_query(folder, "system.posix_acl_default") {
            Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => {}
            _ => return None,
        }
        Some(Created {
            uid: rustix::process::geteuid().as_raw(),
            gid,
            umask: umask()?,
        })
    }

    /// Whether a file created with `mode` gets exactly `mode`, and its
    /// owner may still read and write it (a rerun after an interruption
    /// reads its temporary back and resumes it).
    fn keeps(&self, mode: u32) -> bool {
        mode & !0o777 == 0 && mode & 0o600 == 0o600 && mode & self.umask == 0
    }
}

impl Finisher {
    /// The finisher of a restore whose files are created in `staging`.
    pub fn new(staging: &DirFd) -> Finisher {
        Finisher {
            names: can_chown().then(|| Mutex::new(Names::default())),
            notes: Mutex::default(),
            created: Created::in_folder(staging),
        }
    }

    /// The mode to create a file of recorded mode `mode` with: `mode`
    /// itself where creation gives exactly that ([`Created::keeps`]), else
    /// 0600 until its metadata is set. A file is unreachable in the private
    /// staging folder until complete either way.
    pub fn create_mode(&self, mode: u32) -> u32 {
        if self.creation_keeps(mode) {
            mode
        } else {
            0o600
        }
    }

    fn creation_keeps(&self, mode: u32) -> bool {
        self.created.is_some_and(|c| c.keeps(mode))
    }

    /// Whether owners are set (the restore runs as root).
    pub fn sets_owners(&self) -> bool {
        self.names.is_some()
    }

    pub fn note(&self, note: String) {
        self.notes.lock().expect("notes lock").push(note);
    }

    pub fn into_notes(self) -> Vec<String> {
        self.notes.into_inner().expect("notes lock")
    }

    /// The ids to give an entry: by name where the name is known here.
    fn ids(&self, a: &EntryAttrs) -> Option<(Option<u32>, Option<u32>)> {
        let mut names = self.names.as_ref()?.lock().expect("names lock");
        let uid = a.user.as_deref().and_then(|u| names.uid_of(u)).or(a.uid);
        let gid = a.group.as_deref().and_then(|g| names.gid_of(g)).or(a.gid);
        Some((uid, gid))
    }

    /// Whether `found` (a file's owner and group ids) already is what
    /// `a` gives it.
    pub fn owner_is(&self, a: &EntryAttrs, found: Option<(u32, u32)>) -> bool {
        let (Some((uid, gid)), Some(wanted)) = (found, self.ids(a)) else {
            return false;
        };
        wanted.0.is_none_or(|u| u == uid) && wanted.1.is_none_or(|g| g == gid)
    }

    fn note_xattrs(&self, path: &str, failed: Vec<String>) {
        for f in failed {
            self.note(format!("{path}: extended attribute not restored: {f}"));
        }
    }

    /// Owner, attributes, mode and mtime of an open file or folder.
    pub fn apply(
        &self,
        fd: impl AsFd,
        path: &str,
        mode: u32,
        mtime_ns: i64,
        attrs: Option<&EntryAttrs>,
    ) -> io::Result<()> {
        self.finish(fd, path, mode, mtime_ns, attrs, false)
    }

    /// [`Finisher::apply`] for a file this restore created in the staging
    /// folder with [`Finisher::create_mode`]`(mode)` and has only written
    /// to since: the owner and the mode are set only where creation did not
    /// already give them (most files of a restore by their owner).
    pub fn apply_created(
        &self,
        fd: impl AsFd,
        path: &str,
        mode: u32,
        mtime_ns: i64,
        attrs: Option<&EntryAttrs>,
    ) -> io::Result<()> {
        self.finish(fd, path, mode, mtime_ns, attrs, true)
    }

    fn finish(
        &self,
        fd: impl AsFd,
        path: &str,
        mode: u32,
        mtime_ns: i64,
        attrs: Option<&EntryAttrs>,
        created: bool,
    ) -> io::Result<()> {
        let mut chowned = false;
        if let Some(a) = attrs {
            if let Some((uid, gid)) = self.ids(a) {
                let given = created
                    && self.created.is_some_and(|c| {
                        uid.is_none_or(|u| u == c.uid) && gid.is_none_or(|g| g == c.gid)
                    });
                if !given {
                    let uid = uid.map(rustix::fs::Uid::from_raw);
                    let gid = gid.map(rustix::fs::Gid::from_raw);
                    rustix::fs::fchown(&fd, uid, gid)?;
                    chowned = true;
                }
            }
            self.note_xattrs(path, xattrs::set_on(&fd, &a.xattrs));
        }
        // A chown clears set-id bits: the mode goes after it.
        if !created || chowned || !self.creation_keeps(mode) {
            set_meta(fd, mode, mtime_ns)
        } else {
            set_mtime(fd, mtime_ns)
        }
    }

    /// Owner and attributes of `name` in `dir` (a link or special file),
    /// not following it.
    pub fn apply_at(&self, dir: &DirFd, name: &str, path: &str, attrs: Option<&EntryAttrs>) {
        let Some(a) = attrs else { return };
        if let Some((uid, gid)) = self.ids(a) {
            if let Err(e) = dir.chown_at(name, uid, gid) {
                self.note(format!("{path}: owner not restored: {e}"));
            }
        }
        self.note_xattrs(path, xattrs::set_at(dir, name, &a.xattrs));
    }
}

/// Links every planned hard link to its file (already in place).
pub fn link_hard_links(plan: &RestorePlan, root: &DirFd, target: &Path) -> Result<()> {
    for l in &plan.hard_links {
        let err = |e| Error::io(target.join(&l.path), e);
        let (from_dir, from) = split_parent(&l.to);
        let (dir, name) = split_parent(&l.path);
        let src = root.dir(from_dir).map_err(err)?;
        root.dir(dir)
            .and_then(|d| d.hard_link(name, &src, from))
            .map_err(err)?;
    }
    Ok(())
}

/// Creates fifos and devices; sockets, and devices this process may not
/// create, are noted and skipped.
pub fn create_specials(
    plan: &RestorePlan,
    root: &DirFd,
    target: &Path,
    fin: &Finisher,
) -> Result<()> {
    for s in &plan.specials {
        let kind = match s.kind {
            NodeType::Fifo => Special::Fifo,
            NodeType::Chardev => Special::CharDevice,
            NodeType::Blockdev => Special::BlockDevice,
            _ => {
                fin.note(format!(
                    "{}: socket not recreated (its server creates it when it starts)",
                    s.path
                ));
                continue;
            }
        };
        let err = |e| Error::io(target.join(&s.path), e);
        let (parent, name) = split_parent(&s.path);
        let dir = root.dir(parent).map_err(err)?;
        match dir.mknod(name, kind, s.rdev.unwrap_or(0)) {
            Err(e) if kind != Special::Fifo && e.raw_os_error() == Some(libc::EPERM) => {
                fin.note(format!("{}: device not recreated: {e}", s.path));
                continue;
            }
            r => r.map_err(err)?,
        }
        fin.apply_at(&dir, name, &s.path, s.attrs.as_deref());
        dir.set_meta_at(name, s.mode, s.mtime_ns).map_err(err)?;
    }
    Ok(())
}

/// Writes `data` at `offset` leaving every all-zero 4 KiB block (aligned
/// in the file) unwritten: in a file sized beforehand, those stay holes.
pub fn write_leaving_holes(out: &std::fs::File, data: &[u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    const BLOCK: u64 = 4096;
    let mut at = 0usize;
    while at < data.len() {
        let file_pos = offset + at as u64;
        let block_end = ((file_pos / BLOCK + 1) * BLOCK - offset) as usize;
        let end = block_end.min(data.len());
        let start = at;
        at = end;
        if data[start..end].iter().all(|&b| b == 0) {
            continue;
        }
        // Extend the run over following non-zero blocks: one write each run.
        let mut run_end = end;
        while run_end < data.len() {
            let next = (run_end + BLOCK as usize).min(data.len());
            if data[run_end..next].iter().all(|&b| b == 0) {
                break;
            }
            run_end = next;
        }
        out.write_all_at(&data[start..run_end], offset + start as u64)?;
        at = run_end;
    }
    Ok(())
}

/// Writes `data` at `offset` over what a file already holds there: an
/// all-zero run (`zero`) becomes a hole where the file system can punch
/// one, and is written as zeros where it cannot.
pub fn write_over(out: &std::fs::File, data: &[u8], offset: u64, zero: bool) -> io::Result<()> {
    use rustix::fs::FallocateFlags;
    use std::os::unix::fs::FileExt;
    if zero {
        let punch = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
        if rustix::fs::fallocate(out, punch, offset, data.len() as u64).is_ok() {
            return Ok(());
        }
    }
    out.write_all_at(data, offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode_and_mtime(path: &Path) -> (u32, i64) {
        let m = std::fs::symlink_metadata(path).unwrap();
        (
            m.mode() & 0o7777,
            m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        )
    }

    #[test]
    fn files_are_created_with_their_mode_only_where_creation_gives_it() {
        let t = tempfile::tempdir().unwrap();
        let fin = Finisher::new(&DirFd::open(t.path()).unwrap());
        let umask = umask().unwrap();
        // Bits the umask would take, set-id bits, and modes their owner
        // could not read back or resume all start private.
        for mode in [
            0o644, 0o600, 0o755, 0o700, 0o666, 0o777, 0o4755, 0o1777, 0o444, 0o200,
        ] {
            let plain = mode & !0o777 == 0 && mode & 0o600 == 0o600 && mode & umask == 0;
            let want = if plain { mode } else { 0o600 };
            assert_eq!(
                fin.create_mode(mode),
                want,
                "{mode:o} under umask {umask:o}"
            );
        }
        // A umask that takes the owner's bits: nothing is created as is,
        // 0600 included; nor where creation is not known.
        let strict = Created {
            umask: 0o277,
            ..fin.created.unwrap()
        };
        assert!(!strict.keeps(0o600) && !strict.keeps(0o644));
        let unknown = Finisher {
            created: None,
            ..Finisher::new(&DirFd::open(t.path()).unwrap())
        };
        assert!(!unknown.creation_keeps(0o600));
    }

    #[test]
    fn a_default_acl_on_the_staging_folder_makes_every_mode_set_explicitly() {
        let t = tempfile::tempdir().unwrap();
        let set = std::process::Command::new("setfacl")
            .args(["-d", "-m", "u::rwx,g::---,o::---"])
            .arg(t.path())
            .status();
        assert!(set.is_ok_and(|s| s.success()), "setfacl -d");
        let dir = DirFd::open(t.path()).unwrap();
        let fin = Finisher::new(&dir);
        assert_eq!(fin.create_mode(0o644), 0o600);
        let f = dir
            .replace_with_new_with_mode("f", fin.create_mode(0o644))
            .unwrap();
        fin.apply_created(&f, "f", 0o644, 5, None).unwrap();
        assert_eq!(mode_and_mtime(&t.path().join("f")).0, 0o644);
    }

    #[test]
    fn a_created_file_ends_with_its_recorded_mode_time_and_owner() {
        let t = tempfile::tempdir().unwrap();
        let dir = DirFd::open(t.path()).unwrap();
        let fin = Finisher::new(&dir);
        let me = rustix::process::geteuid().as_raw();
        let mine = EntryAttrs {
            uid: Some(me),
            gid: Some(rustix::process::getegid().as_raw()),
            ..EntryAttrs::default()
        };
        let given = EntryAttrs {
            uid: Some(4242),
            gid: Some(4343),
            ..EntryAttrs::default()
        };
        let cases = [
            ("plain", 0o644, Some(&mine)),
            ("group-writable", 0o666, Some(&mine)),
            ("read-only", 0o444, None),
            ("set-uid", 0o4755, Some(&mine)),
            ("given-away", 0o4755, Some(&given)),
        ];
        for (i, (name, mode, attrs)) in cases.into_iter().enumerate() {
            let f = dir
                .replace_with_new_with_mode(name, fin.create_mode(mode))
                .unwrap();
            std::io::Write::write_all(&mut &f, b"bytes").unwrap();
            let mtime_ns = 1_600_000_000_123_456_789 + i as i64;
            fin.apply_created(&f, name, mode, mtime_ns, attrs).unwrap();
            let path = t.path().join(name);
            assert_eq!(mode_and_mtime(&path), (mode, mtime_ns), "{name}");
            let m = std::fs::metadata(&path).unwrap();
            let owner = if fin.sets_owners() && name == "given-away" {
                (4242, 4343)
            } else {
                (me, rustix::process::getegid().as_raw())
            };
            assert_eq!((m.uid(), m.gid()), owner, "{name}");
        }
    }

    #[test]
    fn zero_blocks_stay_holes_and_the_bytes_are_the_same() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("f");
        let f = std::fs::File::create(&path).unwrap();
        let mut data = vec![0u8; 1 << 20];
        data[100] = 1; // first block
        data[(512 << 10) + 5] = 2; // one block in the middle
        data[(1 << 20) - 1] = 3; // the last block
        f.set_len(data.len() as u64 + 3).unwrap();
        write_leaving_holes(&f, &data, 3).unwrap();
        drop(f);
        let back = std::fs::read(&path).unwrap();
        assert_eq!(&back[3..], &data[..]);
        let blocks = std::fs::metadata(&path).unwrap().blocks() * 512;
        assert!(blocks <= 64 << 10, "{blocks} bytes allocated");
    }
}
