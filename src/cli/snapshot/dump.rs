//! `snapkeep snapshot dump`: one file of a snapshot to stdout, or a folder
//! as a tar stream (restic's `dump`). Bytes go out chunk by chunk, each
//! checked against its SHA-256 first; nothing is held whole in memory.

use std::io::{BufWriter, Write};

use crate::cli::args::DumpArgs;
use crate::cli::context::Ctx;
use crate::core::format::tree::{Node, NodeType};
use crate::native::error::{Error, Result};
use crate::native::files::{Listed, SnapshotFiles};

pub fn run(ctx: &Ctx, a: DumpArgs) -> Result<()> {
    let repo = ctx.open(&a.repo)?;
    let files = SnapshotFiles::open(&repo, &a.snapshot)?;
    let Some(at) = files.resolve(&a.path, a.index.as_deref())? else {
        return Err(Error::Usage(
            "name a file or folder to dump (e.g. logs/app.log, or an index)".into(),
        ));
    };
    let found = files.find(&at)?;
    let stdout = std::io::stdout().lock();
    let out = BufWriter::with_capacity(1 << 20, stdout);
    let written = match (found.node, found.tree) {
        (Some(node), _) => dump_file(&files, &at.display(), &node, out),
        (None, Some(tree)) => dump_folder(&files, found.entry.as_ref(), tree, out),
        (None, None) => unreachable!("a found path is a folder or an entry"),
    };
    match written {
        // A reader that stopped early (`| head`) is not a failure.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// An error of writing to stdout, or the repository's error that a chunk
/// reader passed through `std::io`.
fn out_error(e: std::io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        let inner = e.into_inner().expect("checked above");
        return *inner.downcast::<Error>().expect("checked above");
    }
    Error::io("stdout", e)
}

fn dump_file(files: &SnapshotFiles, path: &str, node: &Node, mut out: impl Write) -> Result<()> {
    if node.kind != NodeType::File {
        return Err(Error::Usage(format!(
            "{path} is not a regular file or folder: nothing to dump (see `snapshot ls`)"
        )));
    }
    let mut contents = files.contents(path, node)?;
    std::io::copy(&mut contents, &mut out).map_err(out_error)?;
    out.flush().map_err(out_error)
}

/// The folder and everything below it as a tar stream, paths starting with
/// the folder's own name (the global state's entries at the top).
fn dump_folder(
    files: &SnapshotFiles,
    entry: Option<&Listed>,
    tree: crate::core::format::tree::Tree,
    out: impl Write,
) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    if let Some(e) = entry {
        append(files, &mut tar, e, None)?;
    }
    let base = entry.map_or_else(String::new, |e| e.path.clone());
    files.walk(tree, &base, &mut |l, node| {
        append(files, &mut tar, l, Some(node))
    })?;
    tar.into_inner()
        .map_err(out_error)?
        .flush()
        .map_err(out_error)
}

fn append<W: Write>(
    files: &SnapshotFiles,
    tar: &mut tar::Builder<W>,
    l: &Listed,
    node: Option<&Node>,
) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(l.mode);
    h.set_mtime(l.mtime_ns.div_euclid(1_000_000_000).max(0) as u64);
    h.set_size(0);
    match (l.kind, node) {
        (NodeType::Dir, _) => {
            h.set_entry_type(tar::EntryType::Directory);
            tar.append_data(&mut h, format!("{}/", l.path), std::io::empty())
        }
        (NodeType::Symlink, _) => {
            h.set_entry_type(tar::EntryType::Symlink);
            let target = l.target.as_deref().unwrap_or_default();
            tar.append_link(&mut h, &l.path, target)
        }
        (NodeType::File, Some(node)) => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(node.size);
            let contents = files.contents(&l.path, node)?;
            tar.append_data(&mut h, &l.path, contents)
        }
        // Kinds a tar entry is not made for here are left out.
        #[allow(unreachable_patterns)]
        _ => Ok(()),
    }
    .map_err(out_error)
}
