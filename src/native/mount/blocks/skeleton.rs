//! The first writable mount of a snapshot lays the snapshot's tree out in
//! the layer folder: every folder, link and special file as the snapshot
//! recorded it, and every regular file as a sparse file of its size
//! carrying a [`FillMap`] with nothing filled. No file's bytes are copied:
//! the mount fills blocks as they are read or written.

use std::collections::HashMap;
use std::io;

use crate::core::format::tree::{Node, NodeType};
use crate::core::lazy::fill::FillMap;
use crate::core::lazy::inodes::Inodes;
use crate::native::dirfd::{set_meta, DirFd, Special};
use crate::native::xattrs;

use super::FILL_XATTR;

/// Lays out the entries under inode `ino` (a folder) into `dir`, whose
/// path in the mount is `rel` ("" for the root). `first` remembers where
/// each hard-linked file was made, so its other names link to it.
pub fn lay_out(
    inodes: &Inodes,
    ino: u64,
    dir: &DirFd,
    rel: &str,
    root: &DirFd,
    first: &mut HashMap<u64, String>,
) -> io::Result<()> {
    let Some(folder) = inodes.get(ino) else {
        return Ok(());
    };
    for (name, child) in &folder.children {
        let Some(entry) = inodes.get(*child) else {
            continue;
        };
        let path = join(rel, name);
        let node = &entry.node;
        match node.kind {
            NodeType::Dir => {
                dir.create_dir(name, 0o700)?;
                let sub = dir.child_dir(name)?;
                lay_out(inodes, *child, &sub, &path, root, first)?;
                own(dir, name, node)?;
                xattrs::set_on(&sub, node.xattrs());
                sub.set_meta(node.mode & 0o7777, node.mtime_ns)?;
            }
            NodeType::File => match first.get(child) {
                Some(at) => {
                    let (parent, from) = crate::native::dirfd::split_parent(at);
                    dir.hard_link(name, &root.dir(parent)?, from)?;
                }
                None => {
                    sparse_file(dir, name, &path, node)?;
                    first.insert(*child, path);
                }
            },
            NodeType::Symlink => {
                dir.symlink(name, node.target().unwrap_or(""), node.mtime_ns)?;
                own(dir, name, node)?;
            }
            NodeType::Fifo | NodeType::Chardev | NodeType::Blockdev => {
                let kind = match node.kind {
                    NodeType::Fifo => Special::Fifo,
                    NodeType::Chardev => Special::CharDevice,
                    _ => Special::BlockDevice,
                };
                dir.mknod(name, kind, node.rdev().unwrap_or(0))?;
                own(dir, name, node)?;
                dir.set_meta_at(name, node.mode & 0o7777, node.mtime_ns)?;
            }
            // A socket's name means nothing without its server (restore
            // skips them too).
            NodeType::Socket => {}
        }
    }
    Ok(())
}

/// A regular file of the snapshot as a sparse file of its size, owing
/// every byte to the snapshot.
fn sparse_file(dir: &DirFd, name: &str, path: &str, node: &Node) -> io::Result<()> {
    let file = dir.create_new(name)?;
    file.set_len(node.size)?;
    if node.size > 0 {
        let map = FillMap::new(path, node.size);
        rustix::fs::fsetxattr(
            &file,
            FILL_XATTR,
            &map.encode(),
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(|e| {
            let why = if e == rustix::io::Errno::NOSPC || e == rustix::io::Errno::TOOBIG {
                format!(
                    "the file system has no room for its {} bytes (the path is {} bytes long)",
                    map.encode().len(),
                    path.len()
                )
            } else {
                "the writable layer's folder must be on a file system with user extended \
                 attributes, such as ext4, xfs, btrfs or tmpfs"
                    .to_string()
            };
            io::Error::other(format!(
                "cannot set extended attribute {FILL_XATTR} on {path}: {e} ({why})"
            ))
        })?;
    }
    own(dir, name, node)?;
    xattrs::set_on(&file, node.xattrs());
    set_meta(&file, node.mode & 0o7777, node.mtime_ns)
}

/// The snapshot's owner, where it recorded one and this process may give
/// it (root); otherwise the entry stays this process's.
fn own(dir: &DirFd, name: &str, node: &Node) -> io::Result<()> {
    if node.uid.is_none() && node.gid.is_none() {
        return Ok(());
    }
    match dir.chown_at(name, node.uid, node.gid) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(()),
        r => r,
    }
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}
