//! Snapshot lifecycle management's decisions, as functions of values:
//! when a policy's schedule fires ([`schedule`]), which of its snapshots
//! retention keeps ([`retention`]), which node runs a slot ([`claims`]),
//! whether a policy is healthy ([`health`]) and what the edge watchdog
//! removes and records ([`watchdog`]). The node's scheduler is a loop
//! around these, so thousands of slots are tested without waiting.

pub mod claims;
#[cfg(test)]
mod claims_simulation;
pub mod health;
pub mod report;
pub mod retention;
pub mod schedule;
pub mod slots;
pub mod stored;
pub mod watchdog;
