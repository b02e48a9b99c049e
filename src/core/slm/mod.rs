//! Snapshot lifecycle management's decisions, as functions of values:
//! when a policy's schedule fires ([`schedule`]) and which of its
//! snapshots retention keeps ([`retention`]). The node's scheduler is a
//! loop around these, so thousands of slots are tested without waiting.

pub mod report;
pub mod retention;
pub mod schedule;
pub mod slots;
pub mod stored;
