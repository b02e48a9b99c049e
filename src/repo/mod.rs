//! The repository layer: async reads and writes of one repository through
//! the storage port, shared by every shell. The native CLI blocks on it at
//! the top of each command (`native::repo`), a server awaits it on its own
//! runtime, and the edge Worker and the browser inspector await it on their
//! single-threaded ones.
//!
//! It holds no threads or runtime of its own: time comes in through
//! [`clock::Clock`] and [`clock::Sleep`], CPU-heavy work goes out through
//! [`cpu::Cpu`] and progress through [`progress::Progress`]; the core decides, this layer
//! fetches and stores the objects the core's decisions name and verifies
//! what it reads.

pub mod analyze;
pub mod check;
pub mod cleanup;
pub mod clock;
pub mod clone;
pub mod cpu;
pub mod delete;
pub mod findings;
pub mod http_range;
pub mod inflight;
pub mod keyring;
pub mod pins;
pub mod progress;
pub mod reader;
pub mod restore;
pub mod sealed_store;
pub mod sealing;
pub mod shapes;
pub mod slot_claims;
pub mod trees;
pub mod verify;
pub mod views;
pub mod writer;

pub use analyze::analyze;
pub use check::Check;
pub use reader::RepoReader;
pub use verify::verify;
pub use writer::RepoWriter;

/// The layer's futures are Send for every lifetime, so that a
/// multi-threaded server can spawn them; this only has to compile. Not on
/// wasm32, whose storage futures are single-threaded (`?Send`).
#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(dead_code)]
fn futures_are_send(reader: &RepoReader) {
    fn send<T: Send>(_: T) {}
    send(cleanup::cleanup(
        reader,
        false,
        0,
        std::time::Duration::ZERO,
        false,
    ));
    send(reader.root_and_index());
    send(verify(reader, &clock::ManualClock::at(0), "x"));
    let clock = std::sync::Arc::new(clock::ManualClock::at(0));
    let claimer = slot_claims::SlotClaimer::new(reader.clone(), clock.clone(), "n");
    send(claimer.claim_slot("p", 0, clock.as_ref()));
    send(claimer.cleanup("p"));
}
