//! `snapkeep snapshot ls`: the entries of a snapshot, recursively under an
//! optional path, as `ls -l`-like lines or one JSON document.

use serde_json::json;

use crate::cli::args::LsArgs;
use crate::cli::context::Ctx;
use crate::cli::render::{iso_time, print_json};
use crate::core::format::manifest::GLOBAL_STATE;
use crate::core::format::tree::NodeType;
use crate::core::policy::snapshot_path::SnapshotPath;
use crate::native::error::Result;
use crate::native::files::{Listed, SnapshotFiles};

pub fn run(ctx: &Ctx, a: LsArgs) -> Result<()> {
    let repo = ctx.open(&a.repo)?;
    let files = SnapshotFiles::open(&repo, &a.snapshot)?;
    let start = files.resolve(a.path.as_deref().unwrap_or(""), a.index.as_deref())?;
    let starts = match &start {
        Some(at) => vec![at.clone()],
        None => whole_snapshot(&files),
    };
    let mut entries: Vec<Listed> = Vec::new();
    // Text goes out as it is found; JSON is one document at the end.
    let mut emit = |l: &Listed| {
        if a.json {
            entries.push(l.clone());
        } else {
            println!("{}", line(l));
        }
        Ok(())
    };
    for at in &starts {
        let found = files.find(at)?;
        if let Some(e) = &found.entry {
            emit(e)?;
        }
        if let Some(tree) = found.tree {
            let base = found.entry.map_or_else(String::new, |e| e.path);
            files.walk(tree, &base, &mut |l, _| emit(l))?;
        }
    }
    if a.json {
        let entries: Vec<_> = entries.iter().map(entry_json).collect();
        print_json(&json!({
            "snapshot": files.manifest.snapshot,
            "path": start.as_ref().map(SnapshotPath::display),
            "entries": entries,
        }));
    }
    Ok(())
}

/// Every index of the snapshot, then its global state.
fn whole_snapshot(files: &SnapshotFiles) -> Vec<SnapshotPath> {
    let m = &files.manifest;
    let at = |index: &str| SnapshotPath {
        index: index.to_string(),
        rel: String::new(),
    };
    let mut out: Vec<SnapshotPath> = m.indices.keys().map(|i| at(i)).collect();
    if m.global_state.is_some() {
        out.push(at(GLOBAL_STATE));
    }
    out
}

fn entry_json(l: &Listed) -> serde_json::Value {
    let mut v = serde_json::to_value(l).expect("entries serialize");
    v["mtime"] = json!(iso_time(l.mtime_ns.div_euclid(1_000_000)));
    v
}

/// `drwxr-xr-x         4096 2026-12-04T00:50:03.000Z logs/sub`, with
/// ` -> target` for a link.
fn line(l: &Listed) -> String {
    let link = l
        .target
        .as_ref()
        .map_or_else(String::new, |t| format!(" -> {t}"));
    format!(
        "{}{} {:>12} {} {}{link}",
        type_char(l.kind),
        permissions(l.mode),
        l.size,
        iso_time(l.mtime_ns.div_euclid(1_000_000)),
        crate::cli::one_line(&l.path),
    )
}

fn type_char(kind: NodeType) -> char {
    match kind {
        NodeType::Dir => 'd',
        NodeType::Symlink => 'l',
        NodeType::File => '-',
        #[allow(unreachable_patterns)] // kinds added later list as unknown
        _ => '?',
    }
}

/// `rwxr-x---` for mode 0o750 (with setuid, setgid and sticky bits).
fn permissions(mode: u32) -> String {
    let mut out = String::with_capacity(9);
    for (shift, special, set, unset) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
        let bits = (mode >> shift) & 7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        out.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => set,
            (false, true) => unset,
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(permissions(0o644), "rw-r--r--");
        assert_eq!(permissions(0o750), "rwxr-x---");
        assert_eq!(permissions(0o4755), "rwsr-xr-x");
        assert_eq!(permissions(0o1777), "rwxrwxrwt");
        assert_eq!(permissions(0o2640), "rw-r-S---");
    }
}
