//! Policies: the rules operations follow (which indices a pattern selects,
//! how listings sort and page), as functions of values.

pub mod inflight;
pub mod keep;
pub mod listing;
pub mod parents;
pub mod revive;
pub mod selection;
