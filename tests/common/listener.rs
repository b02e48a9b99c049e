//! Whether a started server is the one listening on its port: a connect
//! alone can reach another program that took the port for a moment, and a
//! test would then talk to a server that is not yet (or never) up.

use std::collections::{HashMap, HashSet};
use std::fs;

/// True when a process in the tree rooted at `pid` holds a socket that
/// listens on TCP `port` (any local address, IPv4 or IPv6).
pub fn tree_listens_on(pid: u32, port: u16) -> bool {
    let sockets = listening_inodes(port);
    !sockets.is_empty()
        && process_tree(pid)
            .into_iter()
            .any(|p| holds_any(p, &sockets))
}

/// Inodes of the sockets in LISTEN state on `port`, from /proc/net/tcp{,6}.
fn listening_inodes(port: u16) -> HashSet<String> {
    const LISTEN: &str = "0A";
    let wanted = format!("{port:04X}");
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f.get(1).and_then(|a| a.rsplit(':').next());
            if f.len() > 9 && local_port == Some(wanted.as_str()) && f[3] == LISTEN {
                inodes.insert(f[9].to_string());
            }
        }
    }
    inodes
}

/// `root` and every live descendant of it.
fn process_tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(ppid) = parent_of(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        tree.extend(children.get(&tree[i]).into_iter().flatten());
        i += 1;
    }
    tree
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields
    // resume after the last ')', with the state first and the parent next.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn holds_any(pid: u32, sockets: &HashSet<String>) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        fs::read_link(fd.path()).is_ok_and(|target| {
            let t = target.to_string_lossy();
            t.strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .is_some_and(|inode| sockets.contains(inode))
        })
    })
}
