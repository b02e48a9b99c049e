//! Pins: a mounted snapshot announces itself with `pins/<uuid>.json` and
//! refreshes it while the mount lives. A delete (and so retention) refuses
//! to remove a snapshot a live pin names, and says which mount holds it;
//! cleanup never reclaims what a snapshot still in the root references,
//! so pinning the snapshot pins its data.
//!
//! A pin whose heartbeat is older than [`STALE_AFTER`] belongs to a mount
//! that was killed: it no longer blocks anything, and cleanup removes it.
//! Unlike in-flight markers, a pin does not hold back cleanup of
//! unreferenced objects: a mount may live for weeks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const PREFIX: &str = "pins/";
/// How often a mount refreshes its pin.
pub const HEARTBEAT: Duration = Duration::from_secs(60);
/// A pin not refreshed for this long belongs to a dead mount.
pub const STALE_AFTER: Duration = Duration::from_secs(10 * 60);

const STALE_MS: i64 = STALE_AFTER.as_millis() as i64;

/// One mount's pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub uuid: String,
    /// The mounted snapshot.
    pub snapshot: String,
    /// Where it is mounted: `host:/path`.
    pub mount: String,
    pub pid: u32,
    pub started_ms: i64,
    pub heartbeat_ms: i64,
}

impl Pin {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("pins serialize")
    }

    /// `None` for bytes that are not a pin (a torn or foreign object).
    pub fn decode(bytes: &[u8]) -> Option<Pin> {
        serde_json::from_slice(bytes).ok()
    }

    /// Whether the pin still holds at `now_ms`: its last sign of life (the
    /// later of its heartbeat and its object's modification time) is
    /// younger than [`STALE_AFTER`].
    pub fn is_live(&self, modified_ms: Option<i64>, now_ms: i64) -> bool {
        let seen = self.heartbeat_ms.max(modified_ms.unwrap_or(i64::MIN));
        now_ms.saturating_sub(seen) < STALE_MS
    }

    /// `snap-1 mounted at host:/mnt/x (pid 42)`.
    pub fn describe(&self) -> String {
        format!(
            "mounted at {} (pid {}, pin {})",
            self.mount, self.pid, self.uuid
        )
    }
}

/// The object key of pin `uuid`.
pub fn key(uuid: &str) -> String {
    format!("{PREFIX}{uuid}.json")
}

/// The first live pin that holds one of `doomed` (snapshot names).
pub fn blocking<'a>(
    live: &'a [Pin],
    doomed: impl IntoIterator<Item = &'a String>,
) -> Option<&'a Pin> {
    let doomed: Vec<&String> = doomed.into_iter().collect();
    live.iter().find(|p| doomed.contains(&&p.snapshot))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn pin(snapshot: &str, heartbeat_ms: i64) -> Pin {
        Pin {
            uuid: "u1".into(),
            snapshot: snapshot.into(),
            mount: "host:/mnt/x".into(),
            pid: 42,
            started_ms: 0,
            heartbeat_ms,
        }
    }

    #[test]
    fn a_pin_lives_until_its_last_sign_of_life_is_stale() {
        let now = 100 * 60_000;
        assert!(pin("s", now - STALE_MS + 1).is_live(None, now));
        assert!(!pin("s", now - STALE_MS).is_live(None, now));
        // A clock behind the store's: the object's age keeps it alive.
        assert!(pin("s", 0).is_live(Some(now - 1000), now));
    }

    #[test]
    fn blocking_names_the_pin_of_a_doomed_snapshot() {
        let live = vec![pin("a", 0), pin("b", 0)];
        let doomed = ["b".to_string(), "c".to_string()];
        assert_eq!(blocking(&live, &doomed).unwrap().snapshot, "b");
        assert!(blocking(&live, &["c".to_string()]).is_none());
        assert!(pin("b", 0).describe().contains("host:/mnt/x (pid 42"));
        let p = pin("a", 5);
        assert_eq!(Pin::decode(&p.encode()), Some(p));
        assert_eq!(Pin::decode(b"{torn"), None);
    }
}
