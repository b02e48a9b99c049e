//! Owner names: user and group ids to names when a snapshot records them,
//! names back to ids when a restore running as root sets them. Lookups go
//! through the C library (`getpwuid_r` and friends, via `nix`), so NSS
//! sources such as LDAP answer too; each answer is cached for the run.

use std::collections::HashMap;
use std::sync::Arc;

use nix::unistd::{Gid, Group, Uid, User};

/// Cached lookups of the host's user and group databases. A failed lookup
/// counts as "no such entry": the numeric id is then what is recorded or
/// set.
#[derive(Default)]
pub struct Names {
    users: HashMap<u32, Option<Arc<str>>>,
    groups: HashMap<u32, Option<Arc<str>>>,
    uids: HashMap<String, Option<u32>>,
    gids: HashMap<String, Option<u32>>,
}

impl Names {
    /// The name of `uid`, shared by every caller asking for the same id.
    pub fn user(&mut self, uid: u32) -> Option<Arc<str>> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                let user = User::from_uid(Uid::from_raw(uid)).ok().flatten();
                user.map(|u| u.name.into())
            })
            .clone()
    }

    pub fn group(&mut self, gid: u32) -> Option<Arc<str>> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                let group = Group::from_gid(Gid::from_raw(gid)).ok().flatten();
                group.map(|g| g.name.into())
            })
            .clone()
    }

    pub fn uid_of(&mut self, name: &str) -> Option<u32> {
        *self.uids.entry(name.to_string()).or_insert_with(|| {
            let user = User::from_name(name).ok().flatten();
            user.map(|u| u.uid.as_raw())
        })
    }

    pub fn gid_of(&mut self, name: &str) -> Option<u32> {
        *self.gids.entry(name.to_string()).or_insert_with(|| {
            let group = Group::from_name(name).ok().flatten();
            group.map(|g| g.gid.as_raw())
        })
    }
}

/// Whether this process may give files away (it runs as root).
pub fn can_chown() -> bool {
    rustix::process::geteuid().is_root()
}

/// This process's umask, read without changing it (`umask(2)` can only be
/// read by setting it, which would race with other threads creating
/// files); `None` where the kernel does not say (before Linux 4.7).
pub fn umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_umask_read_is_the_one_in_force() {
        let read = umask().expect("Linux says the umask in /proc/self/status");
        // Set it to what was read: a no-op, which returns the mask in force.
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(read));
        assert_eq!(old.bits(), read);
    }

    #[test]
    fn root_is_found_both_ways_and_unknown_ids_are_none() {
        let mut names = Names::default();
        assert_eq!(names.user(0).as_deref(), Some("root"));
        assert_eq!(names.uid_of("root"), Some(0));
        assert_eq!(names.gid_of("root"), Some(0));
        assert_eq!(names.user(3_999_999_999), None);
        assert_eq!(names.uid_of("no-such-user-snapkeep"), None);
        assert_eq!(names.uid_of("nul\0name"), None);
    }
}
