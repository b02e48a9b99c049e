//! Extended attributes (POSIX ACLs are the `system.posix_acl_access` and
//! `system.posix_acl_default` attributes, so they travel with the rest):
//! read without following links when a snapshot records a node, set on the
//! restored file's handle (or, for links and special files, through the
//! folder handle's `/proc/self/fd` path, still without following the last
//! component). Values are kept as standard base64, as trees store them.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rustix::fs::XattrFlags;

/// The extended attributes of `path` (not following a final link). A file
/// system without them has none. Names that are not UTF-8 are left out.
pub fn read(path: &Path) -> io::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let names = match list(path) {
        Ok(n) => n,
        Err(e) if unsupported(&e) => return Ok(out),
        Err(e) => return Err(e),
    };
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        match value(path, name) {
            Ok(v) => {
                out.insert(name.to_string(), STANDARD.encode(v));
            }
            // Removed since it was listed.
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTSUP)
}

/// Reads a list whose size may change between the size query and the read
/// (`ERANGE`): retried with the new size.
fn sized(mut query: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>) -> io::Result<Vec<u8>> {
    loop {
        let len = query(&mut [])?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; len];
        match query(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(rustix::io::Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn list(path: &Path) -> io::Result<Vec<u8>> {
    sized(|buf| {
        if buf.is_empty() {
            rustix::fs::llistxattr_query(path)
        } else {
            rustix::fs::llistxattr(path, buf)
        }
    })
}

fn value(path: &Path, name: &str) -> io::Result<Vec<u8>> {
    sized(|buf| {
        if buf.is_empty() {
            rustix::fs::lgetxattr_query(path, name)
        } else {
            rustix::fs::lgetxattr(path, name, buf)
        }
    })
}

/// Sets `attrs` on an open file or folder. Returns the attributes that
/// could not be set, with why (a file system without them, or one this
/// process may not set, such as `trusted.*` when not root): a restore
/// notes them and goes on.
pub fn set_on(fd: impl AsFd, attrs: &BTreeMap<String, String>) -> Vec<String> {
    set_with(attrs, |name, value| {
        rustix::fs::fsetxattr(&fd, name, value, XattrFlags::empty())
    })
}

/// Sets `attrs` on `name` in the folder `dir` without following it.
pub fn set_at(dir: impl AsFd, name: &str, attrs: &BTreeMap<String, String>) -> Vec<String> {
    let path = format!("/proc/self/fd/{}/{name}", dir.as_fd().as_raw_fd());
    set_with(attrs, |attr, value| {
        rustix::fs::lsetxattr(&path, attr, value, XattrFlags::empty())
    })
}

fn set_with(
    attrs: &BTreeMap<String, String>,
    mut set: impl FnMut(&str, &[u8]) -> rustix::io::Result<()>,
) -> Vec<String> {
    let mut failed = Vec::new();
    for (name, encoded) in attrs {
        // Trees are validated before a restore: values are base64.
        let value = STANDARD.decode(encoded).unwrap_or_default();
        if let Err(e) = set(name, &value) {
            failed.push(format!("{name}: {}", io::Error::from(e)));
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_attributes_round_trip_through_a_handle() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::write(&a, b"x").unwrap();
        std::fs::write(&b, b"y").unwrap();
        let set = rustix::fs::setxattr(&a, "user.snapkeep", b"v\0\xff", XattrFlags::empty());
        if set == Err(rustix::io::Errno::NOTSUP) {
            return; // a temporary folder on a file system without xattrs
        }
        set.unwrap();
        let read_a = read(&a).unwrap();
        assert_eq!(
            read_a.get("user.snapkeep"),
            Some(&STANDARD.encode(b"v\0\xff"))
        );
        let f = std::fs::File::options().write(true).open(&b).unwrap();
        assert!(set_on(&f, &read_a).is_empty());
        assert_eq!(read(&b).unwrap(), read_a);
    }
}
